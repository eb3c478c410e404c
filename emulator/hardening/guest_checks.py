"""What a hostile guest's run must show: statuses the ABI table allows (and cpp-host returns), traps
only where cpp-host traps, the sentinel state intact and readable from a fresh VM, and reports that
render.
"""

from __future__ import annotations

import json
from typing import Any

from abi import ALLOCATOR_IMPORTS, HOST_FUNCTIONS, START_IMPORTS, Status, WasiErrno, roles

from ..engines import wat2wasm
from ..host import Host
from ..vm.program import Program
from .calls import HostCall, _tags
from .layout import COUNTER_VALUE, GAUGE_VALUE, PAGE, SENTINEL_COUNTER, SENTINEL_GAUGE, SENTINEL_ITEM, SENTINEL_KEY, SENTINEL_QUEUE, SENTINEL_VALUE, U32, VM_ID
from .plans import _HEALTHY, GuestPlan
from .results import PlanResult, _escaped
from .wat import _PROBE_WAT

__all__: list[str] = []


_KNOWN = {Status: frozenset(map(int, Status)), WasiErrno: frozenset(map(int, WasiErrno))}
"""Every value of a status type, whatever the function."""
_COPY_OUT = frozenset(name for name, sig in HOST_FUNCTIONS.items() if sig.allocates)
"""Host functions that may call the guest allocator (they return data through ``ptr**``)."""
_READS_FIRST = frozenset(name for name, sig in HOST_FUNCTIONS.items() if any(p.role == roles.IN for p in sig.parameters))
"""Host functions with an input range (``in`` in the ABI table): each reads every input buffer before
anything else but the enum check (cpp-host's ``getMemory`` at the top of the call), so a buffer
outside memory must give InvalidMemoryAccess."""


def _probe_program(host: Host) -> Program:
    key = host.engine.cache_key() + host.engine.name
    programs = host.session.cache("hardening.probe")
    prog = programs.get(key)
    if prog is None:
        prog = programs[key] = Program(host.engine, wat2wasm(_PROBE_WAT), cache=None, source="<hardening probe>")
    return prog


def _global(vm: Any, name: str) -> int:
    return int(vm.instance.global_get(name)) & U32


def _expected_trap_reasons(plan: GuestPlan, call: HostCall) -> set[str]:
    reasons: set[str] = set()
    if call.function == "proc_exit":
        reasons.add("proc_exit")
    if call.function == "envoy_resolve_dns":
        reasons.add("not_implemented")
    if plan.phase == "initialize" and call.function not in START_IMPORTS:
        reasons.add("restricted")
    if call.function in _COPY_OUT:
        if plan.allocator == "trap":
            reasons.add("wasm")
        if plan.allocator == "reentrant" and plan.reentrant is not None and plan.reentrant.function not in ALLOCATOR_IMPORTS:
            reasons.add("restricted")
    return reasons


def _check_statuses(plan: GuestPlan, result: PlanResult) -> None:
    """Per-call oracles on what the guest got back."""
    for i, (call, status) in enumerate(zip(plan.calls, result.statuses, strict=True)):
        if status is None:
            continue
        where = f"call {i} {call}"
        tags = _tags(call.signature, call.args, result.pages[i] * PAGE) if result.pages and result.pages[i] else call.tags
        if plan.phase == "initialize" and call.function not in START_IMPORTS:
            result.problems.append(f"{where}: returned {status} during _initialize, where cpp-host traps (RestrictedHostCall expected)")
            continue
        sig = call.signature
        if not sig.results:
            continue
        if sig.status_type is not None and status not in _KNOWN[sig.status_type]:
            kind = "a proxy-wasm status" if sig.status_type is Status else "a WASI errno the host uses"
            result.problems.append(f"{where}: returned {status}, not {kind}")
            continue
        if status not in sig.answers:  # Ok, the table's statuses, and the bad-pointer status for pointer calls
            expected = ", ".join(_status_name(call, a) for a in sorted(sig.answers))
            result.problems.append(f"{where}: returned {_status_name(call, status)}, which the ABI table does not list (expected {expected})")
            continue
        if sig.status_type is not Status:
            continue
        if "bad_enum" in tags:
            allowed = {Status.BadArgument}
            if call.function == "proxy_define_metric" and "in_oob" in tags:
                allowed.add(Status.InvalidMemoryAccess)  # cpp-host reads the name before the type check
            if status not in allowed:
                result.problems.append(f"{where}: invalid enum gave {Status(status).name}, expected {'/'.join(s.name for s in allowed)}")
            continue
        clean_ptrs = not (tags & {"in_oob", "out_oob", "iovecs"})
        if clean_ptrs and plan.allocator in _HEALTHY and status == Status.InvalidMemoryAccess:
            result.problems.append(f"{where}: InvalidMemoryAccess although every pointer is inside memory and the allocator is healthy")
        if call.function in _READS_FIRST and "in_oob" in tags and status != Status.InvalidMemoryAccess:
            result.problems.append(f"{where}: an input buffer outside memory gave {Status(status).name}, expected InvalidMemoryAccess")


