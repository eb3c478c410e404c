"""Property-based fuzzing of a compiled filter: generated traffic, host faults, the host lint.

Three front doors:

* :func:`fuzz_filter` runs hypothesis over generated scenarios (exchanges with arbitrary headers,
  chunking and trailers, callout answers drawn when the filter makes a call, optional plugin
  configurations and host faults), checks the invariants of :mod:`emulator.fuzz.invariants` after each,
  shrinks every distinct violation to a minimal example and returns it as a scenario file that
  ``proxy-wasm-emulator run`` replays::

      report = fuzz_filter("filter.wasm", examples=200, seed=1)
      for finding in report.findings:
          print(finding.invariant, finding.violations)
          finding.write("failure.json")      # proxy-wasm-emulator run filter.wasm failure.json

* :func:`filter_state_machine` builds a hypothesis ``RuleBasedStateMachine`` that interleaves new
  streams, the phases of open streams, clock advances (ticks, callout timeouts), callout and gRPC
  answers, queue events and reconfigurations, checking the invariants after every step::

      TestMyFilter = filter_state_machine("filter.wasm").TestCase

* :func:`fuzz_test` turns the same example into a plain hypothesis test, so ``pytest``,
  ``pytest -n`` and HypoFuzz run it like any other property::

      test_my_filter = settings(max_examples=500)(fuzz_test("filter.wasm"))

All of them, and ``proxy-wasm-emulator fuzz``, take one :class:`FuzzOptions` (or its fields as
keyword arguments): ``fuzz_filter(path, FuzzOptions(examples=200, faults=True))``.

Header names come from a dictionary harvested from the module's data segments
(:func:`harvest_strings`), mixed with random and common names, so the fuzzer reaches the headers a
filter looks for without being told. Every example runs in a fresh :class:`~emulator.Host` (seeded;
compiled modules are shared process-wide, so the reset costs one VM start). A finding is shrunk by
hypothesis, then delta-debugged at the scenario level (streams, headers, frames, trailers,
responders, faults) and replayed once more from the file alone.

Long campaigns: put ``fuzz_test`` targets (or :func:`filter_state_machine` ``.TestCase`` classes) in
a test module and hand it to HypoFuzz (``pip install hypofuzz``, then
``hypothesis fuzz -n 8 -- tests/test_fuzz_my_filter.py``), which spreads the targets over worker
processes and keeps a database of interesting inputs; ``pytest -n auto`` with a large
``max_examples`` profile works too. Each failure message carries the scenario to replay with
``proxy-wasm-emulator run FILTER.wasm FILE``. Coverage guidance only sees the emulator's Python
code (which host calls and stream paths a filter reaches), not the guest's own branches.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hypothesis import strategies as st

from ..callouts import GrpcCall, HttpCall, Responder
from ..errors import CallbackError, ModuleLoadError, PluginStartError
from ..http.messages import Message
from ..observer import HostCallObserver
from ..session import default_session
from ..trace import TraceEntry, decode_call
from .invariants import Invariant, RunView, Violation, check, memory_growth, resolve_invariants, shutdown_host
from .strategies import (
    CalloutResponse,
    Exchange,
    FaultPlan,
    GrpcResponse,
    callout_responses,
    chunkings,
    exchanges,
    fault_plans,
    grpc_responses,
    header_names,
    header_values,
    plugin_configs,
    plugin_configs_from_schema,
    scenario_bytes,
)

if TYPE_CHECKING:
    from ..host import Host, ModuleSource
    from ..vm.instance import Vm

__all__ = [
    "FUZZ_TEST_DEFAULTS",
    "STATE_MACHINE_DEFAULTS",
    "Execution",
    "FaultInjectingObserver",
    "Finding",
    "FuzzOptions",
    "FuzzReport",
    "FuzzSetupError",
    "InjectedFault",
    "Vocabulary",
    "data_segments",
    "execute_scenario",
    "filter_state_machine",
    "format_json",
    "fuzz_filter",
    "fuzz_test",
    "harvest_strings",
    "module_vocabulary",
    "run_filter_state_machine",
]


class FuzzSetupError(ValueError):
    """The fuzzer cannot start: bad scenario, or a plugin that refuses its configuration."""


# -- the options -----------------------------------------------------------------------------------

_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True)
class FuzzOptions:
    """What to fuzz and how: one set of options for every front door.

    :func:`fuzz_filter`, :func:`fuzz_test`, :func:`filter_state_machine` (and
    :func:`run_filter_state_machine`) and ``proxy-wasm-emulator fuzz`` take a ``FuzzOptions``; the
    Python front doors also take its fields as keyword arguments, applied over it
    (``fuzz_filter(path, options, seed=2)``). Without one, a front door starts from its defaults:
    this class's for :func:`fuzz_filter` and the command line, :data:`FUZZ_TEST_DEFAULTS` for
    :func:`fuzz_test` (no leak check), :data:`STATE_MACHINE_DEFAULTS` for the state machine
    (well-formed traffic, 4 open streams, 50 runs). A field a front door has no use for is
    ignored there, except ``scenario`` and ``properties``, which describe the filter's world:
    a front door that cannot apply them refuses them (``ValueError``).
    """

    examples: int = 100
    """Examples to generate: :func:`fuzz_filter` (shrinking runs more; 0 only checks the seed
    scenario) and :func:`run_filter_state_machine` (runs). :func:`fuzz_test` leaves the count to
    hypothesis's ``settings(max_examples=...)``."""
    seed: int = 0
    """Seeds the host; :func:`fuzz_filter` seeds hypothesis with it too (the other front doors take
    hypothesis's seed from its settings)."""
    engine: str = "wasmtime"
    """The wasm engine (:data:`emulator.engines.ENGINE_NAMES`)."""
    root_id: str | None = None
    """The plugin's root_id (``None``: the seed scenario's, else empty)."""
    plugin_config: bytes | str | None = None
    """The plugin configuration (``None``: the seed scenario's, else empty). With ``fuzz_config``
    it is also the base that generated configurations truncate."""
    scenario: str | Path | dict[str, Any] | None = None
    """A seed scenario (file or dict) for :func:`fuzz_filter` and :func:`fuzz_test`: its streams are
    checked first, then mutated alongside generated ones; its plugins, properties, responders and
    shared data apply to every example."""
    properties: dict[str, Any] | None = None
    """Properties of the state machine's plugin (the scenario-driven front doors take them from
    the seed scenario)."""
    invariants: tuple[Invariant | str | Callable[[RunView], Any], ...] | None = None
    """Invariants to check: names, :class:`~emulator.fuzz.invariants.Invariant` objects or callables
    (``None``: the built-in ones plus registered ones)."""
    exclude: tuple[str, ...] = ()
    """Names of invariants not to check."""
    adversarial: bool = True
    """Odd header maps, bodies and statuses as well as well-formed ones (the command line's
    ``--well-formed`` turns it off)."""
    max_streams: int = 3
    """Exchanges per example; in the state machine, streams open at once."""
    vocabulary: tuple[str, ...] = ()
    """Extra words for the header dictionary."""
    harvest: bool = True
    """Add the strings of the module's data segments to the dictionary (:func:`module_vocabulary`)."""
    fuzz_config: bool = False
    """Fuzz the plugin configuration too (:func:`~emulator.fuzz.strategies.plugin_configs`)."""
    config_schema: dict[str, Any] | bool | None = None
    """Generate configurations valid against this JSON Schema (needs ``hypothesis-jsonschema``);
    implies ``fuzz_config``."""
    faults: bool = False
    """Inject host-call errors (:func:`~emulator.fuzz.strategies.fault_plans`)."""
    leak_repeats: int = 24
    """Replays per example for the ``memory_growth`` invariant (0 turns it off; the state machine
    has no replays)."""
    leak_warmup: int = 4
    """Replays before ``memory_growth`` starts measuring."""
    find_all: bool = True
    """:func:`fuzz_filter`: keep fuzzing for other invariants after the first finding."""
    shrink: bool = True
    """Shrink a failure to a minimal example (:func:`fuzz_filter` and
    :func:`run_filter_state_machine`; :func:`fuzz_test` follows hypothesis's settings)."""
    steps: int = 30
    """:func:`run_filter_state_machine`: steps per run at most."""

    def __post_init__(self) -> None:
        for name in ("invariants", "exclude", "vocabulary"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                if isinstance(value, str | bytes):
                    raise TypeError(f"FuzzOptions.{name} is a list of names, not one string {value!r}")
                object.__setattr__(self, name, tuple(value))
        for name, least in (("examples", 0), ("leak_repeats", 0), ("leak_warmup", 0), ("max_streams", 1), ("steps", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"FuzzOptions.{name} must be an integer >= {least}, not {value!r}")

    def replace(self, **changes: Any) -> FuzzOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def plugin_config_bytes(self) -> bytes | None:
        """:attr:`plugin_config` as bytes (``None`` if unset)."""
        return self.plugin_config.encode() if isinstance(self.plugin_config, str) else self.plugin_config


FUZZ_TEST_DEFAULTS = FuzzOptions(leak_repeats=0)
"""Where :func:`fuzz_test` starts: no leak check (24 replays of every example would slow a test down)."""

STATE_MACHINE_DEFAULTS = FuzzOptions(examples=50, adversarial=False, max_streams=4)
"""Where :func:`filter_state_machine` starts: well-formed traffic, 4 open streams, 50 runs."""

_FIELDS = frozenset(f.name for f in fields(FuzzOptions))


def _options(door: str, options: FuzzOptions | None, defaults: FuzzOptions, overrides: dict[str, Any], *, refuses: Sequence[str] = ()) -> FuzzOptions:
    """``options`` (or the front door's ``defaults``) with keyword ``overrides`` applied."""
    if options is not None and not isinstance(options, FuzzOptions):
        raise TypeError(f"{door}() takes a FuzzOptions as options, not {type(options).__name__}")
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise TypeError(f"{door}() got an unexpected keyword argument {unknown[0]!r} (FuzzOptions fields: {', '.join(sorted(_FIELDS))})")
    opts = replace(options if options is not None else defaults, **overrides) if overrides else (options if options is not None else defaults)
    for name in refuses:
        if getattr(opts, name) is not None:
            raise ValueError(f"{door}() cannot apply FuzzOptions.{name}" + (": put them in the seed scenario" if name == "properties" else ""))
    return opts


# -- the dictionary: strings from the module's data segments ---------------------------------------


def _read_wasm(module: ModuleSource) -> bytes:
    if isinstance(module, bytes | bytearray):
        return bytes(module)
    return Path(module).read_bytes()


def data_segments(module: ModuleSource) -> list[bytes]:
    """The bytes of every data segment of a wasm module (active and passive)."""
    from ..vm.module import parse_module

    data = _read_wasm(module)
    return [data[start:end] for start, end in parse_module(data).data_segments]


_SPLIT = re.compile(rb"[\s\"'=<>,;(){}\[\]|\\`]+")
_NAME_LIKE = re.compile(r"^:?[a-z0-9][a-z0-9_.-]*[a-z0-9]$")


def harvest_strings(module: ModuleSource, *, min_len: int = 3, max_len: int = 64, limit: int = 4096) -> list[str]:
    """Printable strings of the module's data segments, cut into dictionary words.

    Runs of printable ASCII (and of UTF-16 ASCII, as AssemblyScript stores strings) are split at
    whitespace and punctuation, and before every ``x-`` (SDKs
    such as Rust's store string literals back to back, so ``x-denyx-pause`` holds two names).
    Words keep their first-seen order; at most ``limit``.
    """
    seen: dict[str, None] = {}
    for seg in data_segments(module):
        runs = re.findall(rb"[\x20-\x7e]{%d,}" % min_len, seg)
        # UTF-16 (AssemblyScript); a segment loses its trailing zero bytes, so the last character may lack its \0
        wide = re.findall(rb"(?:[\x20-\x7e]\x00){%d,}(?:[\x20-\x7e]\Z)?" % (min_len - 1), seg)
        runs += [(r + b"\0" * (len(r) % 2)).decode("utf-16-le").encode() for r in wide]
        for run in runs:
            for piece in _SPLIT.split(run):
                for word in re.split(rb"(?=x-)", piece):
                    w = word.decode()
                    w = w.rstrip(":.") if w.startswith(":") else w.strip(":.-_/")
                    if min_len <= len(w) <= max_len and w not in seen:
                        seen[w] = None
                        if len(seen) >= limit:
                            return list(seen)
    return list(seen)


@dataclass
class Vocabulary:
    """Dictionary words for header names and values."""

    names: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    def merged(self, other: Vocabulary) -> Vocabulary:
        """Both vocabularies, ``other``'s words first, without repeats."""
        return Vocabulary(list(dict.fromkeys([*other.names, *self.names])), list(dict.fromkeys([*other.values, *self.values])))


def module_vocabulary(module: ModuleSource, *, max_names: int = 256, max_values: int = 256) -> Vocabulary:
    """Header-name-like words (lower-case tokens; hyphenated and pseudo-header ones first) and
    short value words harvested from the module's data segments."""
    words = harvest_strings(module)
    names = [w for w in words if _NAME_LIKE.match(w) and len(w) <= 40]
    names.sort(key=lambda w: 0 if ("-" in w or w.startswith(":")) else 1)
    values = [w for w in words if len(w) <= 32]
    return Vocabulary(names[:max_names], values[:max_values])


# -- host faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InjectedFault:
    """One host call that a :class:`FaultInjectingObserver` answered with an error status."""

    function: str
    status: int
    callback: str | None
    context_id: int
    rule: int


class FaultInjectingObserver(HostCallObserver):
    """A host-call observer that applies a :class:`~emulator.fuzz.strategies.FaultPlan`.

    Install it with ``host.observer = FaultInjectingObserver(host, plan)`` before loading: a call a
    rule covers returns the rule's status without running; every other call goes through the
    normal observer (trace, expectations). ``injected`` lists what was injected.
    """

    def __init__(self, host: Host, plan: FaultPlan) -> None:
        super().__init__(host)
        self.plan = plan
        self.injected: list[InjectedFault] = []
        self._seen = [0] * len(plan.rules)

    def __call__(self, vm: Vm, name: str, impl: Callable[..., Any], args: tuple[int, ...], fault: int) -> Any:
        chosen = None
        for i, rule in enumerate(self.plan.rules):
            if rule.function != name or (rule.callback is not None and rule.callback != vm.current_callback):
                continue
            self._seen[i] += 1
            if chosen is None and rule.covers(self._seen[i]):
                chosen = i
        if chosen is None:
            return super().__call__(vm, name, impl, args, fault)
        status = int(self.plan.rules[chosen].status)
        self.counts[name] += 1
        ctx = vm.active.id
        self.injected.append(InjectedFault(name, status, vm.current_callback, ctx, chosen))
        host = self.host
        if host.trace is not None:
            host.trace.append(TraceEntry(host.next_seq(), name, decode_call(vm, name, args), status, {}, ctx, vm.current_callback, True))
        return status


# -- callout answers drawn when the filter makes the call ------------------------------------------


@dataclass
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


@dataclass
class Execution:
    """The outcome of :func:`execute_scenario`."""

    violations: list[Violation]
    host: Host | None = None
    run: RunView | None = None
    http_drawn: dict[str, CalloutResponse] = field(default_factory=dict)
    grpc_drawn: dict[str, GrpcResponse] = field(default_factory=dict)
    injected: list[InjectedFault] = field(default_factory=list)

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
    """
    from ..scenario import Scenario, parse_scenario, run_connections, run_scenario

    sc = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
    if faults is None and sc.faults:
        faults = FaultPlan.from_json(sc.faults)
    invs = list(invariants) if invariants is not None else resolve_invariants()
    pooled = _restored_start(module, engine, sc, trace) if reuse and faults is None else None
    if pooled is not None:
        (host, plugins), observer = pooled, None
    else:
        host, observer = _fresh_host(module, engine, sc, trace, faults)
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
            runs = run_scenario(first, sc, plugins)
            run.streams = [s for _, s in runs]
            if sc.connections:
                run_connections(first, sc, plugins)
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


def _fresh_host(module: ModuleSource, engine: str, sc: Any, trace: bool, faults: FaultPlan | None) -> tuple[Host, FaultInjectingObserver | None]:
    """A new seeded host with the scenario's responders, clusters and shared data installed."""
    from ..host import Host
    from ..scenario import prepare_host

    host = Host(engine=engine, seed=sc.seed, trace=trace)
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


def _start_key(module: ModuleSource, engine: str, sc: Any, trace: bool) -> tuple[Any, ...]:
    """Everything that decides the state a run starts from, except its streams."""
    mod = hashlib.sha256(bytes(module)).hexdigest() if isinstance(module, (bytes, bytearray)) else os.fspath(module)
    plugins = tuple((p.root_id, p.name, bytes(p.configuration), p.fail_policy, p.allow_on_headers_stop_iteration) for p in sc.plugins)
    shared = (sc.seed, sc.vm_id, sc.vm_configuration, repr(sc.environment), repr(sc.properties), repr(sc.node))
    return (mod, engine, trace, plugins, shared, repr(sc.http_calls), repr(sc.grpc_calls), repr(sc.shared_data), repr(sc.clusters))


def _restored_start(module: ModuleSource, engine: str, sc: Any, trace: bool) -> tuple[Host, dict[str, Any]] | None:
    """A host rewound to the plugins' post-configure state, or ``None`` when it cannot be reused."""
    key = _start_key(module, engine, sc, trace)
    session = default_session()
    entry = session.start(key)
    if entry is None:
        host, _ = _fresh_host(module, engine, sc, trace, None)
        try:
            plugins = _start_plugins(host, module, sc)
        except PluginStartError:
            return None
        if host.http_calls.calls or host.grpc_calls.calls:
            return None  # a start that made callouts depends on how they are answered
        entry = (host, host.snapshot(), plugins, list(host.http_calls.responders), list(host.grpc_calls.responders))
        session.remember_start(key, entry)
    host, snap, plugins, http, grpc = entry
    host.restore(snap)
    host.http_calls.responders = list(http)
    host.grpc_calls.responders = list(grpc)
    return host, plugins


# -- generated scenarios ---------------------------------------------------------------------------


def _editable(message: _M) -> _M:
    """A copy of a parsed message whose header list can be edited in place."""
    return replace(message, headers=message.header_pairs(), trailers=message.trailer_pairs(), chunks=copy.copy(message.chunks))


@st.composite
def _mutated_stream(draw: st.DrawFn, base: Any, names: st.SearchStrategy[str], values: st.SearchStrategy[bytes]) -> dict[str, Any]:
    """A stream of the seed scenario with a few edits: headers added, dropped or changed, body re-cut."""
    req = _editable(base.request)
    resp = _editable(base.response) if base.response is not None else None
    for _ in range(draw(st.integers(0, 3))):
        target = req if resp is None or draw(st.booleans()) else resp
        op = draw(st.sampled_from(["add", "drop", "change", "rechunk"]))
        required = {b":method", b":path", b":authority", b":status"}
        optional = [i for i, (k, _) in enumerate(target.headers) if k not in required]
        if op == "add":
            target.headers.append((draw(names).encode(), draw(values)))
        elif op == "drop" and optional:
            del target.headers[draw(st.sampled_from(optional))]
        elif op == "change" and target.headers:
            i = draw(st.integers(0, len(target.headers) - 1))
            k, _ = target.headers[i]
            if k not in required:
                target.headers[i] = (k, draw(values))
        elif op == "rechunk":
            frames = draw(chunkings(target.body_bytes()))
            target.chunks = [len(f) for f in frames] or None
    ex = Exchange(req, resp, base.advance_ms)
    out = ex.to_scenario(base.name)
    if base.plugin is not None:
        out["plugin"] = base.plugin
    return out


@dataclass
class _CaseSpace:
    """Everything the example strategy needs."""

    base: dict[str, Any]
    base_streams: list[Any]
    vocabulary: Vocabulary
    adversarial: bool
    max_streams: int
    configs: st.SearchStrategy[bytes] | None
    faults: st.SearchStrategy[FaultPlan] | None
    advance: tuple[float, ...] = (0, 0, 100, 1000, 5000)

    def strategy(self) -> st.SearchStrategy[tuple[dict[str, Any], FaultPlan | None]]:
        vocab = self.vocabulary
        generated = exchanges(vocabulary=vocab.names, value_vocabulary=vocab.values, adversarial=self.adversarial).map(lambda e: e.to_scenario())
        stream = generated
        if self.base_streams:
            names = header_names(vocab.names, adversarial=self.adversarial)
            values = header_values(vocab.values, adversarial=self.adversarial)
            stream = st.one_of(st.sampled_from(self.base_streams).flatmap(lambda b: _mutated_stream(b, names, values)), generated)

        streams = st.lists(stream, min_size=1, max_size=self.max_streams)
        advance = st.sampled_from(self.advance)

        @st.composite
        def case(draw: st.DrawFn) -> tuple[dict[str, Any], FaultPlan | None]:
            sc = copy.deepcopy(self.base)
            sc["streams"] = draw(streams)
            adv = draw(advance)
            if adv:
                sc["advance_ms"] = adv
            else:
                sc.pop("advance_ms", None)
            if self.configs is not None:
                config = draw(self.configs)
                target = sc["plugins"][0] if "plugins" in sc else sc.setdefault("plugin", {})
                target["configuration"] = _config_value(config)
            plan = draw(self.faults) if self.faults is not None else None
            return sc, plan

        return case()


def _config_value(config: bytes) -> Any:
    """A configuration as a scenario file spells it (text, or ``{"base64": ...}``)."""
    return scenario_bytes(config)


# -- the report ------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One distinct broken invariant, with the minimal example that breaks it."""

    invariant: str
    violations: list[str]
    scenario: dict[str, Any]
    """A scenario file (JSON-ready) that ``proxy-wasm-emulator run`` replays."""
    faults: list[dict[str, Any]] | None = None
    """Host faults the example needed (:meth:`write` puts them in the file, so ``run`` replays them)."""
    reproduces: bool | None = None
    """Whether replaying :attr:`scenario` (with :attr:`faults`) shows the violation again."""
    trace_tail: str = ""
    """The last host calls of the replay."""
    shrunk: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "invariant": self.invariant,
            "violations": list(self.violations),
            "scenario": self.scenario,
            "faults": self.faults,
            "reproduces": self.reproduces,
            "shrunk": self.shrunk,
        }

    def replay_scenario(self) -> dict[str, Any]:
        """:attr:`scenario` with the host :attr:`faults` it needs: what ``run`` replays."""
        return {**self.scenario, "faults": self.faults} if self.faults else self.scenario

    def write(self, path: str | Path) -> Path:
        """Write :meth:`replay_scenario` as JSON (``.yaml``/``.yml``: YAML)."""
        p = Path(path)
        doc = self.replay_scenario()
        if p.suffix in (".yaml", ".yml"):
            import yaml

            p.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        else:
            p.write_text(format_json(doc) + "\n")
        return p

    def describe(self) -> str:
        """A few lines: the violation and the minimal traffic."""
        lines = [f"{self.invariant}: {self.violations[0]}" if self.violations else self.invariant]
        lines += [f"  also: {v}" for v in self.violations[1:3]]
        for i, s in enumerate(self.scenario.get("streams", [])):
            req = s.get("request", {})
            heads = ", ".join(f"{k}: {_short(v)}" for k, v in _pairs(req.get("headers")))
            chunks = req.get("chunks")
            body = f"; body frames {[_short(c, 12) for c in chunks]}" if chunks else ""
            tr = "; trailers" if req.get("trailers") is not None else ""
            lines.append(f"  stream {i + 1} request: {heads}{body}{tr}")
            if s.get("response") is not None:
                resp = s["response"]
                rheads = ", ".join(f"{k}: {_short(v)}" for k, v in _pairs(resp.get("headers")))
                lines.append(f"  stream {i + 1} response: {rheads}" + (f"; body frames {len(resp['chunks'])}" if resp.get("chunks") else ""))
        if self.faults:
            lines.append("  host faults: " + "; ".join(f"{f['function']} -> {f['status_name']}" for f in self.faults))
        return "\n".join(lines)


def format_json(value: Any, indent: int = 0, width: int = 110) -> str:
    """JSON with small containers (header pairs, ``{"base64": ...}``) kept on one line."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or (len(flat) + indent <= width and not _nested(value)):
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {format_json(v, indent + 2, width).lstrip()}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}" if items else "{}"
    items = [f"{inner}{format_json(v, indent + 2, width).lstrip()}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]" if items else "[]"


def _nested(value: Any) -> bool:
    """Whether a container holds containers other than a header pair or a base64 body."""
    children = value.values() if isinstance(value, dict) else value
    for c in children:
        if isinstance(c, dict) and set(c) != {"base64"}:
            return True
        if isinstance(c, list) and not (len(c) == 2 and all(isinstance(x, str) or (isinstance(x, dict) and set(x) == {"base64"}) for x in c)):
            return True
    return False


def _pairs(headers: Any) -> list[tuple[Any, Any]]:
    """Scenario headers (a mapping or ``[[name, value], ...]``) as pairs."""
    if isinstance(headers, dict):
        return list(headers.items())
    return [tuple(p) for p in headers or [] if isinstance(p, list | tuple) and len(p) == 2]


def _short(v: Any, n: int = 40) -> str:
    if isinstance(v, dict):
        return f"<{len(v.get('base64', ''))} base64 chars>"
    s = repr(v) if any(ord(c) < 32 or ord(c) == 127 for c in str(v)) else str(v)
    return s if len(s) <= n else s[:n] + f"...({len(s)} chars)"


@dataclass
class FuzzReport:
    """What :func:`fuzz_filter` found."""

    filter: str
    seed: int
    examples: int
    """Examples run (generation and shrinking)."""
    findings: list[Finding]
    invariants: list[str]
    elapsed_s: float = 0.0
    engine: str = "wasmtime"
    module: Any = field(default=None, repr=False)
    """The module fuzzed (a path or the bytes), for :meth:`replay`."""
    checked: list[Invariant] = field(default_factory=list, repr=False)
    """The invariants checked (user callables and the leak check's settings included), for :meth:`replay`."""

    @property
    def found(self) -> bool:
        """Whether any invariant was broken."""
        return bool(self.findings)

    @property
    def scenario(self) -> dict[str, Any] | None:
        """The first finding's minimal scenario."""
        return self.findings[0].scenario if self.findings else None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "filter": self.filter,
            "engine": self.engine,
            "seed": self.seed,
            "examples": self.examples,
            "elapsed_s": round(self.elapsed_s, 3),
            "invariants": self.invariants,
            "found": self.found,
            "findings": [f.to_json() for f in self.findings],
        }

    def summary(self) -> str:
        """A readable summary."""
        head = f"{self.filter}: {self.examples} examples in {self.elapsed_s:.1f} s (seed {self.seed}, engine {self.engine})"
        if not self.findings:
            return f"{head}\nno invariant broken ({', '.join(self.invariants)})"
        out = [head, f"found {len(self.findings)} broken invariant(s):"]
        for i, f in enumerate(self.findings):
            body = f.describe().replace("\n", "\n   ")
            out.append(f"{i + 1}. {body}")
        return "\n".join(out)

    def replay(self, finding: Finding | int = 0, *, engine: str | None = None, trace: bool = True) -> Execution:
        """Run a finding's scenario again (with its faults) and check the same invariants."""
        f = self.findings[finding] if isinstance(finding, int) else finding
        plan = FaultPlan.from_json(f.faults) if f.faults else None
        return execute_scenario(
            self.module if self.module is not None else self.filter,
            f.scenario,
            engine=engine or self.engine,
            invariants=self.checked or resolve_invariants(self.invariants),
            faults=plan,
            trace=trace,
        )


# -- fuzz_filter -----------------------------------------------------------------------------------

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


def _apply_overrides(base: dict[str, Any], *, root_id: str | None, plugin_config: bytes | str | None, seed: int) -> dict[str, Any]:
    sc = copy.deepcopy(base)
    if root_id is not None or plugin_config is not None:
        target = sc["plugins"][0] if "plugins" in sc else sc.setdefault("plugin", {})
        if root_id is not None:
            target["root_id"] = root_id
        if plugin_config is not None:
            target["configuration"] = _config_value(plugin_config.encode() if isinstance(plugin_config, str) else bytes(plugin_config))
    sc.setdefault("seed", seed)
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


def _case_space(path: ModuleSource, base: dict[str, Any], parsed: Any, opts: FuzzOptions) -> _CaseSpace:
    """What examples are drawn from: the dictionary, the seed scenario, configurations, faults."""
    seen_names: list[str] = list(opts.vocabulary)
    seen_values: list[str] = []
    for spec in parsed.streams:
        for msg in (spec.request, spec.response):
            for k, v in [*msg.header_pairs(), *(msg.trailer_pairs() or [])] if msg is not None else []:
                seen_names.append(k.decode(errors="replace"))
                if len(v) <= 32:
                    seen_values.append(v.decode(errors="replace"))
    vocab = (module_vocabulary(path) if opts.harvest else Vocabulary()).merged(Vocabulary(list(dict.fromkeys(seen_names)), list(dict.fromkeys(seen_values))))
    configs = None
    if opts.config_schema is not None:
        configs = plugin_configs_from_schema(opts.config_schema)
    elif opts.fuzz_config:
        configs = plugin_configs(vocabulary=vocab.values, base=parsed.plugins[0].configuration if parsed.plugins else None)
    fault_strategy = None
    if opts.faults:
        imported = _imported(path, opts.engine)
        fault_strategy = fault_plans(imported, min_rules=1) if imported else None  # minimizing drops the rules a finding does not need
    return _CaseSpace(base, parsed.streams, vocab, opts.adversarial, opts.max_streams, configs, fault_strategy)


def _imported(path: ModuleSource, engine: str) -> list[str]:
    """The ``env`` functions the module imports (where host faults can be injected)."""
    from ..host import Host

    return [i.name for i in Host(engine=engine, trace=False).program(path).info.imports if i.module == "env"]


def _prepare(path: ModuleSource, opts: FuzzOptions) -> tuple[dict[str, Any], Any, list[Invariant]]:
    """The seed scenario (with the options' overrides), parsed, and the invariants to check."""
    from ..host import Host
    from ..scenario import parse_scenario

    Host(engine=opts.engine, trace=False).program(path)  # ModuleLoadError early; compiled once for every example
    base = _apply_overrides(_load_base(opts.scenario), root_id=opts.root_id, plugin_config=opts.plugin_config, seed=opts.seed)
    parsed = parse_scenario(base)
    invs = _with_memory_repeats(resolve_invariants(opts.invariants, exclude=opts.exclude), opts.leak_repeats, opts.leak_warmup)
    return base, parsed, invs


def _run_drawn(data: Any, path: ModuleSource, sc: dict[str, Any], plan: FaultPlan | None, engine: str, invs: list[Invariant]) -> Execution:
    """One generated example: callouts are answered by draws from ``data``; the start is reused."""
    return execute_scenario(
        path,
        sc,
        engine=engine,
        invariants=invs,
        faults=plan,
        pick_http=lambda cluster: data.draw(callout_responses(), label=f"answer to a call to {cluster}"),
        pick_grpc=lambda cluster: data.draw(grpc_responses(), label=f"gRPC answer from {cluster}"),
        reuse=True,
    )


def fuzz_test(path: ModuleSource, options: FuzzOptions | None = None, **overrides: Any) -> Callable[[], None]:
    """The example of :func:`fuzz_filter` as a plain hypothesis test, for pytest, ``pytest -n`` and HypoFuzz::

        test_my_filter = settings(max_examples=500)(fuzz_test("filter.wasm"))

    A failure raises ``AssertionError`` with the violations and the scenario (JSON) to replay with
    ``proxy-wasm-emulator run``. ``options`` (default :data:`FUZZ_TEST_DEFAULTS`) and keyword
    ``overrides`` are :class:`FuzzOptions`; ``seed`` seeds the host (the hypothesis seed, the
    number of examples and shrinking come from pytest's or HypoFuzz's settings).
    """
    from hypothesis import given

    opts = _options("fuzz_test", options, FUZZ_TEST_DEFAULTS, overrides, refuses=("properties",))
    base, parsed, invs = _prepare(path, opts)
    engine = opts.engine
    cases = _case_space(path, base, parsed, opts).strategy()

    @given(data=st.data())
    def test_filter_invariants(data: Any) -> None:
        sc, plan = data.draw(cases, label="scenario")
        res = _run_drawn(data, path, sc, plan, engine, invs)
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
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed
    from hypothesis.control import current_build_context
    from hypothesis.errors import Flaky, HypothesisWarning

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
        raise FuzzSetupError(f"the plugin does not start ({err.phase}: {err.reason.splitlines()[0]}): fix the configuration or pass fuzz_config=True")

    # 2. generated examples
    case_strategy = _case_space(path, base, parsed, opts).strategy()

    found: dict[str, Finding] = {}
    state = {"run": 0, "generated": 0, "in_round_found": False}

    def one_example(data: Any) -> None:
        final = current_build_context().is_final
        sc, plan = data.draw(case_strategy, label="scenario")
        res = _run_drawn(data, path, sc, plan, engine, invs)
        state["run"] += 1
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
    by: dict[str, list[str]] = {}
    for v in violations:
        by.setdefault(v.invariant, []).append(v.message)
    sc = copy.deepcopy(scenario)
    return [Finding(name, msgs, sc, plan.to_json() if plan else None, shrunk=shrunk) for name, msgs in by.items()]


_REQUIRED = {"request": {":method", ":path", ":authority"}, "response": {":status"}}


def _candidates(sc: dict[str, Any], base_http: int, base_grpc: int) -> Iterable[dict[str, Any]]:
    """Scenarios one edit smaller than ``sc`` (a delta-debugging step), biggest cuts first."""
    streams = sc.get("streams", [])
    if len(streams) > 1:
        for i in range(len(streams)):
            yield {**sc, "streams": streams[:i] + streams[i + 1 :]}
    for key, base in (("http_calls", base_http), ("grpc_calls", base_grpc)):
        for i in range(base, len(sc.get(key, []))):
            rest = sc[key][:i] + sc[key][i + 1 :]
            yield {k: v for k, v in sc.items() if k != key} if not rest else {**sc, key: rest}
    if sc.get("advance_ms"):
        yield {k: v for k, v in sc.items() if k != "advance_ms"}
    for i, stream in enumerate(streams):

        def with_stream(new: dict[str, Any], i: int = i) -> dict[str, Any]:
            return {**sc, "streams": [*streams[:i], new, *streams[i + 1 :]]}

        if stream.get("response") is not None:
            yield with_stream({k: v for k, v in stream.items() if k != "response"})
        if stream.get("advance_ms"):
            yield with_stream({k: v for k, v in stream.items() if k != "advance_ms"})
        for side in ("request", "response"):
            msg = stream.get(side)
            if msg is None:
                continue
            if msg.get("trailers") is not None:
                yield with_stream({**stream, side: {k: v for k, v in msg.items() if k != "trailers"}})
            chunks = msg.get("chunks")
            if chunks:
                yield with_stream({**stream, side: {k: v for k, v in msg.items() if k != "chunks"}})
                if len(chunks) > 1 and all(isinstance(c, str) for c in chunks):
                    yield with_stream({**stream, side: {**msg, "chunks": ["".join(chunks)]}})
                for j, c in enumerate(chunks):
                    for smaller in _smaller_bodies(c):
                        yield with_stream({**stream, side: {**msg, "chunks": [*chunks[:j], smaller, *chunks[j + 1 :]]}})
            headers = msg.get("headers", [])
            for j, (name, _) in enumerate(headers):
                if name not in _REQUIRED[side] or [n for n, _ in headers].count(name) > 1:
                    yield with_stream({**stream, side: {**msg, "headers": headers[:j] + headers[j + 1 :]}})
            for j, (name, value) in enumerate(headers):
                if value not in ("", "0") and name not in _REQUIRED[side]:
                    yield with_stream({**stream, side: {**msg, "headers": [*headers[:j], [name, ""], *headers[j + 1 :]]}})


def _smaller_bodies(body: Any) -> list[Any]:
    """Shorter versions of a scenario body: empty, one character, the first half."""
    if isinstance(body, dict):
        return [""]
    if not body:
        return []
    out = [""]
    if len(body) > 1:
        out.append(body[:1])
    if len(body) > 3:
        out.append(body[: len(body) // 2])
    return out


def _minimize(path: ModuleSource, finding: Finding, *, engine: str, invariants: list[Invariant], base: dict[str, Any], max_replays: int = 200) -> None:
    """Delta-debug a finding's scenario: drop streams, headers, frames, trailers, responders and
    fault rules while the same invariant still breaks (hypothesis cannot always delete a list
    element whose neighbours it would have to re-align)."""
    base_http, base_grpc = len(base.get("http_calls", [])), len(base.get("grpc_calls", []))
    sc = {k: v for k, v in finding.scenario.items() if k != "description"}
    rules = list(finding.faults or [])
    replays = 0

    def breaks(candidate: dict[str, Any], faults: list[dict[str, Any]]) -> list[Violation] | None:
        nonlocal replays
        replays += 1
        try:
            res = execute_scenario(path, candidate, engine=engine, invariants=invariants, faults=FaultPlan.from_json(faults) if faults else None)
        except Exception:
            return None
        hits = [v for v in res.violations if v.invariant == finding.invariant]
        return hits or None

    changed = True
    while changed and replays < max_replays:
        changed = False
        for i in range(len(rules)):
            fewer = rules[:i] + rules[i + 1 :]
            if breaks(sc, fewer):
                rules, changed = fewer, True
                break
        if changed:
            continue
        for candidate in _candidates(sc, base_http, base_grpc):
            if replays >= max_replays:
                break
            if breaks(candidate, rules):
                sc, changed = candidate, True
                break
    hits = breaks(sc, rules)
    if hits:
        finding.violations = [v.message for v in hits]
    origin = finding.scenario.get("description", "found by proxy-wasm-emulator fuzz").split(": ", 1)[0]
    finding.scenario = {"description": f"{origin}: {finding.invariant}: {finding.violations[0]}", **sc}
    finding.faults = rules or None


def _confirm(report: FuzzReport, engine: str) -> None:
    """Replay each finding from its scenario alone (with its faults) and keep the trace tail."""
    for f in report.findings:
        try:
            res = report.replay(f, engine=engine, trace=True)
        except Exception:  # pragma: no cover - the replay itself failed
            f.reproduces = False
            continue
        f.reproduces = any(v.invariant == f.invariant for v in res.violations)
        if res.host is not None and res.host.trace is not None:
            f.trace_tail = res.host.trace.tail(12)


# -- the stateful fuzzer ---------------------------------------------------------------------------


def filter_state_machine(path: ModuleSource, options: FuzzOptions | None = None, **overrides: Any) -> type:
    """A hypothesis ``RuleBasedStateMachine`` class for one filter (use its ``.TestCase`` in pytest).

    Rules: open a stream with generated request headers; send request body frames, trailers,
    response headers, response frames, trailers to open streams in any order Envoy allows; end a
    stream early (downstream reset); advance the virtual clock (ticks, callout timeouts); answer a
    pending HTTP callout or gRPC call with a generated answer; enqueue to a registered shared queue;
    reconfigure the plugin with a generated configuration (new root context on the same VM, as
    Envoy does on a config update). The ``end`` invariants run after every step, ``shutdown`` ones
    at teardown. Header names mix ``vocabulary`` and (``harvest``) the module's strings with random
    ones, as in :func:`fuzz_filter`.

    ``options`` (default :data:`STATE_MACHINE_DEFAULTS`) and keyword ``overrides`` are
    :class:`FuzzOptions` (``max_open_streams`` is an older name of ``max_streams``): ``root_id``,
    ``plugin_config``, ``properties``, ``engine``, ``seed`` (the host), ``invariants`` minus
    ``exclude``, ``adversarial``, ``vocabulary``, ``harvest``, ``fuzz_config``/``config_schema``
    (the first configuration is drawn too), ``faults`` and ``max_streams`` (open at once).
    """
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

    from ..host import Host

    if "max_open_streams" in overrides:
        overrides["max_streams"] = overrides.pop("max_open_streams")
    opts = _options("filter_state_machine", options, STATE_MACHINE_DEFAULTS, overrides, refuses=("scenario",))
    engine, seed, root_id, properties, adversarial, faults = opts.engine, opts.seed, opts.root_id or "", opts.properties, opts.adversarial, opts.faults
    max_open_streams = opts.max_streams
    invs = [i for i in resolve_invariants(opts.invariants, exclude=opts.exclude) if i.when != "repeat"]
    vocab = (module_vocabulary(path) if opts.harvest else Vocabulary()).merged(Vocabulary(list(opts.vocabulary)))
    from .strategies import bodies, trailers
    from .strategies import request_headers as req_headers
    from .strategies import response_headers as resp_headers

    names_v, values_v = vocab.names, vocab.values
    config_base = opts.plugin_config_bytes()
    schema = opts.config_schema
    configs = plugin_configs_from_schema(schema) if schema is not None else plugin_configs(vocabulary=values_v, base=config_base)
    draw_first_config = opts.fuzz_config or opts.config_schema is not None
    filter_path = path

    def _open(machine: Any) -> list[Any]:
        return [s for s in machine.streams if not s.completed]

    class FilterStateMachine(RuleBasedStateMachine):
        """Interleaved traffic, time and callouts through one filter."""

        def __init__(self) -> None:
            super().__init__()
            self.host: Host | None = None
            self.plugin: Any = None
            self.retired: list[Any] = []
            self.streams: list[Any] = []
            self.start_error: PluginStartError | None = None
            self.observer: FaultInjectingObserver | None = None

        @initialize(data=st.data())
        def start(self, data: Any) -> None:
            host = self.host = Host(engine=engine, seed=seed, trace=True, trace_limit=200)
            if faults:
                imported = [i.name for i in host.program(filter_path).info.imports if i.module == "env"]
                plan = data.draw(fault_plans(imported), label="host faults") if imported else FaultPlan()
                if plan:
                    self.observer = FaultInjectingObserver(host, plan)
                    host.observer = self.observer
            config = data.draw(configs, label="configuration") if draw_first_config else config_base
            try:
                self.plugin = host.load(filter_path, root_id=root_id, plugin_config=config, properties=properties)
            except PluginStartError as exc:
                self.start_error = exc

        def _view(self) -> RunView:
            assert self.host is not None
            return RunView(self.host, list(self.host.plugins), list(self.streams), self.start_error)

        def _fail(self, violations: list[Violation]) -> None:
            if violations:
                tail = self.host.trace.tail(10) if self.host is not None and self.host.trace is not None else ""
                raise AssertionError("\n".join(map(str, violations)) + (f"\nlast host calls:\n{tail}" if tail else ""))

        @invariant()
        def host_lint(self) -> None:
            if self.host is not None:
                self._fail(check(self._view(), invs, "end"))

        def _pick(self, data: Any, candidates: list[Any], what: str) -> Any:
            return data.draw(st.sampled_from(candidates), label=what)

        @precondition(lambda self: self.plugin is not None and len(_open(self)) < max_open_streams)
        @rule(data=st.data())
        def new_stream(self, data: Any) -> None:
            headers = data.draw(req_headers(vocabulary=names_v, value_vocabulary=values_v, adversarial=adversarial), label="request headers")
            eos = data.draw(st.booleans(), label="end_of_stream")
            stream = self.plugin.http_stream()
            self.streams.append(stream)
            stream.send_request_headers(headers, end_of_stream=eos)

        def _body_candidates(self, side: str) -> list[Any]:
            return [s for s in _open(self) if getattr(s, side).received_headers is not None and not getattr(s, side).ended and not getattr(s, side).done]

        @precondition(lambda self: bool(self._body_candidates("request")))
        @rule(data=st.data())
        def request_body(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("request"), "stream")
            s.send_request_body(data.draw(bodies(max_size=256), label="frame"), end_of_stream=data.draw(st.booleans(), label="end_of_stream"))

        @precondition(lambda self: bool(self._body_candidates("request")))
        @rule(data=st.data())
        def request_trailers(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("request"), "stream")
            s.send_request_trailers(data.draw(trailers(vocabulary=names_v, adversarial=adversarial), label="trailers"))

        def _respondable(self) -> list[Any]:
            return [s for s in _open(self) if not s.response.done and s.response.received_headers is None and (s.request.headers_sent or s.mode != "filter")]

        @precondition(lambda self: bool(self._respondable()))
        @rule(data=st.data())
        def response_headers(self, data: Any) -> None:
            s = self._pick(data, self._respondable(), "stream")
            headers = data.draw(resp_headers(vocabulary=names_v, value_vocabulary=values_v, adversarial=adversarial), label="response headers")
            s.send_response_headers(headers, end_of_stream=data.draw(st.booleans(), label="end_of_stream"))

        @precondition(lambda self: bool(self._body_candidates("response")))
        @rule(data=st.data())
        def response_body(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("response"), "stream")
            s.send_response_body(data.draw(bodies(max_size=256), label="frame"), end_of_stream=data.draw(st.booleans(), label="end_of_stream"))

        @precondition(lambda self: bool(self._body_candidates("response")))
        @rule(data=st.data())
        def response_trailers(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("response"), "stream")
            s.send_response_trailers(data.draw(trailers(vocabulary=names_v, adversarial=adversarial), label="trailers"))

        @precondition(lambda self: bool(_open(self)))
        @rule(data=st.data())
        def end_stream(self, data: Any) -> None:
            self._pick(data, _open(self), "stream").complete()

        @precondition(lambda self: self.host is not None)
        @rule(ms=st.sampled_from([1, 10, 100, 1000, 5000]))
        def advance(self, ms: int) -> None:
            assert self.host is not None
            self.host.advance(ms)

        @precondition(lambda self: self.host is not None and bool(self.host.http_calls.pending()))
        @rule(data=st.data())
        def answer_http_call(self, data: Any) -> None:
            assert self.host is not None
            call = self._pick(data, self.host.http_calls.pending(), "call")
            data.draw(callout_responses(pending=False), label="answer").answer(call)

        @precondition(lambda self: self.host is not None and bool(self.host.grpc_calls.pending()))
        @rule(data=st.data())
        def answer_grpc(self, data: Any) -> None:
            assert self.host is not None
            call = self._pick(data, self.host.grpc_calls.pending(), "gRPC call")
            if isinstance(call, GrpcCall):
                data.draw(grpc_responses(pending=False), label="answer").answer(call)
                return
            what = data.draw(st.sampled_from(["message", "initial", "trailing", "close"]), label="event")
            if what == "message":
                call.send_message(data.draw(st.binary(max_size=64), label="message"))
            elif what == "initial":
                call.send_initial_metadata(data.draw(trailers(), label="metadata"))
            elif what == "trailing":
                call.send_trailing_metadata(data.draw(trailers(), label="metadata"))
            else:
                call.close(data.draw(st.integers(0, 16), label="status"))

        @precondition(lambda self: self.host is not None and bool(self.host.queues.tokens))
        @rule(data=st.data())
        def enqueue(self, data: Any) -> None:
            assert self.host is not None
            vm_id, name = self._pick(data, sorted(self.host.queues.tokens), "queue")
            self.host.queues.enqueue(name, data.draw(st.binary(max_size=64), label="item"), vm_id=vm_id)

        @precondition(lambda self: self.plugin is not None and self.plugin.vm.failed is None)
        @rule(data=st.data())
        def reconfigure(self, data: Any) -> None:
            assert self.host is not None
            config = data.draw(configs, label="new configuration")
            try:
                new = self.host.add_plugin(self.plugin.vm, root_id=root_id, plugin_config=config, properties=properties)
            except PluginStartError as exc:
                if isinstance(exc.cause, CallbackError):
                    self.start_error = exc
                return  # Envoy keeps the old configuration
            self.retired.append(self.plugin)
            self.plugin = new

        def teardown(self) -> None:
            if self.host is None:
                return
            for s in list(self.streams):
                s.complete()
            view = self._view()
            violations = check(view, invs, "end")
            shutdown_host(self.host)
            view.shut_down = True
            violations += check(view, invs, "shutdown")
            self._fail(violations)

    stem = Path(str(path)).stem if not isinstance(path, bytes | bytearray) else "bytes"
    FilterStateMachine.__name__ = "FilterStateMachine_" + re.sub(r"\W", "_", stem)
    return FilterStateMachine


def run_filter_state_machine(path: ModuleSource, options: FuzzOptions | None = None, **overrides: Any) -> None:
    """Run :func:`filter_state_machine` for ``examples`` runs of up to ``steps`` steps (derandomized).

    Raises the (with ``shrink``, minimal) failing run's error; hypothesis prints its steps.
    ``options`` (default :data:`STATE_MACHINE_DEFAULTS`) and keyword ``overrides`` are :class:`FuzzOptions`.
    """
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    if "max_open_streams" in overrides:
        overrides["max_streams"] = overrides.pop("max_open_streams")
    opts = _options("run_filter_state_machine", options, STATE_MACHINE_DEFAULTS, overrides, refuses=("scenario",))
    machine = filter_state_machine(path, opts)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=opts.examples,
            stateful_step_count=opts.steps,
            database=None,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate, Phase.shrink] if opts.shrink else [Phase.generate],
        ),
    )
