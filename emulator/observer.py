"""What sits between the filter and the host when a test watches host calls.

When a host records a trace, counts host calls or checks strict expectations, every ``env`` host
call goes through :class:`HostCallObserver`: it decodes the arguments, lets the expectations
check (or answer) the call, runs the real implementation, and records a :class:`TraceEntry`.
Without any of those the host calls take the direct path and cost nothing extra.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from abi import HOST_FUNCTIONS, Status

from .engines import MemoryAccessError
from .trace import RECORDERS, TraceEntry, capture_args, capture_results, captured, decode_call

if TYPE_CHECKING:
    from .host import Host
    from .vm.instance import Vm

__all__ = ["HostCallObserver"]


class HostCallObserver:
    """Decode, check, run and record one host call (see the module docstring)."""

    plain = True
    """Whether host calls may take the one-frame recorder (:func:`emulator.trace.recorder`) when
    only a trace is kept; a subclass changes what a call does, so it always gets :meth:`__call__`."""

    recorders = RECORDERS
    """The one-frame recorder of each import (see :func:`emulator.trace.RECORDERS`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.plain = False

    def __init__(self, host: Host) -> None:
        self.host = host
        self._counts: Counter[str] = Counter()

    @property
    def counts(self) -> Counter[str]:
        """The host calls made through this observer, by import name.

        The C trace recorder tallies its calls in C and adds them here when this is read (or when
        the host stops using it with this observer), so reading it is where they show up.
        """
        host = getattr(self, "host", None)  # a subclass may read it before this class's __init__
        fold = getattr(getattr(host, "_recording", None), "fold", None)
        if fold is not None:
            fold(self)
        return self._counts

    @counts.setter
    def counts(self, value: Counter[str]) -> None:
        if hasattr(self, "_counts"):
            self.counts  # noqa: B018 - what the C recorder tallied goes into the old counts first
        self._counts = value
        host = getattr(self, "host", None)
        if host is not None:
            host._recording = None  # the recorder resolves the new counts on its next call

    def __call__(self, vm: Vm, name: str, impl: Callable[..., Any], args: tuple[int, ...], fault: int) -> Any:
        host = self.host
        self._counts[name] += 1
        expectations = host.expectations
        trace = host.trace
        if trace is None and expectations is None:
            return _run(vm, name, impl, args, fault)
        if expectations is not None:
            decoded: Any = decode_call(vm, name, args)
            injected = expectations.check(name, decoded)
        else:
            injected = None
            decoded = captured(name, args, capture_args(vm, name, args))
        if injected is not None and injected.status is not None:
            status = injected.status
            if injected.data is not None:
                status = _answer(vm, name, args, injected.data)
        else:
            injected = None
            status = _run(vm, name, impl, args, fault)
        if trace is not None:
            results: Any = captured(name, args, capture_results(vm, name, args)) if status == 0 else {}
            ctx = vm.active.id
            trace.append(TraceEntry(host.next_seq(), name, decoded, status, results, ctx, vm.current_callback, injected is not None))
            if len(trace) > 2 * host.trace_limit:
                del trace[: len(trace) - host.trace_limit]
        return status


def _run(vm: Vm, name: str, impl: Callable[..., Any], args: tuple[int, ...], fault: int) -> Any:
    try:
        return impl(*args)
    except MemoryAccessError as exc:
        vm.note(f"{name}: {exc}")
        return fault


def _answer(vm: Vm, name: str, args: tuple[int, ...], data: bytes) -> int:
    """Return injected data through the call's ``ptr**``/``size*`` out-pointers (the first copy-out
    pair of the ABI table; a call without one just answers Ok)."""
    pairs = HOST_FUNCTIONS[name].copy_outs
    if not pairs:
        return Status.Ok
    ptr_i, size_i = pairs[0]
    return vm.program.calls.copy_out(data, args[ptr_i], args[size_i])
