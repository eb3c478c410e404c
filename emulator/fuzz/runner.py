"""The scenario-driven front doors: :func:`fuzz_filter` (generate examples, shrink every distinct
broken invariant, report it with a replayable scenario) and :func:`fuzz_test` (the same example as a
plain hypothesis test).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..extras import require
from ..http.messages import scenario_bytes
from .execution import Execution, execute_scenario
from .invariants import Invariant, RunView, Violation, memory_growth, resolve_invariants
from .options import FUZZ_TEST_DEFAULTS, FuzzOptions, _options
from .report import Finding, FuzzReport, _confirm, format_json
from .shrink import _minimize
from .values import FaultPlan

if TYPE_CHECKING:
    from ..host import ModuleSource

__all__ = ["FuzzSetupError", "fuzz_filter", "fuzz_test"]


class FuzzSetupError(ValueError):
    """The fuzzer cannot start: bad scenario, or a plugin that refuses its configuration
    (``filter_failed``: the filter's doing, not the command line's)."""

    def __init__(self, message: str, *, filter_failed: bool = False) -> None:
        super().__init__(message)
        self.filter_failed = filter_failed


_VIOLATION_TYPES: dict[str, type[AssertionError]] = {}


def _violation_type(name: str) -> type[AssertionError]:
    """One exception class per invariant, so hypothesis shrinks each violation on its own."""
    t = _VIOLATION_TYPES.get(name)
    if t is None:
        ident = re.sub(r"\W", "_", name)
        t = _VIOLATION_TYPES[name] = type(f"InvariantViolation_{ident}", (AssertionError,), {"__module__": __name__})
    return t


def _load_base(scenario: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    from ..scenario import ScenarioError, load_scenario, parse_scenario

    if scenario is None:
        return {}
    if isinstance(scenario, dict):
        data = copy.deepcopy(scenario)
    else:
        p = Path(scenario)
        load_scenario(p)  # validates with a good message
        text = p.read_text()
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    try:
        parse_scenario(data)
    except ScenarioError as exc:
        raise FuzzSetupError(f"bad scenario: {exc}") from None
    return data


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _apply_overrides(base: dict[str, Any], opts: FuzzOptions) -> dict[str, Any]:
    """The seed scenario with the options' plugin and VM settings written in, so findings replay them."""
    sc = copy.deepcopy(base)
    if opts.root_id is not None or opts.plugin_config is not None:
        target = sc["plugins"][0] if "plugins" in sc else sc.setdefault("plugin", {})
        if opts.root_id is not None:
            target["root_id"] = opts.root_id
        if opts.plugin_config is not None:
            target["configuration"] = scenario_bytes(_as_bytes(opts.plugin_config))
    if opts.vm_config is not None:
        sc.setdefault("plugin", {})["vm_configuration"] = scenario_bytes(_as_bytes(opts.vm_config))
    if opts.environment:
        vm = sc.setdefault("plugin", {})
        vm["environment"] = {**vm.get("environment", {}), **opts.environment}
    sc.setdefault("seed", opts.seed)
    return sc


def _with_memory_repeats(invs: list[Invariant], repeats: int, warmup: int) -> list[Invariant]:
    out = []
    for inv in invs:
        if inv.name == "memory_growth" and inv.check is memory_growth:
            if repeats <= 0:
                continue

            def leak(run: RunView) -> list[str]:
                return memory_growth(run, repeats=repeats, warmup=warmup)

            inv = Invariant(inv.name, leak, inv.when, inv.description)
        out.append(inv)
    return out


def _behaviour(run: RunView) -> tuple[Any, ...]:
    """What a run did, coarsely: each stream's callbacks with their actions, and its response code.

    Two examples with the same behaviour took the same paths through the filter's callbacks; the
    costly replay checks need to run once per behaviour, not once per example."""
    return tuple((tuple((c.name, c.action) for c in s.callbacks), s.response_code()) for s in run.streams)


