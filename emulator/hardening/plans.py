"""Hostile guest plans: :class:`GuestPlan` (the phase its calls run in, what its allocator does, the
calls) and :func:`draw_plan`, with the weights of the phases and allocators drawn.
"""

from __future__ import annotations

from abi import ALLOCATOR_IMPORTS
from abi.records import record

from ..engines import wat2wasm
from .calls import HostCall, draw_call
from .choosers import Chooser
from .layout import MEM, U32
from .wat import _MULTI, _plan_wat

__all__ = ["ALLOCATORS", "PHASES", "GuestPlan", "draw_plan"]


PHASES: dict[str, float] = {
    "root": 18,
    "stream_all": 12,
    "concurrent_streams": 6,
    "root_mid_stream": 6,
    "tcp_all": 4,
    "request_headers": 10,
    "request_body": 5,
    "request_trailers": 3,
    "response_headers": 6,
    "response_body": 4,
    "response_trailers": 2,
    "log": 4,
    "stream_done": 2,
    "stream_delete": 2,
    "stream_context_create": 2,
    "vm_start": 4,
    "configure": 4,
    "initialize": 3,
    "root_context_create": 2,
    "vm_context": 3,
    "bogus_context": 3,
    "tick": 3,
    "http_call_response": 4,
    "queue_ready": 3,
    "foreign_function": 2,
    "root_done": 2,
    "tcp_new_connection": 2,
    "tcp_downstream_data": 3,
    "tcp_upstream_data": 2,
    "tcp_close": 2,
}
"""Where the planned calls run, with their weights (wrong phases included on purpose)."""

ALLOCATORS: dict[str, float] = {
    "bump": 10,
    "reentrant": 4,
    "grow": 2,
    "zero": 2,
    "end": 2,
    "huge": 2,
    "random": 1,
    "alternate": 1,
    "trap": 1,
}
"""What the guest allocator does: a healthy bump allocator (growing memory when full), the same
making a host call first (re-entrancy), one that grows memory on every call, or garbage."""
_HEALTHY = frozenset({"bump", "reentrant", "grow"})


@record
class GuestPlan:
    """A hostile guest: where it runs its calls, what its allocator does, and the calls."""

    phase: str
    allocator: str
    calls: list[HostCall]
    reentrant: HostCall | None = None
    allocator_export: str = "malloc"
    allocator_value: int = 0
    trace: bool = True
    hostility: int = 30
    """Percent of arguments drawn hostile."""
    segments: tuple[int, ...] = ()
    """For the multi-callback phases (``stream_all``, ``tcp_all``): how many calls each callback
    makes, in order (every stream callback runs the next segment)."""
    exchange: str = "full"
    """The HTTP exchange that drives stream phases: ``full``, ``headers_only``, ``body`` or ``grpc``."""
    costs: bool = False
    """Run with ``Host(costs=True)`` (every callback metered; fuel on wasmtime)."""
    deadline: bool = False
    """Run with ``Host(callback_deadline_s=...)`` (epoch deadlines; ignored on wasmer)."""

    def wat(self) -> str:
        """The module, as WebAssembly text."""
        return _plan_wat(self)

    def wasm(self) -> bytes:
        """The module, compiled with :func:`emulator.engines.wat2wasm`."""
        return wat2wasm(self.wat())

    def describe(self) -> str:
        """A short human description (for failure reports)."""
        head = f"phase={self.phase} allocator={self.allocator}({self.allocator_export}) trace={self.trace} hostility={self.hostility}% exchange={self.exchange}"
        if self.segments:
            head += f" segments={list(self.segments)}"
        if self.costs or self.deadline:
            head += f" costs={self.costs} deadline={self.deadline}"
        if self.reentrant is not None:
            head += f" reentrant={self.reentrant}"
        return head + "".join(f"\n  {i}: {c}" for i, c in enumerate(self.calls))


def draw_plan(ch: Chooser, *, max_calls: int = 32, phase: str | None = None, allocator: str | None = None) -> GuestPlan:
    """A hostile guest plan (see :class:`GuestPlan`): each plan has its own hostility level, from
    mostly well-formed calls that reach deep host state to nearly every argument hostile."""
    phase = phase or ch.weighted(list(PHASES.items()))
    allocator = allocator or ch.weighted(list(ALLOCATORS.items()))
    hostility = ch.choice([10, 25, 50, 90])
    n = ch.integer(1, max_calls)
    calls = [draw_call(ch, hostility=hostility, phase=phase) for _ in range(n)]
    segments: list[int] = []
    if phase in _MULTI:
        left = n
        while left > 0:
            k = min(left, ch.integer(0, 6))
            segments.append(k)
            left -= k
    reentrant = None
    if allocator == "reentrant":
        if ch.integer(0, 1):
            function = ch.choice(sorted(ALLOCATOR_IMPORTS))
        else:
            function = ch.choice(["proxy_get_property", "proxy_set_shared_data", "proxy_http_call", "proxy_get_buffer_bytes", "proc_exit"])
        reentrant = draw_call(ch, function=function, hostility=hostility, phase=phase)
    return GuestPlan(
        phase=phase,
        allocator=allocator,
        calls=calls,
        reentrant=reentrant,
        allocator_export=ch.weighted([("malloc", 3), ("proxy_on_memory_allocate", 1)]),
        allocator_value=ch.choice([0, MEM, MEM - 2, U32 - 3, 1 << 31, ch.integer(0, U32)]),
        trace=ch.integer(0, 3) != 0,
        hostility=hostility,
        segments=tuple(segments),
        exchange=ch.weighted([("full", 4), ("headers_only", 1), ("body", 1), ("grpc", 1)]),
        costs=ch.integer(0, 4) == 0,
        deadline=ch.integer(0, 4) == 0,
    )
