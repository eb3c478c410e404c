"""``proxy-wasm-emulator serve ENVOY_CONFIG``: the configuration's Wasm filters on real traffic (see :mod:`emulator.serve`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Any

from ..engines import ENGINE_NAMES
from ..extras import require
from .options import ExitCode, UsageError

if TYPE_CHECKING:
    from ..serve import Server

__all__ = ["add_serve_command"]


def _address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"{what}: expected HOST:PORT, got {text!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))


def add_serve_command(sub: Any) -> None:
    """Register ``serve`` on the command line's sub-parsers."""
    p = sub.add_parser(
        "serve",
        help="a local HTTP/1.1 proxy that runs an Envoy configuration's Wasm filters on real traffic (curl it), without Envoy",
    )
    p.add_argument("envoy_config", metavar="ENVOY_CONFIG", help="the Envoy bootstrap YAML or JSON (its listener, filters, routes and clusters)")
    p.add_argument("--listener", metavar="NAME", help="the listener to serve (default: the first with a Wasm filter)")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen (default: the listener's port on 127.0.0.1; another address only when named here; port 0 picks a free one)",
    )
    p.add_argument(
        "--upstream",
        metavar="CLUSTER=HOST:PORT",
        action="append",
        default=[],
        help="send a cluster's traffic and callouts there (default: the cluster's endpoint, on loopback)",
    )
    p.add_argument("--responders", metavar="SCENARIO", help="answer callouts with a scenario file's http_calls / grpc_calls responders")
    p.add_argument("--trace", action="store_true", help="print the host calls of every request after its access-log line")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="wasmtime", help="default: wasmtime")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    require("aiohttp", "serve")
    from ..envoy_config import EnvoyConfigError
    from ..errors import ModuleLoadError, PluginStartError
    from ..host import Host
    from ..scenario import ScenarioError, load_scenario
    from ..serve import ServeOptions, Server

    upstreams = {}
    for item in args.upstream:
        cluster, sep, where = item.partition("=")
        if not sep or not cluster:
            raise UsageError(f"--upstream: expected CLUSTER=HOST:PORT, got {item!r}")
        upstreams[cluster] = _address(where, "--upstream")
    responders = None
    if args.responders:
        try:
            responders = load_scenario(args.responders)
        except ScenarioError as exc:
            raise UsageError(f"--responders: {exc}") from None
    try:
        chain = Host.from_envoy_config(args.envoy_config, args.listener, engine=args.engine, trace=args.trace)
    except EnvoyConfigError as exc:
        raise UsageError(str(exc)) from None
    except (ModuleLoadError, PluginStartError) as exc:
        print(f"proxy-wasm-emulator serve: the filter did not start: {exc}", file=sys.stderr)
        return ExitCode.FILTER
    if chain.chain is None:
        raise UsageError(f"{args.envoy_config}: the listener {chain.config.listener!r} has no Wasm HTTP filter to serve")
    options = ServeOptions(
        listen=_address(args.listen, "--listen") if args.listen else None,
        upstreams=upstreams,
        responders=responders,
        trace=args.trace,
        log=lambda line: print(line, flush=True),
    )
    server = Server(chain, options)
    return asyncio.run(_serve(server))


async def _serve(server: Server) -> int:
    try:
        await server.start()
    except OSError as exc:
        address, port = server.listen_address()
        print(f"proxy-wasm-emulator serve: cannot listen on {address}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.USAGE
    for line in server.describe():
        print(line, flush=True)
    print("press Ctrl-C to stop", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform or thread
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return ExitCode.OK
