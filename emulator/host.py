"""The Host: the shared world a filter runs in, and the entry point of the Python API.

It owns the virtual clock, seeded randomness, the log, the host-level properties and the
compiled-module cache, and it loads filters::

    host = Host()
    plugin = host.load("filter.wasm", plugin_config=b'{"mode": "deny"}', root_id="my_root")
    assert any(r.message.startswith("configure") for r in plugin.logs)
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abi import LogLevel
from abi.records import record

from .callouts import GrpcCalls, HttpCalls
from .clock import DEFAULT_EPOCH_NS, VirtualClock
from .contexts import VmContext
from .engines import Engine, EngineConfig, get_engine
from .errors import ConfigError, ModuleLoadError
from .expectations import Expectations
from .foreign import ForeignFunctions
from .logs import LogRecord
from .metrics import Metrics
from .observer import HostCallObserver
from .plugin import Plugin
from .session import Session, default_session
from .shared_state import SharedData, SharedQueues
from .stream_info import ConnectionInfo, Node
from .trace import Trace
from .vm.cache import ModuleCache, file_stamp, wasm_digest
from .vm.instance import Vm
from .vm.program import Program

if TYPE_CHECKING:
    from .envoy_config import EnvoyChain

__all__ = ["Host", "ModuleSource"]

ModuleSource = str | os.PathLike[str] | bytes | bytearray
"""A module: a path to a ``.wasm`` file, or its bytes."""

_PLUGIN_STATE = ("tick_period_ms", "next_tick_ms", "status", "pending_done", "deleted", "failures", "reloads", "_failed_at_ms", "vm", "root_context_id")


def _state_copy(name: str, value: Any) -> Any:
    """A plugin attribute as a snapshot keeps it: lists copied, the plugin's VM by reference."""
    import copy  # here, not at the top: snapshots alone need it (0.7 ms of ``import emulator``)

    return value if name == "vm" else copy.copy(value)


@record
class HostSnapshot:
    """What :meth:`Host.snapshot` captured."""

    vms: list[tuple[Vm, Any]]
    plugins: list[tuple[Plugin, dict[str, Any]]]
    clock: int
    random: Any
    world: dict[str, Any]
    keep: dict[int, Any]
    lengths: tuple[int, int, int, int]
    seq: int
    console: tuple[int, dict[tuple[str, str], str]] = (0, {})


