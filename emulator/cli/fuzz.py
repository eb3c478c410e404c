"""``proxy-wasm-emulator fuzz FILTER.wasm [SCENARIO]``: the host lint over generated traffic.

Exit status: 0 when no invariant broke, 1 when something was found (the minimal failing scenario
is written to ``--out``), 2 for bad input (unreadable files, a module that does not load, a bad
scenario, a configuration the plugin refuses, an unknown invariant name).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abi.records import replace

from .options import ExitCode
from .progress import Progress

if TYPE_CHECKING:
    from ..fuzz.options import FuzzOptions

__all__ = ["add_fuzz_command", "fuzz_options", "run_fuzz_command"]


def add_fuzz_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fuzz`` sub-command to an ``argparse`` sub-parsers object."""
    from ..engines import ENGINE_NAMES
    from ..fuzz.invariants import BUILTIN_INVARIANTS
    from .ci_reports import add_ci_report_options
    from .options import add_envoy_config_options, add_plugin_options

    names = ", ".join(i.name for i in BUILTIN_INVARIANTS)
    p = subparsers.add_parser(
        "fuzz",
        help="fuzz a filter with generated traffic and report what Envoy would crash on or misbehave with",
        description=(
            "Runs generated HTTP exchanges (odd header maps, arbitrary body frames and trailers, callout answers) through the filter, "
            f"checks the host lint after each ({names}), and writes the minimal failing example as a scenario that "
            "'proxy-wasm-emulator run FILTER.wasm FILE' replays. Exit status 1 when something was found."
        ),
    )
    p.add_argument("filter", metavar="FILTER.wasm", nargs="?", help="the compiled filter (not with --envoy-config, which names it)")
    p.add_argument("scenario", metavar="SCENARIO", nargs="?", help="a seed scenario: its plugin settings, responders and streams (checked first, then mutated)")
    p.add_argument(
        "--examples",
        type=int,
        default=100,
        metavar="N",
        help="executions (guided) or generated examples (hypothesis); default 100; 0 only checks the seed scenario",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the generator and the host (default 0)")
    add_plugin_options(p)
    p.add_argument("--out", default="fuzz-failure.json", metavar="FILE", help="where to write the minimal failing scenario (default fuzz-failure.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="wasmtime")
    p.add_argument("--invariant", action="append", metavar="NAME", help="check only these invariants (repeatable)")
    p.add_argument("--skip", action="append", metavar="NAME", help="do not check this invariant (repeatable)")
    p.add_argument("--max-streams", type=int, default=3, metavar="N", help="exchanges per example (default 3)")
    p.add_argument("--leak-repeats", type=int, default=24, metavar="N", help="replays per example for leak detection (default 24; 0 turns it off)")
    p.add_argument("--well-formed", action="store_true", help="only well-formed traffic (no adversarial header maps, bodies or statuses)")
    p.add_argument("--fuzz-config", action="store_true", help="fuzz the plugin configuration too")
    p.add_argument("--config-schema", metavar="FILE", help="fuzz the configuration from this JSON Schema")
    p.add_argument(
        "--fuzzer",
        choices=FUZZERS,
        help=(
            "guided (the default on wasmtime): a corpus of scenarios that reached new guest code, mutated; it answers the callouts the "
            "filter makes, and with --faults makes host calls fail; --examples counts executions. hypothesis: hypothesis draws every "
            "example (the default on wasmer, and with --fuzz-config or --config-schema, which the guided engine does not do yet)"
        ),
    )
    p.add_argument("--guided", action="store_const", const="guided", dest="fuzzer", help="the same as --fuzzer guided")
    p.add_argument("--corpus", metavar="DIR", help="(guided) seed from and save new corpus entries to this folder, so the next run continues")
    p.add_argument(
        "--time-budget", type=float, metavar="S", help="(guided) stop generating after S seconds, even before --examples executions; findings are still shrunk"
    )
    p.add_argument("--coverage", action="store_true", help="measure guest coverage and steer toward examples that enter more of the filter (wasmtime)")
    p.add_argument(
        "--faults", action="store_true", help="also inject host-call errors (a finding's file keeps them in its 'faults' field, so 'run' replays them)"
    )
    add_ci_report_options(p)
    add_envoy_config_options(p)
    p.set_defaults(func=run_fuzz_command)
    return p


FUZZERS = ("guided", "hypothesis")


def choose_fuzzer(args: argparse.Namespace) -> tuple[str, str | None]:
    """The fuzzer a ``fuzz`` run uses and, when the default had to change, why.

    Raises :class:`~emulator.cli.options.UsageError` when ``--fuzzer guided`` (or ``--guided``) is
    asked for something only the hypothesis engine does.
    """
    from ..engines import get_engine
    from ..extras import require
    from .options import UsageError

    lacks = None
    try:
        unsupported = get_engine(args.engine).unsupported_proposals
    except Exception:  # e.g. wasmer not installed on this Python: the run itself says so
        unsupported = frozenset({"multi-memory"})
    if "multi-memory" in unsupported:
        lacks = f"the guided engine measures guest coverage, which needs wasmtime's multi-memory ({args.engine} has none)"
    elif args.fuzz_config or args.config_schema is not None:
        lacks = "the guided engine does not mutate the plugin configuration yet (--fuzz-config, --config-schema)"
    if args.fuzzer == "guided" and lacks:
        raise UsageError(f"--fuzzer guided: {lacks}; use --fuzzer hypothesis")
    if args.fuzzer == "hypothesis" or lacks:
        if args.corpus is not None:
            raise UsageError("--corpus keeps the guided engine's corpus; the hypothesis engine keeps its examples in .hypothesis/")
        if args.time_budget is not None:
            raise UsageError("--time-budget stops the guided engine; the hypothesis engine counts --examples only")
        require("hypothesis", "--fuzzer hypothesis" if args.fuzzer == "hypothesis" else f"the hypothesis fuzzer (used because {lacks})")
        return "hypothesis", (None if args.fuzzer == "hypothesis" else lacks)
    return "guided", None


def _fail(args: argparse.Namespace, message: str, code: int = ExitCode.USAGE) -> int:
    """Report a failure before any finding (``code``: usage, or the filter's) in the run's output shape."""
    kind = "filter" if code == ExitCode.FILTER else "usage"
    if getattr(args, "json", False):
        print(json.dumps({"filter": args.filter, "error": message, "found": False, "kind": kind}))
    else:
        print(f"proxy-wasm-emulator fuzz: error: {message}", file=sys.stderr)
    return code


def _out_paths(out: Path, n: int) -> list[Path]:
    return [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(2, n + 1)]


def fuzz_options(
    args: argparse.Namespace,
    *,
    plugin_config: bytes | None = None,
    config_schema: Any = None,
    vm_config: bytes | None = None,
    environment: dict[str, str] | None = None,
) -> FuzzOptions:
    """The :class:`~emulator.fuzz.FuzzOptions` of parsed ``fuzz`` arguments (``--plugin-config``,
    ``--vm-config`` and ``--config-schema`` name files, and ``--env`` is parsed: pass what they hold)."""
    from ..fuzz.options import FuzzOptions

    return FuzzOptions(
        examples=args.examples,
        seed=args.seed,
        engine=args.engine,
        root_id=args.root_id,
        plugin_config=plugin_config,
        vm_config=vm_config,
        environment=environment or None,
        scenario=args.scenario,
        invariants=args.invariant,
        exclude=args.skip or (),
        adversarial=not args.well_formed,
        max_streams=args.max_streams,
        fuzz_config=args.fuzz_config,
        config_schema=config_schema,
        faults=args.faults,
        coverage=args.coverage,
        leak_repeats=args.leak_repeats,
        time_budget_s=args.time_budget,
    )


def run_fuzz_command(args: argparse.Namespace) -> int:
    """Run the ``fuzz`` sub-command; returns the exit status."""
    from ..errors import ModuleLoadError
    from ..fuzz.runner import FuzzSetupError, fuzz_filter
    from ..scenario import ScenarioError
    from ..vm.module import ModuleFormatError
    from .options import UsageError, plugin_overrides

    envoy_seed = None
    if args.envoy_config:
        try:
            envoy_seed = _envoy_seed(args)
        except UsageError as exc:
            return _fail(args, str(exc))
    elif args.filter is None:
        return _fail(args, "FILTER: give the .wasm to fuzz, or --envoy-config FILE")
    if args.examples < 0 or args.max_streams < 1 or args.leak_repeats < 0 or (args.time_budget is not None and args.time_budget <= 0):
        return _fail(args, "--examples and --leak-repeats must be >= 0, --max-streams >= 1 and --time-budget > 0")
    if not Path(args.filter).is_file():
        return _fail(args, f"cannot read {args.filter}")
    try:
        settings = plugin_overrides(args)
    except UsageError as exc:
        return _fail(args, str(exc))
    schema = None
    if args.config_schema is not None:
        try:
            schema = json.loads(Path(args.config_schema).read_text())
        except (OSError, ValueError) as exc:
            return _fail(args, f"--config-schema: cannot read {args.config_schema} as JSON: {exc}")
    try:
        fuzzer, why = choose_fuzzer(args)
    except UsageError as exc:
        return _fail(args, str(exc))
    progress = None if args.json else Progress("executions" if fuzzer == "guided" else "examples", args.examples)
    if not args.json:
        unit = "executions" if fuzzer == "guided" else "examples"
        print(f"fuzzing {args.filter}: {args.examples} {unit}, seed {args.seed}, {fuzzer} fuzzer, engine {args.engine}", flush=True)
        if why:
            print(f"  (the hypothesis fuzzer: {why})", flush=True)
    try:
        options = fuzz_options(
            args, plugin_config=settings["plugin_config"], config_schema=schema, vm_config=settings["vm_config"], environment=settings["environment"]
        )
        if envoy_seed is not None:
            options = replace(options, scenario=envoy_seed)
        with progress or contextlib.nullcontext():
            if fuzzer == "guided":
                from ..fuzz.guided import guided_fuzz

                report = guided_fuzz(args.filter, options, corpus=args.corpus, progress=progress)
            else:
                report = fuzz_filter(args.filter, options, progress=progress)
    except (ModuleLoadError, ModuleFormatError) as exc:
        return _fail(args, f"{args.filter} does not load: {getattr(exc, 'reason', exc)}", ExitCode.FILTER)
    except FuzzSetupError as exc:
        return _fail(args, str(exc), ExitCode.FILTER if exc.filter_failed else ExitCode.USAGE)
    except (ScenarioError, ValueError, ImportError) as exc:
        return _fail(args, str(exc))
    except (RuntimeError, OSError) as exc:  # e.g. wasmer not installed on this Python
        return _fail(args, str(exc))
    written: list[str] = []
    for finding, path in zip(report.findings, _out_paths(Path(args.out), len(report.findings)), strict=False):
        try:
            finding.write(path)
        except OSError as exc:
            return _fail(args, f"--out: cannot write {path}: {exc.strerror or exc}")
        written.append(str(path))
    try:
        _write_ci_reports(args, report, fuzzer, written)
    except OSError as exc:
        return _fail(args, f"--junit-xml/--summary: cannot write: {exc.strerror or exc}")
    if args.json:
        out = report.to_json()
        out["fuzzer"] = fuzzer
        if why:
            out["fuzzer_note"] = why
        out["written"] = written
        for f, path in zip(out["findings"], written, strict=False):
            f["file"] = path
        print(json.dumps(out, indent=2))
        return ExitCode.FOUND if report.found else ExitCode.OK
    print(report.summary())
    for i, (finding, path) in enumerate(zip(report.findings, written, strict=False)):
        extra = "" if finding.reproduces else " (does not reproduce on its own: see the report)"
        print(f"   [{i + 1}] scenario: {path}{extra}")
        if finding.faults:
            print("       needs the host faults above (in the file's 'faults' field: 'run' injects them)")
        print(f"       replay: proxy-wasm-emulator run {args.filter} {path}")
        tail = [line for line in finding.trace_tail.splitlines() if line.strip()][-4:]
        if tail:
            print("       last host calls:")
            for line in tail:
                print(f"         {line[:150]}")
    return ExitCode.FOUND if report.found else ExitCode.OK


def _write_ci_reports(args: argparse.Namespace, report: Any, fuzzer: str, written: list[str]) -> None:
    """``--junit-xml``: a test case per invariant checked, failed when it was broken; ``--summary``:
    the run and its findings in Markdown."""
    from .ci_reports import Case, md_escape, write_ci_reports

    if not (args.junit_xml or args.summary):
        return
    found = {f.invariant: (f, path) for f, path in zip(report.findings, written, strict=False)}
    cases = []
    for name in report.invariants:
        hit = found.get(name)
        if hit is None:
            cases.append(Case(name))
            continue
        finding, path = hit
        details = "\n".join([*finding.violations, "", f"scenario: {path}", f"replay: proxy-wasm-emulator run {args.filter} {path}"])
        cases.append(Case(name, failure=finding.violations[0] if finding.violations else name, details=details))
    lines = [
        f"### proxy-wasm-emulator fuzz `{args.filter}`",
        "",
        f"{report.examples} {'executions' if fuzzer == 'guided' else 'examples'} in {report.elapsed_s:.1f} s, seed {report.seed}, {fuzzer} fuzzer, engine {report.engine}"
        + (f"; guest coverage {report.coverage['covered']} of {report.coverage['sites']} blocks" if report.coverage else ""),
        "",
    ]
    if found:
        lines += ["| invariant | what broke | replay |", "|---|---|---|"]
        for name, (finding, path) in found.items():
            message = md_escape(finding.violations[0] if finding.violations else "")
            lines.append(f"| `{name}` | {message} | `proxy-wasm-emulator run {args.filter} {path}` |")
    else:
        lines.append(f"No invariant broken ({', '.join(report.invariants)}).")
    write_ci_reports(args, f"fuzz {args.filter}", cases, "\n".join(lines), time_s=report.elapsed_s)


def _envoy_seed(args: argparse.Namespace) -> dict[str, Any]:
    """``fuzz --envoy-config``: the seed scenario (the SCENARIO given, or none) with the filter's
    plugin and VM settings and the configuration's clusters written in, so findings replay them;
    options given on the command line still apply over it."""
    from ..fuzz.runner import _load_base
    from ..http.messages import scenario_bytes
    from .options import UsageError, envoy_filter

    wasm, config = envoy_filter(args, file_only=True)
    args.filter = str(wasm.module)
    seed = _load_base(args.scenario)
    if "plugins" in seed:
        raise UsageError("--envoy-config gives one plugin; the seed scenario has several (plugins): drop them or --envoy-config")
    seed.setdefault("plugin", {}).update(
        {
            "root_id": wasm.root_id,
            "name": wasm.name,
            "configuration": scenario_bytes(wasm.configuration),
            "fail_policy": wasm.fail_policy,
            "vm_id": wasm.vm_id,
            "vm_configuration": scenario_bytes(wasm.vm_configuration),
            "environment": dict(wasm.environment),
        }
    )
    seed["clusters"] = list(config.clusters)
    args.scenario = None
    return seed
