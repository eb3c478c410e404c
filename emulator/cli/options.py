"""Options and input checks shared by the sub-commands, so each is spelled and read one way."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

__all__ = [
    "ExitCode",
    "UsageError",
    "add_cache_options",
    "add_envoy_config_options",
    "envoy_filter",
    "envoy_overrides",
    "filter_and_overrides",
    "add_plugin_options",
    "cache_setting",
    "env_pairs",
    "plugin_overrides",
    "read_file",
    "require_file",
]


class ExitCode(IntEnum):
    """The exit status of every sub-command (one table, documented in docs/pages/cli.md and the README)."""

    OK = 0
    """Done, and nothing was found."""
    FOUND = 1
    """A finding (``fuzz``), a regression (``bench --baseline``) or a failed check (``run --fail-on-trap``)."""
    USAGE = 2
    """Bad command-line input: an option, a missing FILTER or scenario file, a malformed scenario."""
    FILTER = 3
    """The filter itself: the module does not load, or the plugin does not start."""
    INTERNAL = 4
    """A bug in proxy-wasm-emulator (the message says what raised)."""


class UsageError(Exception):
    """Bad command-line input; printed without a traceback, exit status 2 (:attr:`ExitCode.USAGE`)."""


def read_file(path: str | None, option: str) -> bytes | None:
    """The bytes of an option's file (``None`` when the option is unset); unreadable is a usage error."""
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


def require_file(path: str) -> None:
    """A FILTER argument that is not a readable file is a usage error (exit 2) on every sub-command."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"FILTER: {'is a directory' if p.is_dir() else 'no such file'}: {path}")


def env_pairs(items: Sequence[str]) -> dict[str, str]:
    """``--env KEY=VALUE`` items as a mapping."""
    env = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--env: expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        env[k] = v
    return env


def add_plugin_options(p: argparse.ArgumentParser) -> None:
    """The options that configure the VM and plugin, spelled the same on every sub-command."""
    p.add_argument("--plugin-config", metavar="FILE", help="plugin configuration bytes (Envoy: configuration)")
    p.add_argument("--vm-config", metavar="FILE", help="VM configuration bytes (Envoy: vm_config.configuration)")
    p.add_argument("--root-id", default=None, metavar="ID", help="plugin root_id (default: the scenario's, else empty)")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment variable for the VM (repeatable)")


def add_cache_options(p: argparse.ArgumentParser) -> None:
    """``--no-cache`` and ``--cache-dir``, for the sub-commands that compile a module."""
    p.add_argument("--no-cache", action="store_true", help="do not use the compiled-module cache")
    p.add_argument("--cache-dir", metavar="DIR", help="compiled-module cache directory")


def plugin_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line sets over a scenario's plugin and VM (see ``start_plugins``)."""
    return {
        "plugin_config": read_file(args.plugin_config, "--plugin-config"),
        "vm_config": read_file(args.vm_config, "--vm-config"),
        "root_id": args.root_id,
        "vm_id": getattr(args, "vm_id", None),
        "name": getattr(args, "name", None),
        "environment": env_pairs(args.env or []),
    }


def cache_setting(args: argparse.Namespace) -> bool | str:
    """:class:`~emulator.Host`'s ``cache`` argument from the cache options."""
    return False if args.no_cache else (args.cache_dir or True)


def add_envoy_config_options(parser: argparse.ArgumentParser) -> None:
    """``--envoy-config FILE`` and ``--listener NAME``, the same on ``run``, ``bench`` and ``fuzz``."""
    parser.add_argument(
        "--envoy-config",
        metavar="FILE",
        help="take the filter and its settings (plugin and VM configuration, root and VM ids, environment, fail policy, capabilities, clusters) from an Envoy bootstrap YAML or JSON",
    )
    parser.add_argument("--listener", metavar="NAME", help="(--envoy-config) the listener whose Wasm filter to use (default: the first that has one)")


def envoy_filter(args: argparse.Namespace, *, file_only: bool = False) -> tuple[Any, Any]:
    """The one Wasm filter ``--envoy-config`` names (and the configuration it came from).

    A positional FILTER is then the SCENARIO (``run --envoy-config FILE SCENARIO``). More than one
    Wasm filter on the listener, or (``file_only``) inline code, is a usage error.
    """
    from ..envoy_config import EnvoyConfigError, read_envoy_config

    if args.filter is not None and getattr(args, "scenario", None) is None:
        args.scenario, args.filter = args.filter, None
    if args.filter is not None:
        raise UsageError("FILTER: --envoy-config names the .wasm; give only the SCENARIO")
    try:
        config = read_envoy_config(args.envoy_config, args.listener)
    except EnvoyConfigError as exc:
        raise UsageError(f"--envoy-config: {exc}") from None
    if len(config.filters) != 1:
        places = ", ".join(f.where for f in config.filters)
        raise UsageError(
            f"--envoy-config: listener {config.listener!r} has {len(config.filters)} Wasm filters ({places}); this command runs one: "
            "pick a listener with --listener, or run the chain from Python with Host.from_envoy_config"
        )
    (wasm,) = config.filters
    if file_only and isinstance(wasm.module, bytes):
        raise UsageError(f"--envoy-config: {wasm.where}: the code is inline; this command needs it in a file (code.local.filename)")
    return wasm, config


def filter_and_overrides(args: argparse.Namespace, verb: str, *, file_only: bool = False) -> tuple[Any, dict[str, Any], list[str]]:
    """The filter a ``run``/``bench`` command works on, its settings and the configuration's warnings:
    from ``--envoy-config`` (see :func:`envoy_filter`), else FILTER and the plugin options."""
    if args.envoy_config:
        wasm, config = envoy_filter(args, file_only=file_only)
        return wasm.module, envoy_overrides(args, wasm, config), config.warnings
    if args.filter is None:
        raise UsageError(f"FILTER: give the .wasm to {verb}, or --envoy-config FILE")
    require_file(args.filter)
    return args.filter, plugin_overrides(args), []


def envoy_overrides(args: argparse.Namespace, wasm: Any, config: Any) -> dict[str, Any]:
    """The filter's settings as the command line's overrides, with options given on the command line winning."""
    overrides = wasm.overrides()
    overrides["clusters"] = config.clusters
    for key, value in plugin_overrides(args).items():
        if value is not None and value != {}:
            overrides[key] = value
    return overrides