def _to_bytes(value: bytes | str | None, what: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise ConfigError(f"{what} must be bytes or str, not {type(value).__name__}")


class Host:
    """The world filters run in; create one per test (it is cheap, compiled modules are shared)."""

    def __init__(
        self,
        *,
        engine: str | Engine = "wasmtime",
        engine_config: EngineConfig | None = None,
        seed: int = 0,
        epoch_ns: int = DEFAULT_EPOCH_NS,
        cache: bool | str | os.PathLike[str] | ModuleCache = True,
        log_level: LogLevel = LogLevel.TRACE,
        properties: Mapping[str, Any] | None = None,
        connection: ConnectionInfo | None = None,
        node: Node | Mapping[str, Any] | None = None,
        trace: bool = True,
        trace_limit: int = 10_000,
        costs: bool = False,
        max_memory_pages: int | None = 16384,
        callback_deadline_s: float | None = None,
        callback_fuel: int | None = None,
        session: Session | None = None,
        restricted_start: bool = True,
        coverage: bool = False,
    ) -> None:
        """``session`` is the group of hosts that share linked programs and warm starts (by
        default every host of the process: :func:`emulator.session.default_session`).
        ``coverage`` loads modules with basic-block probes: ``vm.coverage()`` then tells which
        parts of the guest ran (wasmtime only; :mod:`emulator.vm.coverage`)."""
        self.session = session or default_session()
        self.coverage = coverage
        if callback_fuel is not None and callback_fuel <= 0:
            raise ConfigError(f"callback_fuel must be a positive number of instructions, not {callback_fuel!r}")
        if not isinstance(engine, Engine) and engine_config is None:
            wasmer = engine == "wasmer"
            engine_config = EngineConfig(
                fuel=(costs and not wasmer) or callback_fuel is not None,
                epoch=callback_deadline_s is not None,
                max_memory_pages=max_memory_pages,
            )
        self.restricted_start = restricted_start
        """cpp-host's rule for ``_initialize``/``_start``/``main`` (since proxy-wasm-cpp-host#306, 2022):
        only logging and most WASI calls are allowed, any other import traps. ``False`` runs
        modules built for 2020-era Envoy, whose ``_start`` made other host calls (the Istio
        Emscripten builds call ``env.pthread_equal``), as that Envoy did: every import is allowed."""
        self.callback_deadline_s = callback_deadline_s
        """Interrupt any callback that runs longer (wasmtime epochs); the plugin gets a fresh VM."""
        self.callback_fuel = callback_fuel
        """Stop any callback that executes more wasm instructions (wasmtime fuel): a deadline that
        does not depend on the machine; the plugin gets a fresh VM."""
        self.engine = engine if isinstance(engine, Engine) else get_engine(engine, engine_config)
        self.costs = costs
        """Meter every callback (``stream.callbacks[i].cost``, ``stream.cost()``); with wasmtime
        this turns fuel on to count guest instructions."""
        self.clock = VirtualClock(epoch_ns)
        self.seed = seed
        self.random = random.Random(seed)
        self.log_level = LogLevel(log_level)
        self.properties: dict[str, Any] = dict(properties or {})
        self.logs: list[LogRecord] = []
        self.console_lines: list[tuple[int, LogRecord]] = []
        """WASI stdout/stderr output in whole lines, each with how many :attr:`logs` records came before it."""
        self._console_partial: dict[tuple[str, str], str] = {}
        self.vms: list[Vm] = []
        self.connection = connection or ConnectionInfo()
        self.node = Node.of(node)
        """The node Envoy runs as (bootstrap ``node``: id, cluster, metadata), served at ``xds.node.*``
        in every context, root contexts included."""
        self._deferred: list[Any] = []
        self.warned_inputs: set[str] = set()
        """Input warnings (:class:`InputWarning`) already given: each is said once per host."""
        self._seq = 0
        self.shared_data = SharedData()
        self.queues = SharedQueues()
        self.metrics = Metrics()
        self.foreign_functions = ForeignFunctions()
        self.http_calls = HttpCalls(self)
        self.grpc_calls = GrpcCalls(self)
        self.clusters: set[str] | None = None
        """Known upstream clusters; ``None`` accepts any (Envoy refuses unknown ones)."""
        self.trace: Trace | None = Trace() if trace else None
        """Every ``env`` host call, decoded (``Host(trace=False)`` turns it off for speed)."""
        self.trace_limit = trace_limit
        self.expectations: Expectations | None = None
        self.observer: HostCallObserver | None = HostCallObserver(self) if trace else None
        self._recording: Any = None
        """The speed mode's C accelerator keeps here what recording a host call needs, resolved
        from :attr:`observer` and :attr:`trace` once, not on every call (``emulator.engines._crossing``)."""
        if cache is True:
            self.cache: ModuleCache | None = ModuleCache()
        elif cache is False or cache is None:
            self.cache = None
        elif isinstance(cache, ModuleCache):
            self.cache = cache
        else:
            self.cache = ModuleCache(cache)

    # -- loading -------------------------------------------------------------------------------
    def program(self, module: ModuleSource, *, stub_unknown_imports: bool = False, allowed_capabilities: Iterable[str] | None = None) -> Program:
        """Compile and link a module (shared across hosts; compiled through the disk cache).

        ``allowed_capabilities`` is Envoy's allow-list of host functions (``proxy_*`` and WASI
        names): every other import is linked as cpp-host's stub that logs and returns
        InternalFailure (WASI: errno 76 ENOTCAPABLE).
        """
        caps = frozenset(allowed_capabilities) if allowed_capabilities is not None else None
        engine_key = (self.engine.name, self.engine.config)  # the whole configuration: a limit on memory too, which compiled code does not depend on
        programs = self.session.programs
        # a file already loaded, unchanged since (the same stamp): in this session, no read and no
        # hash; in another process, no hash (the module cache remembers the digest)
        stamp = None if isinstance(module, bytes | bytearray) else file_stamp(module)
        digests = self.session.cache("file-digests")
        digest = digests.get(stamp) if stamp is not None else None
        if digest is not None:
            prog = programs.get((engine_key, digest, stub_unknown_imports, caps, self.coverage))
            if prog is not None:
                return prog
        if digest is None and stamp is not None and self.cache is not None:
            digest = self.cache.known_digest(stamp)
        wasm, source = self._read(module)
        if stamp is not None and file_stamp(module) != stamp:  # written while we read it
            stamp = digest = None
        if digest is None:
            digest = wasm_digest(wasm)
            if stamp is not None and self.cache is not None:
                self.cache.remember_digest(stamp, digest)
        if stamp is not None:
            digests[stamp] = digest
        key = (engine_key, digest, stub_unknown_imports, caps, self.coverage)
        prog = programs.get(key)
        if prog is None:
            prog = Program(
                self.engine,
                wasm,
                cache=self.cache,
                stub_unknown_imports=stub_unknown_imports,
                source=source,
                allowed_capabilities=caps,
                sha256=digest,
                coverage=self.coverage,
            )
            programs[key] = prog
        return prog

    def create_vm(
        self,
        module: ModuleSource | Program,
        *,
        vm_id: str = "",
        vm_config: bytes | str | None = None,
        environment: Mapping[str, str] | None = None,
        stub_unknown_imports: bool = False,
        allowed_capabilities: Iterable[str] | None = None,
    ) -> Vm:
        """Instantiate a VM and run its ``_initialize``/``_start``; add plugins with :meth:`add_plugin`."""
        prog = (
            module
            if isinstance(module, Program)
            else self.program(module, stub_unknown_imports=stub_unknown_imports, allowed_capabilities=allowed_capabilities)
        )
        vm = Vm(self, prog, vm_id=vm_id, vm_config=_to_bytes(vm_config, "vm_config"), environment=environment, vm_context=VmContext)
        self.vms.append(vm)
        vm.initialize()
        return vm

    def add_plugin(
        self,
        vm: Vm,
        *,
        root_id: str = "",
        name: str = "",
        plugin_config: bytes | str | None = None,
        properties: Mapping[str, Any] | None = None,
        start: bool = True,
        **options: Any,
    ) -> Plugin:
        """Add a plugin (root context) to a VM and start it unless ``start=False``.

        ``options``: ``fail_policy`` (FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD),
        ``allow_on_headers_stop_iteration``, ``connection`` (:class:`ConnectionInfo`),
        ``reload_backoff_ms``.
        """
        plugin = Plugin(vm, root_id=root_id, name=name, config=_to_bytes(plugin_config, "plugin_config"), properties=properties, **options)
        if start:
            plugin.start()
            self.drain()
        return plugin

    def load(
        self,
        module: ModuleSource,
        *,
        plugin_config: bytes | str | None = None,
        vm_config: bytes | str | None = None,
        root_id: str = "",
        vm_id: str = "",
        name: str = "",
        properties: Mapping[str, Any] | None = None,
        environment: Mapping[str, str] | None = None,
        stub_unknown_imports: bool = False,
        allowed_capabilities: Iterable[str] | None = None,
        start: bool = True,
        **options: Any,
    ) -> Plugin:
        """Load a filter and start it as Envoy would: one VM, one plugin.

        ``options`` go to :meth:`add_plugin` (fail policy, stop-iteration knob, connection info).

        Raises :class:`ModuleLoadError` for a module Envoy would not load and
        :class:`PluginStartError` when initialisation, ``on_vm_start`` or ``on_configure`` fails.
        """
        vm = self.create_vm(
            module,
            vm_id=vm_id,
            vm_config=vm_config,
            environment=environment,
            stub_unknown_imports=stub_unknown_imports,
            allowed_capabilities=allowed_capabilities,
        )
        return self.add_plugin(vm, root_id=root_id, name=name, plugin_config=plugin_config, properties=properties, start=start, **options)

    @classmethod
    def from_envoy_config(cls, path: str | Path, listener: str | None = None, **host_options: Any) -> EnvoyChain:
        """A host running the Wasm filters of an Envoy configuration (see :mod:`emulator.envoy_config`).

        ``listener`` picks a listener by name (default: the first with a Wasm filter);
        ``host_options`` go to :class:`Host`. The result's ``chain`` is the HTTP filters in order,
        ``plugins`` every filter's plugin, ``warnings`` what the file holds that is not modelled.
        Raises :class:`~emulator.envoy_config.EnvoyConfigError` naming the place in the file.
        """
        from .envoy_config import build_filters, read_envoy_config

        return build_filters(cls(**host_options), read_envoy_config(path, listener))

    @staticmethod
    def _read(module: ModuleSource) -> tuple[bytes, str]:
        if isinstance(module, bytes | bytearray):
            return bytes(module), "<bytes>"
        path = Path(module)
        try:
            return path.read_bytes(), str(path)
        except FileNotFoundError:
            raise ModuleLoadError(f"no such file: {path}", envoy="Envoy cannot read the module") from None
        except IsADirectoryError:
            raise ModuleLoadError(f"{path} is a directory, not a .wasm file", envoy="Envoy cannot read the module") from None

    # -- the shared world ----------------------------------------------------------------------
    def record_log(self, record: LogRecord) -> None:
        """Append a log record (called by VMs)."""
        self.logs.append(record)

    def record_console(self, template: LogRecord, data: bytes) -> None:
        """Assemble WASI ``fd_write`` output into whole lines (:attr:`console_lines`).

        Runtimes write in pieces: Go's panic is dozens of writes (``"panic: "``, the value, a
        newline...). :attr:`logs` keeps one record per write, as Envoy logs them; this keeps the
        text of each VM's stdout and stderr in lines, each a copy of ``template`` (the writing
        context's attribution) with the line as its message.
        """
        key = (template.vm_id, template.source)
        text = self._console_partial.get(key, "") + data.decode(errors="replace")
        *lines, self._console_partial[key] = text.split("\n")
        for line in lines:
            if line.strip() and template.level >= self.log_level:
                self.console_lines.append((len(self.logs), LogRecord(template.level, line, *template[2:])))

    def console_view(self, records: Sequence[LogRecord] | None = None) -> list[LogRecord]:
        """:attr:`logs` (or a slice of it, ``records``) with the one-per-write ``stdout``/``stderr``
        records replaced by whole lines (:meth:`record_console`), each where its last piece was written."""
        chosen = self.logs if records is None else records
        wanted = {id(r) for r in chosen}
        contexts = None if records is None else {r.context_id for r in chosen}
        lines_after: dict[int, list[LogRecord]] = {}
        for index, line in self.console_lines:
            lines_after.setdefault(index, []).append(line)
        out: list[LogRecord] = list(lines_after.get(0, []))
        for i, r in enumerate(self.logs):
            if id(r) in wanted and r.source not in ("stdout", "stderr"):
                out.append(r)
            out += [line for line in lines_after.get(i + 1, []) if contexts is None or line.context_id in contexts]
        return out

    def record_log_host(self, level: LogLevel, message: str, plugin: Plugin | None = None) -> None:
        """A line Envoy itself would log (e.g. a trap), attributed to the plugin."""
        self.logs.append(
            LogRecord(
                level,
                message,
                root_id=plugin.root_id if plugin else "",
                vm_id=plugin.vm.vm_id if plugin else "",
                plugin_name=plugin.name if plugin else "",
                source="host",
            )
        )

    @contextmanager
    def expect_calls(self, *, allow: tuple[str, ...] = ("proxy_log",)) -> Iterator[Expectations]:
        """Strict mode: declare the host calls you expect, in order; see :mod:`emulator.expectations`.

        Leaving the block raises :class:`ExpectationError` for unexpected calls and for expected
        calls that never came.
        """
        expectations = Expectations(allowed=set(allow))
        previous, self.expectations = self.expectations, expectations
        if self.observer is None:
            self.observer = HostCallObserver(self)
        failed = False
        try:
            yield expectations
        except BaseException:
            failed = True
            raise
        finally:
            self.expectations = previous
            if self.trace is None and previous is None:
                self.observer = None
            if not failed:
                expectations.verify()

    def next_seq(self) -> int:
        """A host-wide increasing number, to order events across streams and filters."""
        self._seq += 1
        return self._seq

    def defer(self, action: Any) -> None:
        """Queue an after-VM-call action (continue, local reply, queue notification...)."""
        self._deferred.append(action)

    def drain(self) -> None:
        """Run queued after-VM-call actions in order, including ones they queue."""
        while self._deferred:
            action = self._deferred.pop(0)
            action()

    @property
    def plugins(self) -> list[Plugin]:
        """Every plugin on every VM of this host."""
        return [p for vm in self.vms for p in vm.plugins]

    def _next_event(self, until_ms: float) -> tuple[float, Any] | None:
        """The earliest tick or callout deadline at or before ``until_ms``."""
        best: tuple[float, int, Any] | None = None
        for order, plugin in enumerate(self.plugins):
            when = plugin.next_tick_ms
            if when is not None and when <= until_ms and plugin.vm.failed is None and (best is None or when < best[0]):
                best = (when, order, plugin)
        for call in [*self.http_calls.calls, *self.grpc_calls.calls]:
            when = call.deadline_ms if call.pending else None
            if when is not None and when <= until_ms and (best is None or when < best[0]):
                best = (when, -1, call)
        return (best[0], best[2]) if best else None

    def advance(self, ms: float) -> None:
        """Move the virtual clock forward, firing due ``on_tick`` and callout timeouts in time order."""
        target = self.clock.now_ms + ms
        while (event := self._next_event(target)) is not None:
            when, what = event
            self.clock.advance_ns(max(0, round(when * 1e6) - self.clock.elapsed_ns))
            if isinstance(what, Plugin):
                what.next_tick_ms = when + what.tick_period_ms if what.tick_period_ms else None
                what.run("proxy_on_tick", what.root_context_id)
            else:
                what.timeout()
            self.drain()
        self.clock.advance_ns(max(0, round(target * 1e6) - self.clock.elapsed_ns))

    def snapshot(self) -> HostSnapshot:
        """Everything a test can change, between streams: VMs (memory, globals, contexts), plugin
        state, the clock, the random generator, shared data, queues, metrics, callouts, logs and
        the trace. :meth:`restore` rewinds to it in well under a millisecond for small modules,
        without re-running ``_initialize`` (what fuzzing needs between examples)."""
        import copy  # see _state_copy

        self.drain()
        keep = {id(x): x for x in [self, *self.vms, *self.plugins]}
        world = copy.deepcopy({"shared_data": self.shared_data, "queues": self.queues, "metrics": self.metrics, "foreign": self.foreign_functions}, dict(keep))
        return HostSnapshot(
            vms=[(vm, vm.snapshot()) for vm in self.vms],
            plugins=[(p, {k: _state_copy(k, v) for k, v in vars(p).items() if k in _PLUGIN_STATE}) for p in self.plugins],
            clock=self.clock.elapsed_ns,
            random=self.random.getstate(),
            world=world,
            keep=keep,
            lengths=(len(self.logs), len(self.trace) if self.trace is not None else 0, len(self.http_calls.calls), len(self.grpc_calls.calls)),
            seq=self._seq,
            console=(len(self.console_lines), dict(self._console_partial)),
        )

    def restore(self, snap: HostSnapshot) -> None:
        """Rewind the host to ``snap`` (VMs created after it are dropped)."""
        self._deferred.clear()
        self.vms = [vm for vm, _ in snap.vms]
        for plugin, state in snap.plugins:
            for k, v in state.items():
                setattr(plugin, k, _state_copy(k, v))
            plugin.streams.clear()
            plugin.connections.clear()
        for vm, vs in snap.vms:
            vm.restore(vs)
            vm.plugins = [p for p, _ in snap.plugins if p.vm is vm]
        self.clock._elapsed = snap.clock
        self.random.setstate(snap.random)
        import copy  # see _state_copy

        world = copy.deepcopy(snap.world, dict(snap.keep))
        self.shared_data, self.queues, self.metrics, self.foreign_functions = world["shared_data"], world["queues"], world["metrics"], world["foreign"]
        logs, trace, http, grpc = snap.lengths
        del self.logs[logs:]
        del self.console_lines[snap.console[0] :]
        self._console_partial = dict(snap.console[1])
        if self.trace is not None:
            del self.trace[trace:]
        del self.http_calls.calls[http:]
        del self.grpc_calls.calls[grpc:]
        self._seq = snap.seq

    def shutdown(self) -> None:
        """Shut every VM down (streams end, then ``proxy_on_done``/``proxy_on_delete`` per root)."""
        for vm in list(self.vms):
            vm.shutdown()

    def run_until_idle(self, max_ms: float = 60_000) -> float:
        """Advance time until no callout waits on a timeout (ticks alone do not keep it busy).

        Returns the virtual milliseconds that passed; stops after ``max_ms``.
        """
        start = self.clock.now_ms
        self.drain()
        while self.clock.now_ms - start < max_ms:
            deadlines = [c.deadline_ms for c in [*self.http_calls.calls, *self.grpc_calls.calls] if c.pending and c.deadline_ms is not None]
            if not deadlines:
                break
            self.advance(max(0.0, min(min(deadlines), start + max_ms) - self.clock.now_ms))
        return self.clock.now_ms - start
