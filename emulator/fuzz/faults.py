"""Host faults applied: :class:`FaultInjectingObserver` answers the host calls a
:class:`~emulator.fuzz.strategies.FaultPlan` covers with an error status, and records each
:class:`InjectedFault`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from abi.records import record

from ..observer import HostCallObserver
from ..trace import TraceEntry, decode_call

if TYPE_CHECKING:
    from ..host import Host
    from ..vm.instance import Vm
    from .values import FaultPlan

__all__ = ["FaultInjectingObserver", "InjectedFault"]


@record(frozen=True)
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
        self._counts[name] += 1
        ctx = vm.active.id
        self.injected.append(InjectedFault(name, status, vm.current_callback, ctx, chosen))
        host = self.host
        if host.trace is not None:
            host.trace.append(TraceEntry(host.next_seq(), name, decode_call(vm, name, args), status, {}, ctx, vm.current_callback, True))
        return status
