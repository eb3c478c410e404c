"""One execution: a scenario run the way ``proxy-wasm-emulator run`` runs it, then checked by the
invariants (:func:`execute_scenario`). Its start is fresh or restored from the session's snapshot,
host faults are installed on request, and calls to clusters no responder covers are answered by
draws.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from abi.records import field, record

from ..callouts import GrpcCall, HttpCall, Responder
from ..errors import ModuleLoadError, PluginStartError
from ..session import default_session
from ..vm.coverage import covered_sites
from .faults import FaultInjectingObserver, InjectedFault
from .invariants import Invariant, RunView, Violation, check, resolve_invariants, shutdown_host
from .values import CalloutResponse, FaultPlan, GrpcResponse

if TYPE_CHECKING:
    from ..host import Host, ModuleSource


__all__ = ["Execution", "execute_scenario"]


# -- callout answers drawn when the filter makes the call ------------------------------------------


@record
class _DrawingResponder(Responder):
    """The last HTTP responder: answers a cluster's calls with a response drawn at its first call."""

    pick: Callable[[str], CalloutResponse] | None = None
    drawn: dict[str, CalloutResponse] = field(default_factory=dict)

    def matches(self, call: HttpCall) -> bool:
        return True

    def answer(self, call: HttpCall) -> None:
        spec = self.drawn.get(call.cluster)
        if spec is None:
            assert self.pick is not None
            spec = self.drawn[call.cluster] = self.pick(call.cluster)
        if call.pending:
            spec.answer(call)


class _DrawingGrpcResponders(list):  # type: ignore[type-arg]
    """gRPC responders that draw an answer for a unary call's cluster the first time one is made.

    ``GrpcCalls.record`` appends the call and then iterates its responders: the iteration is the
    moment the call's cluster is known (a fallback hook in ``GrpcCalls`` would be cleaner).
    """

    def __init__(self, owner: Any, pick: Callable[[str], GrpcResponse], initial: Iterable[dict[str, Any]]) -> None:
        super().__init__(initial)
        self._owner = owner
        self._pick = pick
        self.drawn: dict[str, GrpcResponse] = {}

    def __iter__(self) -> Any:
        calls = self._owner.calls
        if calls and isinstance(calls[-1], GrpcCall) and calls[-1].pending:
            call = calls[-1]
            known = any(
                r["cluster"] == call.cluster and r["service"] in (None, call.service) and r["method"] in (None, call.method) for r in list.__iter__(self)
            )
            if not known and call.cluster not in self.drawn:
                spec = self.drawn[call.cluster] = self._pick(call.cluster)
                responder = spec.to_responder(call.cluster)
                if responder is not None:
                    self.append(responder)
        return list.__iter__(self)


# -- running one scenario with the invariants ------------------------------------------------------


