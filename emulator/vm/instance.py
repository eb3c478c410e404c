"""One VM: an instance of a program, its contexts, and Envoy/cpp-host's start sequence.

A VM is what cpp-host calls a ``WasmBase``: one wasm instance that can host several plugins (root
contexts) and their streams. It enters the guest only through :meth:`Vm.call_in` (top-level
callbacks; :meth:`Vm.call` is its keyword form) and :meth:`Vm.alloc` (the guest allocator,
re-entrantly from host calls), so it always knows which callback and context are running, which
imports cpp-host allows right now, and turns every trap into a :class:`CallbackError` that names
the callback and carries the guest backtrace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from abi import ALLOCATOR_IMPORTS, START_IMPORTS, callbacks_for
from abi.records import record
from abi.signatures import INTEGRATION_EXPORTS

from ..costs import Cost
from ..engines import GuestTrap, LinkError
from ..errors import CallbackError, EmulatorError, ModuleLoadError, PluginStartError, VmFailedError
from .coverage import COVERAGE_EXPORT, read_comparisons

if TYPE_CHECKING:
    from ..contexts import ContextBase
    from ..engines.base import GuestMemory
    from ..host import Host
    from ..plugin import Plugin
    from .program import Program

__all__ = ["ALLOCATOR_IMPORTS", "START_IMPORTS", "Vm", "VmFailedError"]

_CONSOLE_TAIL = 4096
_FUEL_BUDGET = 1 << 60


@record
class VmSnapshot:
    """What :meth:`Vm.snapshot` captured."""

    memory: bytes
    globals: dict[str, int | float]
    contexts: dict[int, Any]
    next_id: int
    tokens: dict[str, int]
    console: dict[int, str]
    notes: int


class Vm:
    """One wasm instance hosting plugins, as cpp-host's ``WasmBase``."""

    def __init__(
        self,
        host: Host,
        program: Program,
        *,
        vm_id: str = "",
        vm_config: bytes = b"",
        environment: Mapping[str, str] | None = None,
        vm_context: Callable[[Vm], Any],
    ) -> None:
        """``vm_context`` makes the receiver of host calls made outside any plugin (context 0)."""
        self.host = host
        self.program = program
        self.abi = program.abi
        self.abi_010 = program.abi.version == "0.1.0"
        self.headers_arity = program.abi.headers_arity  # the abi's, on the VM: every headers callback reads it (a C int where compiled)
        self.vm_id = vm_id
        self.vm_config = bytes(vm_config)
        self.environment = dict(environment or {})
        self.contexts: dict[int, ContextBase] = {0: vm_context(self)}
        self.plugins: list[Plugin] = []
        self.failed: CallbackError | None = None
        self.current_context = 0
        self._running: ContextBase | None = None
        self.effective_context: int | None = None
        self.current_callback: str | None = None
        self.start_imports: frozenset[str] | None = START_IMPORTS if host.restricted_start else None
        """What ``_initialize``/``_start``/``main`` may import (``None``: anything, ``Host(restricted_start=False)``)."""
        self.allowed_imports: frozenset[str] | None = self.start_imports
        self.notes: list[str] = []
        self.console: dict[int, str] = {1: "", 2: ""}
        self.bytes_to_guest = 0
        self.bytes_from_guest = 0
        self.alloc_calls = 0
        self.alloc_bytes = 0
        self.host_calls = 0
        """``env`` host calls made so far (counted by the import wrappers; costs read the difference)."""
        self.instructions = 0
        self._earlier_memory = 0  # the largest memory of instances this VM replaced (restore)
        self.last_cost: Cost | None = None
        self._fuel = (host.costs or host.callback_fuel is not None) and "fuel" in host.engine.capabilities and host.engine.config.fuel
        self._budget = host.callback_fuel or _FUEL_BUDGET
        self._costs = host.costs
        self._fuel_per_callback = host.callback_fuel is not None  # a budget per callback: fuel is reset, not read
        self._fuel_mark: int | None = None  # the store's fuel after the last metered callback (None: read it)
        # the counters when the metered callback running began (only a top-level callback is metered,
        # so one set): fields, not a tuple, so that compiled they stay C integers
        self._before_fuel = self._before_host_calls = self._before_to_guest = self._before_from_guest = 0
        self._before_alloc_calls = self._before_alloc_bytes = 0
        self._deadline = host.callback_deadline_s
        self._next_id = 1
        self._tokens = {"http": 4, "grpc_call": 5, "grpc_stream": 6}
        program.switch(self)
        self._calls = program.calls
        self._exports: dict[str, Any] = {}  # callers of this instance's exports, by name
        self.memory: GuestMemory | None = None
        self.current_callback = "(wasm start function)"
        try:
            self.instance = program.linked.instantiate(deadline_s=host.callback_deadline_s)
        except GuestTrap as trap:
            raise PluginStartError(
                "the wasm start function",
                str(CallbackError("(wasm start function)", None, trap)),
                envoy="cpp-host cannot create the VM (FailState::UnableToCreateVm); the plugin is not created",
            ) from None
        except LinkError as exc:
            raise ModuleLoadError(f"{program.source}: {exc}") from None
        finally:
            self.current_callback = None
        if self.instance.memory is None:
            raise ModuleLoadError(f"{program.source}: the module exports no memory", envoy="cpp-host cannot use a module without an exported memory")
        self.memory = self.instance.memory
        self.coverage_memory: GuestMemory | None = self.instance.memory_named(COVERAGE_EXPORT) if program.coverage is not None else None
        self._alloc, self.allocator = self._choose_allocator()
        self._check_exports()
        self.allowed_imports = None

    # -- start ---------------------------------------------------------------------------------
    def _choose_allocator(self) -> tuple[Any, str]:
        for name in ("malloc", "proxy_on_memory_allocate"):
            fn = self.instance.export(name)
            if fn is not None:
                return fn, name
        raise ModuleLoadError(
            f"{self.program.source}: exports neither malloc nor proxy_on_memory_allocate, so the host cannot return data to it",
            envoy="cpp-host fails the VM with FailState::MissingFunction",
        )

    def _check_exports(self) -> None:
        expected = dict(callbacks_for(self.abi.version))
        expected.update(INTEGRATION_EXPORTS)
        bad = []
        for exp in self.program.info.exports:
            sig = expected.get(exp.name)
            if sig is None or exp.type is None:
                continue
            params, results = exp.type
            if exp.name in ("proxy_on_request_headers", "proxy_on_response_headers"):
                ok = len(params) in (2, 3) and len(params) == self.abi.headers_arity and params == ("i32",) * len(params) and results == ("i32",)
            else:
                ok = (params, results) == sig.wasm_type
            if not ok:
                bad.append(f"{exp.name}: exported as ({', '.join(params)}) -> ({', '.join(results)}), expected {sig.describe()}")
        if bad:
            raise ModuleLoadError(
                f"{self.program.source}: bad function signature(s):\n  " + "\n  ".join(bad),
                envoy="cpp-host refuses the module ('Bad function signature')",
            )

    def initialize(self) -> None:
        """Run ``_initialize`` (+ ``main``/``__main_void``) or ``_start``, with cpp-host's import limits."""
        entries = ["_initialize"] if self.instance.export("_initialize") else ["_start"]
        if entries == ["_initialize"]:
            if self.instance.export("main"):
                entries.append("main")
            elif self.instance.export("__main_void"):
                entries.append("__main_void")
        for name in entries:
            fn = self.instance.export(name)
            if fn is None:
                continue
            args = (0, 0) if name == "main" else ()
            self.allowed_imports = self.start_imports
            try:
                self.call(name, *args)
            except CallbackError as err:
                raise PluginStartError(
                    name,
                    str(err),
                    envoy="cpp-host fails the VM (FailState::UnableToInitializeCode); Envoy rejects the Wasm configuration",
                    cause=err,
                ) from None
            finally:
                self.allowed_imports = None

    # -- contexts ------------------------------------------------------------------------------
    def new_context_id(self) -> int:
        """The next context id: one counter per VM, shared by roots and streams, never reused."""
        cid = self._next_id
        self._next_id += 1
        return cid

    @property
    def active(self) -> ContextBase:
        """The context host calls act on: the effective context if set and alive, else the running one."""
        return self._active()

    def _active(self) -> ContextBase:
        """:attr:`active` (a C call from compiled code: ``cpdef`` in ``instance.pxd``)."""
        eff = self.effective_context
        if eff is not None:
            ctx = self.contexts.get(eff)
            if ctx is not None:
                return ctx
        running = self._running
        return running if running is not None else self.contexts[0]

    @property
    def running(self) -> ContextBase:
        """The context whose callback is running (never the effective one)."""
        running = self._running
        return running if running is not None else self.contexts[0]

    # -- guest entry ---------------------------------------------------------------------------
    def export(self, name: str) -> Any:
        """Raw caller of an export, ``None`` if the module does not export it."""
        return self.instance.export(name)

    def has_export(self, name: str) -> bool:
        """Whether the module exports a function ``name``."""
        return name in self._exports or self.instance.export(name) is not None  # _exports: those already called

    def call(self, export: str, *args: int, context_id: int | None = None) -> int | None:
        """Run a top-level callback; ``None`` if the module does not export it.

        A trap, a panic, ``proc_exit`` or a host-side exception raises :class:`CallbackError`
        and marks the VM failed, as cpp-host does.
        """
        return self.call_in(context_id, export, args)

    def call_in(self, context_id: int | None, export: str, args: tuple[int, ...]) -> int | None:
        """:meth:`call` with the context first and the arguments as one tuple: what a stream's
        every callback uses (no keyword or star packing on the request path)."""
        fn = self._exports.get(export)
        if fn is None:
            fn = self.instance.export(export)
            if fn is None:
                self.last_cost = None
                return None
            self._exports[export] = fn
        if self.failed is not None:
            raise VmFailedError(self.failed)
        # what a nested call restores, as four locals (no tuple: compiled, they are C variables)
        outer_context, outer_effective, outer_callback, outer_running = self.current_context, self.effective_context, self.current_callback, self._running
        self.current_context = cid = context_id if context_id is not None else 0
        self._running = self.contexts.get(cid)  # looked up once per callback
        self.effective_context = None
        self.current_callback = export
        self._calls.vm = self  # program.switch(self), inline: this is every callback
        top = outer_callback is None
        metered = self._costs and top
        if metered:
            self._meter()
        elif top and self._fuel:
            self.instance.set_fuel(self._budget)
        if top and self._deadline is not None:
            self.instance.set_deadline(self._deadline)
        try:
            return fn(*args)
        except GuestTrap as trap:
            if trap.kind == "interrupt":
                trap.message = f"the callback ran past its deadline of {self.host.callback_deadline_s} s and was interrupted"
            elif trap.kind == "fuel" and self.host.callback_fuel is not None:
                trap.message = f"the callback executed more than its budget of {self.host.callback_fuel} instructions (callback_fuel) and was stopped"
            err = CallbackError(export, context_id, trap, logs=self.recent_output())
            self.failed = err
            raise err from None
        finally:
            self.current_context, self.effective_context, self.current_callback, self._running = outer_context, outer_effective, outer_callback, outer_running
            if metered:
                self.last_cost = self._cost_since()

    def _meter(self) -> None:
        """Mark the counters before a metered callback; fuel is reset to the budget only when one is
        set (``callback_fuel``): otherwise the store's fuel is read, one C call instead of two."""
        fuel = 0
        if self._fuel:
            if self._fuel_per_callback:
                self.instance.set_fuel(self._budget)
                fuel = self._budget
            else:  # what the last metered callback left (the guest runs only in callbacks), or read it
                fuel = self._fuel_mark if self._fuel_mark is not None else self.instance.get_fuel()
        self._before_fuel = fuel
        self._before_host_calls = self.host_calls
        self._before_to_guest = self.bytes_to_guest
        self._before_from_guest = self.bytes_from_guest
        self._before_alloc_calls = self.alloc_calls
        self._before_alloc_bytes = self.alloc_bytes

    def _cost_since(self) -> Cost:
        """The cost of the metered callback since :meth:`_meter` marked the counters."""
        instructions: int | None = None
        if self._fuel:
            left = self.instance.get_fuel()
            instructions = self._before_fuel - left
            self.instructions += instructions
            self._fuel_mark = None if self._fuel_per_callback else left
        return Cost(
            instructions,
            self.host_calls - self._before_host_calls,
            self.bytes_to_guest - self._before_to_guest,
            self.bytes_from_guest - self._before_from_guest,
            self.alloc_calls - self._before_alloc_calls,
            self.alloc_bytes - self._before_alloc_bytes,
        )

    @property
    def memory_high_water(self) -> int:
        """The largest linear memory this VM has had, in bytes (wasm memories never shrink, so it
        is the current size unless a restore replaced a larger instance)."""
        current = self.memory.size if self.memory is not None else 0
        return max(current, self._earlier_memory)

    def alloc(self, size: int) -> int:
        """Allocate guest memory with the module's allocator (never with size 0)."""
        saved = self.allowed_imports
        self.allowed_imports = ALLOCATOR_IMPORTS
        self.alloc_calls += 1
        self.alloc_bytes += size
        try:
            return self._alloc(size)
        finally:
            self.allowed_imports = saved

    def coverage(self) -> bytes | None:
        """The coverage bitmap since the last :meth:`reset_coverage`: byte ``i`` is 1 when the guest
        entered site ``i`` (``program.coverage.describe(i)`` says where); ``None`` without coverage."""
        mem = self.coverage_memory
        if mem is None:
            return None
        return mem.read(0, len(self.program.coverage.sites)) if self.program.coverage and self.program.coverage.sites else b""

    def reset_coverage(self) -> None:
        """Forget what was covered and compared (before the next input)."""
        mem = self.coverage_memory
        cov = self.program.coverage
        if mem is not None and cov is not None and cov.sites:
            mem.write(0, bytes(len(cov.sites)))
        if mem is not None and cov is not None and cov.comparisons is not None:
            mem.write(cov.comparisons, bytes(4))

    def comparisons(self) -> list[tuple[bytes, bytes]]:
        """The operands of the guest's byte comparisons (``memcmp``, ``bcmp``) since the last
        :meth:`reset_coverage`, most recent last; empty without coverage or such functions."""
        mem = self.coverage_memory
        cov = self.program.coverage
        if mem is None or cov is None or cov.comparisons is None:
            return []
        return read_comparisons(mem.view(0, mem.size), cov.comparisons)

    def phase_name(self) -> str:
        """Human name of what is running, for errors."""
        return self.current_callback or "host code"

    def snapshot(self) -> VmSnapshot:
        """Linear memory, mutable globals and the host-side VM state, between streams.

        Every mutable global of the module is exported by the loader (``__snap_g<n>``), so a
        restore puts the guest back exactly: stack pointers, Go's registers, allocator roots.
        """
        if any(c.stream is not None for c in self.contexts.values()):
            raise EmulatorError("a VM can only be snapshotted between streams: complete or close the open ones first")
        if self.memory is None:
            raise EmulatorError("the module has no memory to snapshot")
        return VmSnapshot(
            memory=self.memory.snapshot(),
            globals={name: self.instance.global_get(name) for name in self.program.snapshot_globals},
            contexts=dict(self.contexts),
            next_id=self._next_id,
            tokens=dict(self._tokens),
            console=dict(self.console),
            notes=len(self.notes),
        )

    def restore(self, snap: VmSnapshot) -> None:
        """Put the VM back to ``snap`` (memory that grew since means a fresh instance first, without ``_initialize``)."""
        size = len(snap.memory)
        if self.memory is None or self.memory.size > size or self.failed is not None:
            self._earlier_memory = self.memory_high_water
            self._fuel_mark = None  # a new store: its fuel starts afresh
            self.program.switch(self)
            self.allowed_imports = self.start_imports
            try:
                self.instance = self.program.linked.instantiate()
            finally:
                self.allowed_imports = None
            self._exports = {}
            self.memory = self.instance.memory
            self._alloc = self.instance.export(self.allocator)
            if self.coverage_memory is not None:
                self.coverage_memory = self.instance.memory_named(COVERAGE_EXPORT)
        assert self.memory is not None
        if self.memory.size < size:
            self.instance.grow_memory((size - self.memory.size) // 65536)
        self.memory.restore(snap.memory)
        for name, value in snap.globals.items():
            self.instance.global_set(name, value)
        self.contexts = dict(snap.contexts)
        self._next_id = snap.next_id
        self._tokens = dict(snap.tokens)
        self.console = dict(snap.console)
        del self.notes[snap.notes :]
        self.failed = None
        self.current_context, self.effective_context, self.current_callback, self._running = 0, None, None, None

    def shutdown(self) -> None:
        """Shut the VM down as cpp-host does: every plugin's streams end, then its root context."""
        for plugin in list(self.plugins):
            plugin.shutdown()

    # -- host-side state ------------------------------------------------------------------------
    def next_token(self, kind: str) -> int:
        """Callout tokens per VM as cpp-host allocates them: http 4, 8, ...; gRPC calls 5, 9, ...; streams 6, 10, ..."""
        token = self._tokens[kind]
        self._tokens[kind] = token + 4
        return token

    def note(self, message: str) -> None:
        """An emulator diagnostic about what the guest did (e.g. a bad pointer)."""
        self.notes.append(f"{self.phase_name()}: {message}")

    def console_write(self, fd: int, data: bytes) -> None:
        """Keep the raw tail of stdout/stderr: runtimes write panics in many small pieces."""
        self.console[fd] = (self.console[fd] + data.decode(errors="replace"))[-_CONSOLE_TAIL:]

    def recent_output(self, n: int = 8) -> list[str]:
        """The last ``proxy_log`` lines and the tail of stderr of this VM, for error messages."""
        logged = [str(r) for r in self.host.logs if r.vm_id == self.vm_id and r.source == "proxy_log"][-n:]
        stderr = [f"[stderr] {line}" for line in self.console[2].splitlines()[-n:] if line.strip()]
        return logged + stderr
