"""The ``proxy-wasm-emulator`` command: ``inspect``, ``run``, ``bench``, ``fuzz`` and ``cache``.

Exit status, the same on every sub-command (:class:`~emulator.cli.options.ExitCode`): 0 done and
nothing found; 1 a finding, a regression or a failed ``--fail-on-trap``; 2 bad command-line input
(a FILTER that is not a file included); 3 the filter does not load or its plugin does not start;
4 an internal error of the emulator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abi import LogLevel

from ..engines import ENGINE_NAMES
from ..errors import EmulatorError, ModuleLoadError, PluginStartError
from ..extras import MissingExtraError
from ..tables import show
from ..vm.module import ModuleFormatError
from .ci_reports import add_ci_report_options
from .options import (
    ExitCode,
    UsageError,
    add_cache_options,
    add_envoy_config_options,
    add_plugin_options,
    cache_setting,
    filter_and_overrides,
    read_file,
)
from .progress import Progress

__all__ = ["main"]


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ..inspect import inspect_module

    wasm = read_file(args.filter, "FILTER") or b""
    try:
        result = inspect_module(wasm, args.filter)
    except ModuleFormatError as exc:
        if args.json:
            print(json.dumps({"path": args.filter, "error": str(exc)}))
        else:
            print(f"error: {args.filter}: {exc}", file=sys.stderr)
        return ExitCode.FILTER
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        show(result.parts())
    return ExitCode.OK


def _cmd_run(args: argparse.Namespace) -> int:
    from ..host import Host
    from ..scenario import (
        ScenarioError,
        load_scenario,
        render_summary,
        render_world,
        run_connections,
        run_scenario,
        start_plugins,
        stream_result,
        world_state,
    )

    module, overrides, envoy_warnings = filter_and_overrides(args, "run")
    scenario = None
    if args.scenario:
        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as exc:
            raise UsageError(f"bad scenario: {exc}") from None
    engine = args.engine or (scenario.engine if scenario and scenario.engine else "wasmtime")
    out: dict[str, Any] = {"started": False, "abi_version": None, "engine": engine, "logs": [], "error": None}
    if args.envoy_config:
        out["envoy_warnings"] = envoy_warnings
        if not args.json:
            for warning in envoy_warnings:
                print(f"envoy config: not modelled: {warning}", file=sys.stderr)
    if scenario is not None:
        out["streams"] = []
    host = None
    status = 0
    runs: list[Any] = []
    try:
        host = Host(
            engine=engine,
            cache=cache_setting(args),
            seed=scenario.seed if scenario else 0,
            restricted_start=not args.legacy_start,
            log_level=LogLevel[args.log_level.upper()],
        )
        if scenario is not None and scenario.faults:
            from ..fuzz.faults import FaultInjectingObserver
            from ..fuzz.values import FaultPlan

            host.observer = FaultInjectingObserver(host, FaultPlan.from_json(scenario.faults))
        prog = host.program(module, stub_unknown_imports=args.stub_unknown_imports, allowed_capabilities=overrides.get("allowed_capabilities"))
        out["abi_version"] = prog.abi.version
        out["abi_notes"] = list(prog.abi.notes)
        if scenario is None:
            if overrides.get("clusters") is not None:
                host.clusters = set(overrides["clusters"])
            vm = host.create_vm(prog, vm_id=overrides["vm_id"] or "", vm_config=overrides["vm_config"], environment=overrides["environment"])
            host.add_plugin(
                vm,
                root_id=overrides["root_id"] or "",
                name=overrides["name"] or "",
                plugin_config=overrides["plugin_config"],
                **({"fail_policy": overrides["fail_policy"]} if overrides.get("fail_policy") else {}),
            )
            out["started"] = True
        else:
            plugins = start_plugins(host, prog, scenario, overrides=overrides)
            out["started"] = True
            first = next(iter(plugins.values()))
            runs = run_scenario(first, scenario, plugins)
            out["streams"] = [stream_result(stream, spec) for spec, stream in runs]
            if scenario.connections:
                out["connections"] = run_connections(first, scenario, plugins)
            out.update(world_state(host))
    except PluginStartError as exc:
        out["error"], out["phase"], out["envoy"] = exc.reason, exc.phase, exc.envoy
        status = ExitCode.FILTER
    except ModuleLoadError as exc:
        out["error"], out["phase"], out["envoy"] = exc.reason, "load", exc.envoy
        status = ExitCode.FILTER
    except EmulatorError as exc:
        out["error"] = str(exc)
        status = ExitCode.FILTER
    except (RuntimeError, ValueError) as exc:  # e.g. wasmer not installed on this Python
        raise UsageError(str(exc)) from None
    if host is not None:
        out["logs"] = [{"level": r.level_name, "message": r.message, "source": r.source, "context_id": r.context_id} for r in host.logs]
        if host.console_lines:  # stdout/stderr in whole lines (logs has one record per write)
            out["console"] = [{"level": r.level_name, "line": r.message, "source": r.source, "context_id": r.context_id} for _, r in host.console_lines]
    failed = [s.get("name") or f"stream {i}" for i, s in enumerate(out.get("streams", [])) if s["error"]]
    failed += [c.get("name") or f"connection {i}" for i, c in enumerate(out.get("connections", [])) if c["error"]]
    if args.fail_on_trap and failed and status == 0:
        out["error"] = f"{len(failed)} of the scenario's streams and connections failed in the guest: {', '.join(failed)}"
        out["phase"] = "scenario"
        status = ExitCode.FOUND
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        streams = {s.context_id for _, s in runs if s.context_id is not None}
        view = host.console_view() if host is not None else []  # stdout/stderr pieces joined into lines
        for r in view:  # the plugin's and VM's own lines; a stream's go under it
            if r.context_id not in streams:
                print(f"[{r.level_name}] {r.message}")
        if out["started"]:
            print(f"started: {args.envoy_config if isinstance(module, bytes) else module} (ABI {out['abi_version']}, engine {engine})")
            if runs and host is not None:
                print(render_summary(runs, [r for r in view if r.context_id in streams]))
            world = render_world(out, out.get("connections")) if scenario is not None else ""
            if world:
                print(world)
            if status:
                print(f"error: {out['error']} (--fail-on-trap)", file=sys.stderr)
        else:
            print(f"error: {args.filter} did not start ({out.get('phase', 'load')}): {out['error']}", file=sys.stderr)
            if out.get("envoy"):
                print(f"what Envoy does: {out['envoy']}", file=sys.stderr)
    return status


def _cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import comparable, compare, load_baseline, measure, report
    from ..scenario import ScenarioError, load_scenario

    module, overrides, _ = filter_and_overrides(args, "measure", file_only=True)
    args.filter = str(module)
    if args.scenario is None:
        raise UsageError("SCENARIO: bench needs a scenario file of the traffic to measure")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        raise UsageError(f"bad scenario: {exc}") from None
    baseline = None
    if args.baseline:
        try:
            baseline = load_baseline(args.baseline)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--baseline: {exc}") from None
    try:
        with contextlib.nullcontext() if args.json else Progress("rounds", max(args.rounds, 1), findings=False, running="timing") as progress:
            result = measure(args.filter, scenario, engine=args.engine, rounds=args.rounds, overrides=overrides, cache=cache_setting(args), progress=progress)
    except EmulatorError as exc:
        print(f"proxy-wasm-emulator bench: the filter did not run: {exc}", file=sys.stderr)
        return ExitCode.FILTER
    if baseline is not None:
        refused = comparable(result, baseline)
        if refused:
            raise UsageError(f"--baseline: {refused}")
    regressions = compare(result, baseline, args.max_regression) if baseline is not None else None
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=2) + "\n")
    try:
        _bench_ci_reports(args, result, regressions, baseline)
    except OSError as exc:
        raise UsageError(f"--junit-xml/--summary: cannot write: {exc.strerror or exc}") from None
    if args.json:
        print(json.dumps({**result, "regressions": regressions}, indent=2))
    else:
        show(report(result, regressions, baseline))
    return ExitCode.FOUND if regressions else ExitCode.OK


def _bench_ci_reports(args: argparse.Namespace, result: dict[str, Any], regressions: list[str] | None, baseline: dict[str, Any] | None) -> None:
    """``--junit-xml``: a test case per gated figure, failed when it regressed past the baseline;
    ``--summary``: the figures (and the baseline's) as a Markdown table."""
    from ..bench import GATED
    from .ci_reports import Case, md_escape, write_ci_reports

    if not (args.junit_xml or args.summary):
        return
    metrics = result["metrics"]
    regressed = {r.split(":", 1)[0]: r for r in regressions or []}
    cases = [Case(key, failure=regressed.get(key), details=regressed.get(key, "")) for key in GATED]
    old = baseline.get("metrics", {}) if baseline else {}
    lines = [
        f"### proxy-wasm-emulator bench `{args.filter}`",
        "",
        "| figure | now | baseline | |",
        "|---|---|---|---|",
    ]
    for key in GATED:
        mark = "regressed" if key in regressed else ("" if baseline else "no baseline")
        lines.append(f"| `{key}` | {metrics.get(key)} | {old.get(key, '-')} | {md_escape(mark)} |")
    t = result["timing"]
    lines += ["", f"Time per scenario: {t['median_s'] * 1e3:.2f} ms median of {t['rounds']} warm rounds (not gated)."]
    write_ci_reports(args, f"bench {args.filter}", cases, "\n".join(lines), time_s=t["median_s"] * t["rounds"])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(prog="proxy-wasm-emulator", description="Run, inspect, fuzz and benchmark proxy-wasm filters without Envoy.")
    p.add_argument("--version", action=_Version, nargs=0, help="the package, Python, engine versions and the wasmtime call path, then exit")
    sub = p.add_subparsers(dest="command", required=True)

    ins = sub.add_parser("inspect", help="report a module's ABI version, SDK, imports, exports and memory")
    ins.add_argument("filter", metavar="FILTER.wasm")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.set_defaults(func=_cmd_inspect)

    run = sub.add_parser("run", help="load a filter and start it as Envoy would (initialise, VM start, configure)")
    run.add_argument("filter", metavar="FILTER.wasm", nargs="?", help="the compiled filter (not with --envoy-config, which names it)")
    run.add_argument("scenario", metavar="SCENARIO", nargs="?", help="a scenario file (.json or .yaml) of HTTP exchanges to run")
    add_envoy_config_options(run)
    add_plugin_options(run)
    run.add_argument("--vm-id", default=None, metavar="ID", help="vm_id (default: the scenario's, else empty)")
    run.add_argument("--name", default=None, metavar="NAME", help="plugin name")
    run.add_argument("--engine", choices=ENGINE_NAMES, default=None, help="default: the scenario's, else wasmtime")
    run.add_argument("--stub-unknown-imports", action="store_true", help="link unknown imports as stubs that log and return InternalFailure")
    run.add_argument(
        "--legacy-start",
        action="store_true",
        help="let _initialize/_start call any host function, as 2020-era Envoy did (current cpp-host refuses; Host(restricted_start=False))",
    )
    run.add_argument(
        "--fail-on-trap",
        action="store_true",
        help="exit 1 when a stream or connection of the scenario trapped or panicked (by default such a stream is a result, reported per stream)",
    )
    run.add_argument(
        "--log-level",
        choices=[level.name.lower() for level in LogLevel],
        default="trace",
        help="Envoy's wasm log level: proxy_get_log_level returns it and lower records are dropped, so SDK debug floods stop at the source (default trace)",
    )
    add_cache_options(run)
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(func=_cmd_run)

    bench = sub.add_parser("bench", help="measure cost figures and timings on a scenario; gate on a baseline")
    bench.add_argument("filter", metavar="FILTER.wasm", nargs="?", help="the compiled filter to measure (not with --envoy-config, which names it)")
    bench.add_argument("scenario", metavar="SCENARIO", nargs="?", help="a scenario file (.json or .yaml)")
    add_envoy_config_options(bench)
    bench.add_argument("--baseline", metavar="FILE", help="a saved `bench --json` result to compare with")
    bench.add_argument("--max-regression", type=float, default=5.0, metavar="PCT", help="fail when a deterministic metric grows by more (default 5)")
    bench.add_argument("--save", metavar="FILE", help="write this run's result (JSON) to FILE, e.g. a new baseline")
    bench.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    bench.add_argument("--engine", choices=ENGINE_NAMES, default="wasmtime", help="default: wasmtime")
    add_plugin_options(bench)
    add_cache_options(bench)
    add_ci_report_options(bench)
    bench.add_argument("--json", action="store_true", help="print one JSON object (the result, with its regressions)")
    bench.set_defaults(func=_cmd_bench)

    from .fuzz import add_fuzz_command
    from .serve import add_serve_command

    add_fuzz_command(sub)
    add_serve_command(sub)

    cache = sub.add_parser("cache", help="the compiled-module cache: where it is, what it holds, and emptying it")
    cache.add_argument("action", choices=["info", "clear"], help="info: directory, entries, size and limit; clear: delete every entry")
    cache.add_argument("--cache-dir", metavar="DIR", help="the cache directory (default: $PROXY_WASM_EMULATOR_CACHE or ~/.cache/proxy-wasm-emulator)")
    cache.add_argument("--json", action="store_true", help="print one JSON object")
    cache.set_defaults(func=_cmd_cache)
    return p


class _Version(argparse.Action):
    """``--version``: computed when asked for (it creates the engines), printed unwrapped."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    """``proxy-wasm-emulator X (Python Y); wasmtime Z (fast C-API path | stock API); wasmer ...; speed mode: ...``."""
    import platform

    from .. import __version__, speedups
    from ..engines import available_engines, get_engine

    parts = [f"proxy-wasm-emulator {__version__} (Python {platform.python_version()})"]
    try:
        wt = get_engine("wasmtime")
        parts.append(f"wasmtime {wt.version} ({'fast C-API call path' if getattr(wt, 'fast', False) else 'stock wasmtime-py API: slower'})")
    except Exception as exc:
        parts.append(f"wasmtime unavailable ({exc})")
    reason = available_engines().get("wasmer")
    if reason is None:
        parts.append(f"wasmer {get_engine('wasmer').version}")
    else:
        parts.append("wasmer not installed (Python <= 3.10 only)")
    parts.append(f"speed mode: {speedups.describe()}")
    return "; ".join(parts)


def _cmd_cache(args: argparse.Namespace) -> int:
    from ..vm.cache import ModuleCache

    cache = ModuleCache(args.cache_dir)
    if args.action == "clear":
        freed = cache.clear()
        out: dict[str, Any] = {"directory": str(cache.directory), "freed_bytes": freed}
        text = f"{cache.directory}: deleted {freed / (1 << 20):.1f} MiB"
    else:
        entries = cache.entries()
        size = sum(n for _, n, _ in entries)
        out = {"directory": str(cache.directory), "entries": len(entries), "bytes": size, "max_bytes": cache.max_bytes}
        text = (
            f"{cache.directory}: {len(entries)} entries, {size / (1 << 20):.1f} MiB of {cache.max_bytes / (1 << 20):.0f} MiB "
            "(least recently used entries go first; limit: $PROXY_WASM_EMULATOR_CACHE_MAX_MB)"
        )
    print(json.dumps(out) if args.json else text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, MissingExtraError) as exc:  # a missing extra: install it, as a usage error says
        if getattr(args, "json", False):  # --json promises one JSON object, failures included
            print(json.dumps({"filter": getattr(args, "filter", None), "error": str(exc), "kind": "usage"}))
        print(f"proxy-wasm-emulator {args.command}: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except BrokenPipeError:  # e.g. piped into `head`
        return ExitCode.OK
    except Exception as exc:  # a bug of ours: say so, in the same shapes as every other failure
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = f"internal error: {type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno}; a bug in proxy-wasm-emulator, please report it)"
        if getattr(args, "json", False):
            print(json.dumps({"filter": getattr(args, "filter", None), "error": message, "kind": "internal"}))
        print(f"proxy-wasm-emulator {args.command}: {message}", file=sys.stderr)
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