@record
class Execution:
    """The outcome of :func:`execute_scenario`."""

    violations: list[Violation]
    host: Host | None = None
    run: RunView | None = None
    http_drawn: dict[str, CalloutResponse] = field(default_factory=dict)
    grpc_drawn: dict[str, GrpcResponse] = field(default_factory=dict)
    injected: list[InjectedFault] = field(default_factory=list)
    bitmaps: tuple[bytes, ...] | None = None
    """Each VM's coverage bitmap (``coverage=True``): byte ``i`` is non-zero when the guest entered
    site ``i`` (:func:`emulator.vm.coverage.bitmap_bits` compares them in C)."""
    comparisons: list[tuple[bytes, bytes]] = field(default_factory=list)
    """The operands of the guest's ``memcmp``/``bcmp`` calls (``coverage=True``), for the fuzzer's words."""

    @functools.cached_property
    def coverage(self) -> frozenset[tuple[int, int]] | None:
        """The guest sites the traffic entered (``coverage=True``): ``(VM position, site)``, decoded
        from :attr:`bitmaps` when first read."""
        return None if self.bitmaps is None else covered_sites(self.bitmaps)

    def responders(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Scenario ``http_calls`` and ``grpc_calls`` entries for the answers drawn during the run."""
        http = [{"cluster": c, "response": r.to_scenario()} for c, r in self.http_drawn.items() if r.kind != "none"]
        grpc = [{"cluster": c, "response": r.to_scenario()} for c, r in self.grpc_drawn.items() if r.kind != "none"]
        return http, grpc


def execute_scenario(
    module: ModuleSource,
    scenario: dict[str, Any] | Any,
    *,
    engine: str = "wasmtime",
    invariants: Sequence[Invariant] | None = None,
    faults: FaultPlan | None = None,
    pick_http: Callable[[str], CalloutResponse] | None = None,
    pick_grpc: Callable[[str], GrpcResponse] | None = None,
    trace: bool = False,
    shutdown: bool = True,
    reuse: bool = False,
    coverage: bool = False,
) -> Execution:
    """Run a scenario the way ``proxy-wasm-emulator run`` does, then check the invariants.

    ``scenario`` is a scenario dict (or a parsed :class:`~emulator.scenario.Scenario`). ``faults``
    installs a :class:`FaultInjectingObserver`; ``pick_http``/``pick_grpc`` answer calls to
    clusters no scenario responder covers (the answers drawn are in the result, to write back
    into the scenario). Raises :class:`ModuleLoadError` for a module that does not load.

    ``reuse=True`` (what the fuzzer's examples use) starts from a snapshot of the plugin's
    post-configure state when an earlier run had the same start (module, engine, seed, VM,
    plugins, properties, responders, shared data): no ``_initialize``, ``on_vm_start`` or
    ``on_configure`` again, just :meth:`Host.restore`. Runs with host faults, and starts that
    failed or made callouts, always start fresh. Findings are replayed fresh.

    ``coverage=True`` loads the module with guest coverage probes; the result's ``coverage`` is
    the set of ``(VM position, site)`` the traffic entered.
    """
    from ..scenario import Scenario, parse_scenario, run_connections, run_scenario

    sc = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
    if faults is None and sc.faults:
        faults = FaultPlan.from_json(sc.faults)
    invs = list(invariants) if invariants is not None else resolve_invariants()
    pooled = _restored_start(module, engine, sc, trace, coverage) if reuse and faults is None else None
    if pooled is not None:
        (host, plugins), observer = pooled, None
    else:
        host, observer = _fresh_host(module, engine, sc, trace, faults, coverage)
        plugins = None
    http_responder = None
    if pick_http is not None:
        http_responder = _DrawingResponder("*", pick=pick_http)
        host.http_calls.responders.append(http_responder)
    grpc_responders = None
    if pick_grpc is not None:
        grpc_responders = _DrawingGrpcResponders(host.grpc_calls, pick_grpc, host.grpc_calls.responders)
        host.grpc_calls.responders = grpc_responders
    result = Execution([], host)
    run = RunView(host)
    result.run = run
    try:
        try:
            if plugins is None:
                plugins = _start_plugins(host, module, sc)
        except PluginStartError as exc:
            run.start_error = exc
            run.plugins = list(host.plugins)
        else:
            run.plugins = list(host.plugins)
            first = next(iter(plugins.values()))
            for vm in host.vms:
                vm.reset_coverage()
            runs = run_scenario(first, sc, plugins)
            run.streams = [s for _, s in runs]
            if sc.connections:
                run_connections(first, sc, plugins)
            if coverage:
                result.bitmaps = run.bitmaps = tuple(vm.coverage() or b"" for vm in host.vms)
                result.comparisons = [pair for vm in host.vms for pair in vm.comparisons()]
            if sc.streams:
                run.repeat = lambda: run_scenario(first, sc, plugins)
        result.violations += check(run, invs, "end")
        result.violations += check(run, invs, "repeat")
        run.repeat = None
        if shutdown:
            shutdown_host(host)
            run.shut_down = True
            result.violations += check(run, invs, "shutdown")
    except ModuleLoadError:
        raise
    except Exception as exc:  # a bug in the emulator, or a user invariant that raised
        import traceback

        tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result.violations.append(Violation("emulator_error", f"the emulator raised {tail} (a bug in proxy-wasm-emulator or in an invariant)"))
    if http_responder is not None:
        result.http_drawn = dict(http_responder.drawn)
    if grpc_responders is not None:
        result.grpc_drawn = dict(grpc_responders.drawn)
    if observer is not None:
        result.injected = list(observer.injected)
    return result


# -- the start of a run, fresh or restored ---------------------------------------------------------


def _fresh_host(
    module: ModuleSource, engine: str, sc: Any, trace: bool, faults: FaultPlan | None, coverage: bool = False
) -> tuple[Host, FaultInjectingObserver | None]:
    """A new seeded host with the scenario's responders, clusters and shared data installed."""
    from ..host import Host
    from ..scenario import prepare_host

    host = Host(engine=engine, seed=sc.seed, trace=trace, coverage=coverage)
    observer = FaultInjectingObserver(host, faults) if faults else None
    if observer is not None:
        host.observer = observer
    prepare_host(host, sc)
    return host, observer


def _start_plugins(host: Host, module: ModuleSource, sc: Any) -> dict[str, Any]:
    """Create the scenario's VM and start its plugins (raises :class:`PluginStartError`)."""
    vm = host.create_vm(host.program(module), vm_id=sc.vm_id, vm_config=sc.vm_configuration, environment=sc.environment)
    plugins = {}
    for spec in sc.plugins:
        plugins[spec.root_id] = host.add_plugin(
            vm,
            root_id=spec.root_id,
            name=spec.name,
            plugin_config=spec.configuration,
            fail_policy=spec.fail_policy,
            allow_on_headers_stop_iteration=spec.allow_on_headers_stop_iteration,
            properties=sc.properties,
        )
    return plugins


def _start_key(module: ModuleSource, engine: str, sc: Any, trace: bool, coverage: bool = False) -> tuple[Any, ...]:
    """Everything that decides the state a run starts from, except its streams."""
    mod = hashlib.sha256(bytes(module)).hexdigest() if isinstance(module, (bytes, bytearray)) else os.fspath(module)
    plugins = tuple((p.root_id, p.name, bytes(p.configuration), p.fail_policy, p.allow_on_headers_stop_iteration) for p in sc.plugins)
    shared = (sc.seed, sc.vm_id, sc.vm_configuration, repr(sc.environment), repr(sc.properties), repr(sc.node))
    # the responders are not part of it: a start that made callouts is never reused, so the answers
    # never shaped a reused start, and each run installs its own (a fuzzer mutates them often)
    return (mod, engine, trace, coverage, plugins, shared, repr(sc.shared_data), repr(sc.clusters))


def _restored_start(module: ModuleSource, engine: str, sc: Any, trace: bool, coverage: bool = False) -> tuple[Host, dict[str, Any]] | None:
    """A host rewound to the plugins' post-configure state, or ``None`` when it cannot be reused."""
    from ..scenario import install_responders

    key = _start_key(module, engine, sc, trace, coverage)
    session = default_session()
    entry = session.start(key)
    if entry is None:
        host, _ = _fresh_host(module, engine, sc, trace, None, coverage)
        try:
            plugins = _start_plugins(host, module, sc)
        except PluginStartError:
            return None
        if host.http_calls.calls or host.grpc_calls.calls:
            return None  # a start that made callouts depends on how they are answered
        entry = (host, host.snapshot(), plugins)
        session.remember_start(key, entry)
    host, snap, plugins = entry
    host.restore(snap)
    host.http_calls.responders = []
    host.grpc_calls.responders = []
    install_responders(host, sc)
    return host, plugins