def _check_state(plan: GuestPlan, host: Host, vm: Any, result: PlanResult) -> None:
    """The well-formed prologue's effects, the log and every report must survive the plan."""
    if vm is None or not _global(vm, "prologue_ok"):
        return
    entry = host.shared_data.get(SENTINEL_KEY, VM_ID)
    if entry is None or entry[0] != SENTINEL_VALUE:
        result.problems.append(f"shared data corrupted: {SENTINEL_KEY!r} is {entry!r}")
    counter = host.metrics.get(SENTINEL_COUNTER.decode())
    gauge = host.metrics.get(SENTINEL_GAUGE.decode())
    if counter != COUNTER_VALUE or gauge != GAUGE_VALUE:
        result.problems.append(f"metrics corrupted: counter={counter!r} gauge={gauge!r}")
    items = host.queues.contents(SENTINEL_QUEUE, VM_ID)
    if items[:1] != [SENTINEL_ITEM]:
        result.problems.append(f"shared queue corrupted: {items[:3]!r}")
    before = result.logs_after_start
    if host.logs[: len(before)] != before:
        result.problems.append("records of the log changed after they were written")


def _probe(host: Host, result: PlanResult) -> None:
    """A fresh, well-behaved VM in the same host still reads what the prologue wrote."""
    vm = host.create_vm(_probe_program(host), vm_id=VM_ID)
    plugin = host.add_plugin(vm, root_id="probe", name="probe")
    vm.call("probe", context_id=plugin.root_context_id)
    mem = vm.memory
    statuses = [mem.u32(0x200 + 4 * i) for i in range(5)]
    value = mem.read(mem.u32(0x100), mem.u32(0x104)) if statuses[0] == 0 else None
    if statuses != [0, 0, 0, 0, 0] or value != SENTINEL_VALUE or mem.u64(0x118) != COUNTER_VALUE or mem.u64(0x128) != GAUGE_VALUE:
        result.problems.append(
            f"a fresh VM cannot read the sentinel state: statuses={statuses} value={value!r} counter={mem.u64(0x118)} gauge={mem.u64(0x128)}"
        )


def _check_reports(host: Host, result: PlanResult) -> None:
    """Everything a test author would print must render."""
    try:
        if host.trace is not None:
            json.dumps(host.trace.to_json())
            host.trace.tail(50)
            for entry in host.trace:
                str(entry)
        for record in host.logs:
            record.envoy_line()
            json.dumps(record.to_json())
        json.dumps(host.metrics.all())
        host.shared_data.snapshot()
        for vm in host.vms:
            vm.recent_output()
    except Exception as exc:
        result.escaped.append(_escaped("rendering the trace/logs/metrics", exc))


def _status_name(call: HostCall, status: int) -> str:
    if call.module == "env" and call.signature.results and call.signature.status_type is not None:
        try:
            return Status(status).name
        except ValueError:
            return f"status {status}"
    if call.module != "env":
        try:
            return "wasi:" + WasiErrno(status).name
        except ValueError:
            return f"wasi:{status}"
    return "returned"