def _once_per_behaviour(invs: list[Invariant]) -> list[Invariant]:
    """The invariants for generated examples: replay checks (the leak check) run on an example
    whose behaviour is new, and always on a behaviour that failed them before (so hypothesis sees
    the same outcome when it replays or shrinks a finding). Seeds, findings and their
    minimization use the unfiltered invariants."""
    out = []
    for inv in invs:
        if inv.when != "repeat":
            out.append(inv)
            continue
        seen: set[tuple[Any, ...]] = set()
        failed: set[tuple[Any, ...]] = set()

        def gated(run: RunView, check: Callable[[RunView], list[str]] = inv.check, seen: set[Any] = seen, failed: set[Any] = failed) -> list[str]:
            key = run.coverage if run.coverage is not None else _behaviour(run)
            if key in seen and key not in failed:
                return []
            seen.add(key)
            messages = check(run)
            if messages:
                failed.add(key)
            return messages

        out.append(Invariant(inv.name, gated, inv.when, inv.description))
    return out


def _prepare(path: ModuleSource, opts: FuzzOptions) -> tuple[dict[str, Any], Any, list[Invariant]]:
    """The seed scenario (with the options' overrides), parsed, and the invariants to check."""
    from ..host import Host
    from ..scenario import parse_scenario

    Host(engine=opts.engine, trace=False).program(path)  # ModuleLoadError early; compiled once for every example
    base = _apply_overrides(_load_base(opts.scenario), opts)
    parsed = parse_scenario(base)
    invs = _with_memory_repeats(resolve_invariants(opts.invariants, exclude=opts.exclude), opts.leak_repeats, opts.leak_warmup)
    return base, parsed, invs


def _site_count(path: ModuleSource, engine: str) -> int:
    """How many coverage sites the module has (its instrumented program is already linked)."""
    from ..host import Host

    program = Host(engine=engine, trace=False, coverage=True).program(path)
    return len(program.coverage.sites) if program.coverage is not None else 0


def _run_drawn(
    data: Any, path: ModuleSource, sc: dict[str, Any], plan: FaultPlan | None, engine: str, invs: list[Invariant], coverage: bool = False
) -> Execution:
    """One generated example: callouts are answered by draws from ``data``; the start is reused."""
    from .strategies import callout_responses, grpc_responses

    return execute_scenario(
        path,
        sc,
        engine=engine,
        invariants=invs,
        faults=plan,
        pick_http=lambda cluster: data.draw(callout_responses(), label=f"answer to a call to {cluster}"),
        pick_grpc=lambda cluster: data.draw(grpc_responses(), label=f"gRPC answer from {cluster}"),
        reuse=True,
        coverage=coverage,
    )


def fuzz_test(path: ModuleSource, options: FuzzOptions | None = None, **overrides: Any) -> Callable[[], None]:
    """The example of :func:`fuzz_filter` as a plain hypothesis test, for pytest, ``pytest -n`` and HypoFuzz::

        test_my_filter = settings(max_examples=500)(fuzz_test("filter.wasm"))

    A failure raises ``AssertionError`` with the violations and the scenario (JSON) to replay with
    ``proxy-wasm-emulator run``. ``options`` (default :data:`FUZZ_TEST_DEFAULTS`) and keyword
    ``overrides`` are :class:`FuzzOptions`; ``seed`` seeds the host (the hypothesis seed, the
    number of examples and shrinking come from pytest's or HypoFuzz's settings). ``coverage=True``
    loads the guest with coverage probes and reports the blocks each example entered to
    ``hypothesis.target``, which steers pytest's and HypoFuzz's generation (wasmtime).
    """
    require("hypothesis", "fuzz_test")
    from hypothesis import given, target
    from hypothesis import strategies as st

    from .cases import _case_space

    opts = _options("fuzz_test", options, FUZZ_TEST_DEFAULTS, overrides, refuses=("properties",))
    base, parsed, invs = _prepare(path, opts)
    engine = opts.engine
    cases = _case_space(path, base, parsed, opts).strategy()

    @given(data=st.data())
    def test_filter_invariants(data: Any) -> None:
        sc, plan = data.draw(cases, label="scenario")
        res = _run_drawn(data, path, sc, plan, engine, invs, opts.coverage)
        if res.coverage is not None:  # coverage=True: steer hypothesis (and HypoFuzz) toward more of the guest
            target(float(len(res.coverage)), label="guest basic blocks entered")
        if res.violations:
            full = _with_responders(sc, res)
            if plan:
                full["faults"] = plan.to_json()
            faults_note = f"\nhost faults: {plan}" if plan else ""
            raise AssertionError("\n".join(map(str, res.violations)) + faults_note + "\nscenario (replay with proxy-wasm-emulator run):\n" + format_json(full))

    return test_filter_invariants


def _with_responders(sc: dict[str, Any], res: Execution) -> dict[str, Any]:
    """The scenario plus responders for the callout answers drawn while it ran."""
    http, grpc = res.responders()
    full = copy.deepcopy(sc)
    if http:
        full["http_calls"] = [*full.get("http_calls", []), *http]
    if grpc:
        full["grpc_calls"] = [*full.get("grpc_calls", []), *grpc]
    return full


def fuzz_filter(
    path: ModuleSource,
    options: FuzzOptions | None = None,
    *,
    progress: Callable[[int, int, int], None] | None = None,
    **overrides: Any,
) -> FuzzReport:
    """Fuzz a filter with generated traffic and report every distinct broken invariant, shrunk.

    ``options`` (default ``FuzzOptions()``) and keyword ``overrides`` are :class:`FuzzOptions`:
    ``examples``, ``seed`` (hypothesis and the host), a seed ``scenario`` (``root_id`` and
    ``plugin_config`` override its plugin), the ``invariants`` (minus ``exclude``), ``adversarial``
    traffic, ``max_streams`` per example, the dictionary (``vocabulary``, ``harvest``), fuzzed
    configurations (``fuzz_config``, ``config_schema``), host ``faults``, the leak check
    (``leak_repeats``, ``leak_warmup``), ``find_all`` and ``shrink``.
    ``progress(examples_run, examples, findings)`` is called after every example.

    Raises :class:`ModuleLoadError` if the module does not load and :class:`FuzzSetupError` for a
    bad scenario or a plugin that refuses its configuration (without trapping).
    """
    require("hypothesis", "fuzz_filter (the hypothesis fuzzer)")
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as hseed
    from hypothesis import strategies as st
    from hypothesis.control import current_build_context
    from hypothesis.errors import Flaky, HypothesisWarning

    from .cases import _case_space

    opts = _options("fuzz_filter", options, FuzzOptions(), overrides, refuses=("properties",))
    examples, seed, engine = opts.examples, opts.seed, opts.engine
    started = time.perf_counter()
    filter_name = str(path) if not isinstance(path, bytes | bytearray) else "<bytes>"
    base, parsed, invs = _prepare(path, opts)
    names = [i.name for i in invs]
    report = FuzzReport(filter_name, seed, 0, [], names, engine=engine, module=path, checked=invs)

    # 1. the seed scenario as given (or just the plugin start)
    first = execute_scenario(path, base, engine=engine, invariants=invs)
    if first.violations:
        report.findings = _group(first.violations, base, None, shrunk=False)
        _confirm(report, engine)
        report.examples = 1
        report.elapsed_s = time.perf_counter() - started
        return report
    if first.run is not None and first.run.start_error is not None and not opts.fuzz_config and opts.config_schema is None:
        err = first.run.start_error
        raise FuzzSetupError(
            f"the plugin does not start ({err.phase}: {err.reason.splitlines()[0]}): fix the configuration or pass fuzz_config=True", filter_failed=True
        )

    # 2. generated examples
    case_strategy = _case_space(path, base, parsed, opts).strategy()
    explore = _once_per_behaviour(invs)

    found: dict[str, Finding] = {}
    state = {"run": 0, "generated": 0, "in_round_found": False}
    covered: set[tuple[int, int]] = set()

    def one_example(data: Any) -> None:
        final = current_build_context().is_final
        sc, plan = data.draw(case_strategy, label="scenario")
        res = _run_drawn(data, path, sc, plan, engine, explore, opts.coverage)
        state["run"] += 1
        if res.coverage is not None:
            covered.update(res.coverage)
            target(float(len(res.coverage)), label="guest basic blocks entered")  # steer toward examples that run more of the filter
        if not state["in_round_found"]:
            state["generated"] += 1
        if progress is not None:
            progress(state["run"], examples, len(found) + len(pending))
        viols = [v for v in res.violations if v.invariant not in found]
        if not viols:
            return
        name = viols[0].invariant
        full = _with_responders(sc, res)
        full["description"] = f"found by proxy-wasm-emulator fuzz (seed {seed}): {viols[0]}"
        state["in_round_found"] = True
        finding = Finding(name, [v.message for v in viols if v.invariant == name], full, plan.to_json() if plan else None)
        if final or name not in finals:
            pending[name] = finding  # the last failing run of each invariant is hypothesis's final, minimal replay
            if final:
                finals.add(name)
        raise _violation_type(name)(f"{name}: {viols[0].message}")

    round_no = 0
    pending: dict[str, Finding] = {}
    finals: set[str] = set()
    while state["generated"] < examples:
        remaining = examples - state["generated"]
        state["in_round_found"] = False
        pending = {}
        finals = set()
        test = settings(
            max_examples=remaining,
            database=None,
            deadline=None,
            derandomize=False,
            report_multiple_bugs=True,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            phases=[Phase.generate, Phase.shrink] if opts.shrink else [Phase.generate],
            print_blob=False,
        )(hseed(seed + round_no)(given(st.data())(one_example)))
        try:
            with warnings.catch_warnings(), _without_local_constants():
                warnings.simplefilter("ignore", HypothesisWarning)  # reprs of 1 MiB bodies
                test()
        except Flaky:
            pass  # hypothesis could not replay a failure: keep what was recorded
        except BaseException as exc:  # one violation, or an exception group of several
            if not _is_ours(exc):
                raise
        round_no += 1
        if not pending:
            break
        for name in names + sorted(set(pending) - set(names)):
            if name in pending and name not in found:
                found[name] = pending[name]
        if not opts.find_all:
            break
        if state["generated"] == 0:
            break
    order = {n: i for i, n in enumerate(names)}
    report.findings = sorted(found.values(), key=lambda f: order.get(f.invariant, len(order)))
    for f in report.findings:
        if opts.shrink:
            _minimize(path, f, engine=engine, invariants=invs, base=base)
        else:
            f.shrunk = False
    _confirm(report, engine)
    report.examples = state["run"] + 1
    report.elapsed_s = time.perf_counter() - started
    if opts.coverage:
        report.coverage = {"sites": _site_count(path, engine), "covered": len(covered)}
    return report


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Keep hypothesis from mixing constants of the modules imported so far into generated data.

    Hypothesis draws now and then from literals found in the "local" (non-site-packages, non-test)
    modules loaded in the process, so the same seed would generate different examples depending
    on what else was imported. Fuzz runs must replay from their seed alone; this reaches into
    hypothesis internals and does nothing if they moved.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if original is None or cache is None or not hasattr(providers, "Constants"):
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def _is_ours(exc: BaseException) -> bool:
    if isinstance(exc, tuple(_VIOLATION_TYPES.values())):
        return True
    group = getattr(exc, "exceptions", None)
    return bool(group) and all(_is_ours(e) for e in group)


def _group(violations: list[Violation], scenario: dict[str, Any], plan: FaultPlan | None, *, shrunk: bool) -> list[Finding]:
    if not violations:  # nearly every execution: no copy of the scenario
        return []
    by: dict[str, list[str]] = {}
    for v in violations:
        by.setdefault(v.invariant, []).append(v.message)
    sc = copy.deepcopy(scenario)
    return [Finding(name, msgs, sc, plan.to_json() if plan else None, shrunk=shrunk) for name, msgs in by.items()]
