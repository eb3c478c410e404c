"""The hostile-guest campaign: :func:`run_plan` runs one plan in a fresh host, driving the phase its
calls run in, and checks it; :func:`run_hostile_campaign` draws and runs plans until enough host
calls were tried, and counts what happened.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from abi import START_IMPORTS

from ..errors import CallbackError, EmulatorError, HostCallNotImplemented, ModuleLoadError, ProcExit, RestrictedHostCall
from ..host import Host
from ..http.types import Request, Response
from ..vm.program import Program
from .choosers import RandomChooser
from .guest_checks import _check_reports, _check_state, _check_statuses, _expected_trap_reasons, _global, _probe, _status_name
from .layout import ROOT_ID, VM_ID
from .plans import GuestPlan, draw_plan
from .results import PlanResult, _escaped
from .wat import _MULTI

__all__ = ["run_hostile_campaign", "run_plan"]


def _classify_trap(err: CallbackError) -> tuple[str, BaseException | None]:
    cause = err.cause
    if isinstance(cause, RestrictedHostCall):
        return "restricted", None
    if isinstance(cause, ProcExit):
        return "proc_exit", None
    if isinstance(cause, HostCallNotImplemented):
        return "not_implemented", None
    if cause is None:
        return ("interrupt" if err.trap.kind in ("interrupt", "fuel") else "wasm"), None
    if isinstance(cause, EmulatorError):
        return type(cause).__name__, None
    return f"internal:{type(cause).__name__}", cause


def _exchange(shape: str) -> tuple[Request, Response]:
    headers = {":method": "POST", ":path": "/hardening?q=1", ":authority": "hardening", "content-type": "text/plain"}
    if shape == "headers_only":
        return Request({**headers, ":method": "GET"}), Response({":status": "204"})
    if shape == "body":
        return Request(headers, body="hello hostile world", chunks=7), Response({":status": "200"}, body="ok body", chunks=3)
    if shape == "grpc":
        return (
            Request({**headers, "content-type": "application/grpc", "te": "trailers"}, body=b"\0\0\0\0\x05hello"),
            Response({":status": "200", "content-type": "application/grpc"}, body=b"\0\0\0\0\x02ok", trailers={"grpc-status": "0"}),
        )
    return (
        Request(headers, body="hello hostile world", chunks=7, trailers={"x-request-trailer": "1"}),
        Response({":status": "200", "content-length": "2"}, body="ok", trailers={"x-response-trailer": "1"}),
    )


def _feed(stream: Any, side: str, message: Request | Response, *, until: str = "end") -> None:
    """Send one side of an exchange step by step, as ``Plugin.http_exchange`` does."""
    from ..http.types import as_body, chunked

    parts = chunked(as_body(message.body), message.chunks)
    trailers = message.trailers
    getattr(stream, f"send_{side}_headers")(message.headers, end_of_stream=not parts and trailers is None)
    if until == "headers":
        return
    for i, part in enumerate(parts):
        if stream.completed:
            return
        getattr(stream, f"send_{side}_body")(part, end_of_stream=i == len(parts) - 1 and trailers is None)
    if trailers is not None and not stream.completed:
        getattr(stream, f"send_{side}_trailers")(trailers)


def _finish(stream: Any, request: Request, response: Response) -> None:
    """Finish a stream whose request headers were sent: the rest of the request, the response, the end."""
    from ..http.types import as_body, chunked

    req = stream.request
    if not stream.completed and not req.ended:
        parts = chunked(as_body(request.body), request.chunks)
        for i, part in enumerate(parts):
            if stream.completed:
                break
            stream.send_request_body(part, end_of_stream=i == len(parts) - 1 and request.trailers is None)
        if request.trailers is not None and not stream.completed and not req.ended:
            stream.send_request_trailers(request.trailers)
    if not stream.completed and stream.upstream_request.headers is not None and stream.response.received_headers is None:
        _feed(stream, "response", response)
    stream.complete()


def _drive(plan: GuestPlan, host: Host, program: Program, result: PlanResult) -> Any:
    """Run the plan's phase; returns the plugin (or None if it did not start)."""
    phase = plan.phase
    vm = host.create_vm(program, vm_id=VM_ID)
    plugin = host.add_plugin(vm, root_id=ROOT_ID, name="hardening", plugin_config=b"hardening-config")
    root = plugin.root_context_id
    result.logs_after_start = list(host.logs)
    request, response = _exchange(plan.exchange)
    if phase == "root":
        vm.call("run", context_id=root)
    elif phase == "vm_context":
        vm.call("run", context_id=0)
    elif phase == "bogus_context":
        vm.call("run", context_id=4242)
    elif phase == "root_mid_stream":
        stream = plugin.http_stream()
        _feed(stream, "request", request, until="headers")
        vm.call("run", context_id=root)
        host.drain()
        _finish(stream, request, response)
    elif phase == "concurrent_streams":
        first = plugin.http_stream()
        _feed(first, "request", request, until="headers")
        second = plugin.http_stream()
        _feed(second, "request", request, until="headers")
        plugin.http_exchange(request, response)
        _finish(second, request, response)
        _finish(first, request, response)
    elif (
        phase.startswith("request_") or phase.startswith("response_") or phase in ("log", "stream_done", "stream_delete", "stream_context_create", "stream_all")
    ):
        plugin.http_exchange(request, response)
        if phase == "stream_all":
            plugin.http_exchange(request, response)
    elif phase == "tick":
        host.advance(25)
    elif phase == "http_call_response":
        for call in host.http_calls.pending():
            call.respond(200, headers={"x-callout": "1"}, body="callout-body", trailers={"x-t": "1"})
    elif phase == "foreign_function":
        host.foreign_functions.invoke_callback(plugin, 7, b"foreign-args")
    elif phase == "root_done":
        plugin.shutdown()
    elif phase.startswith("tcp_"):
        if phase == "tcp_all":
            conn = plugin.tcp_connection()
            conn.send_downstream(b"hello", end_of_stream=False)
            conn.send_upstream(b"world", end_of_stream=True)
            conn.send_downstream(b"more", end_of_stream=True)
        conn = plugin.tcp_connection()
        conn.send_downstream(b"ping", end_of_stream=False)
        conn.send_upstream(b"pong", end_of_stream=False)
        conn.close()
    host.drain()
    host.advance(10)
    return plugin


def run_plan(plan: GuestPlan, *, engine: str = "wasmtime", wasm: bytes | None = None) -> PlanResult:
    """Run one hostile plan in a fresh host and check every property (see :mod:`emulator.hardening`)."""
    result = PlanResult(plan, statuses=[None] * len(plan.calls))
    host = Host(
        engine=engine,
        cache=False,
        trace=plan.trace,
        costs=plan.costs,
        callback_deadline_s=10.0 if plan.deadline and engine != "wasmer" else None,
        properties={"hardening": {"list": ["a", "b"], "n": 7, "nested": {"k": b"v"}, "bad": object()}},
    )
    try:
        program = Program(host.engine, wasm if wasm is not None else plan.wasm(), cache=None, source="<hostile guest>")
    except ModuleLoadError as exc:  # a generator bug, not an emulator one
        result.problems.append(f"the hostile module does not load: {exc}")
        return result
    plugin = None
    try:
        plugin = _drive(plan, host, program, result)
    except EmulatorError as exc:
        result.driver_errors.append(type(exc).__name__)
    except Exception as exc:
        result.escaped.append(_escaped(f"driving phase {plan.phase}", exc))
    vm = host.vms[0] if host.vms else None
    if vm is None:
        return result
    # the host still works: one more exchange (multi-callback plans run their next segments in it)
    failed_before = vm.failed
    try:
        if plugin is not None:
            stream = plugin.http_exchange(Request({":method": "GET", ":path": "/after", ":authority": "hardening"}), Response({":status": "200"}))
            if failed_before is not None and plugin.vm is vm and stream.local_response is not None and stream.local_response.status != 503:
                result.problems.append(f"a failed VM (fail closed) answered {stream.local_response.status}, not 503")
    except EmulatorError as exc:
        result.driver_errors.append(f"after: {type(exc).__name__}")
    except Exception as exc:
        result.escaped.append(_escaped("an exchange after the plan", exc))
    # what the guest saw
    multi = plan.phase in _MULTI
    result.reached = bool(_global(vm, "ran"))
    done = _global(vm, "n")
    for i in range(min(done, len(plan.calls))):
        result.statuses[i] = _global(vm, f"r{i}")
    result.pages = [_global(vm, f"m{i}") for i in range(len(plan.calls))]
    if plan.allocator == "reentrant":
        result.reentrant_calls = _global(vm, "na")
    if vm.failed is not None:
        result.trap, cause = _classify_trap(vm.failed)
        if cause is not None:
            result.escaped.append(_escaped(f"a host function raised inside the guest ({vm.failed.callback})", cause))
        if result.reached and done < len(plan.calls):
            result.trapped_at = done
            call = plan.calls[done]
            if result.trap not in _expected_trap_reasons(plan, call) and cause is None:
                result.problems.append(f"call {done} {call}: unexpected trap ({result.trap}): {vm.failed.reason}")
        elif result.trap not in ("restricted", "wasm", "proc_exit") and cause is None:
            result.problems.append(f"unexpected trap outside the planned calls ({result.trap}): {vm.failed.reason}")
    elif result.reached and done < len(plan.calls) and not multi:
        result.problems.append(f"the guest stopped at call {done} without a trap")
    if result.reached and plan.phase == "initialize" and vm.failed is None and any(c.function not in START_IMPORTS for c in plan.calls):
        result.problems.append("no RestrictedHostCall although the plan calls restricted functions during _initialize")
    _check_statuses(plan, result)
    # its state is intact, and a fresh VM still reads it
    try:
        _check_state(plan, host, vm, result)
        if _global(vm, "prologue_ok"):
            _probe(host, result)
    except EmulatorError as exc:
        result.driver_errors.append(f"probe: {type(exc).__name__}")
    except Exception as exc:
        result.escaped.append(_escaped("checking the host state after the plan", exc))
    _check_reports(host, result)
    return result


def run_hostile_campaign(
    calls: int,
    seed: int,
    *,
    engine: str = "wasmtime",
    max_calls_per_plan: int = 32,
    max_failures: int = 10,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run hostile plans until ``calls`` host calls were tried; returns the counts.

    ``{"calls", "plans", "crashes", "escaped_exceptions", "problems", "statuses": {name: n},
    "traps": {reason: n}, "phases": {...}, "driver_errors": {...}, "failures": [reports], "seconds",
    "engine", "seed"}``. ``crashes`` is 0 when this returns (a crash kills the process; run with
    ``--isolate`` from the command line to count crashes instead).
    """
    ch = RandomChooser(seed)
    statuses: Counter[str] = Counter()
    traps: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    drivers: Counter[str] = Counter()
    tried = plans = escaped = problems = fidelity = 0
    fidelity_examples: list[str] = []
    failures: list[str] = []
    start = time.perf_counter()
    while tried < calls:
        plan = draw_plan(ch, max_calls=max_calls_per_plan)
        result = run_plan(plan, engine=engine)
        plans += 1
        tried += result.calls_tried
        phases[plan.phase] += 1
        for call, status in zip(plan.calls, result.statuses, strict=True):
            if status is not None:
                statuses[_status_name(call, status)] += 1
        if result.trap is not None:
            traps[result.trap] += 1
            if result.trapped_at is not None:
                statuses[f"trap:{result.trap}"] += 1
        if result.reentrant_calls:
            statuses["reentrant"] += result.reentrant_calls
        for d in result.driver_errors:
            drivers[d] += 1
        escaped += len(result.escaped)
        problems += len(result.problems)
        fidelity += len(result.fidelity)
        if result.fidelity and len(fidelity_examples) < 3:
            fidelity_examples.append(result.fidelity[0])
        if (result.escaped or result.problems) and len(failures) < max_failures:
            failures.append(result.report())
        if progress is not None and plans % 50 == 0:
            progress({"calls": tried, "plans": plans, "escaped_exceptions": escaped, "problems": problems})
    return {
        "engine": engine,
        "seed": seed,
        "calls": tried,
        "plans": plans,
        "crashes": 0,
        "escaped_exceptions": escaped,
        "problems": problems,
        "fidelity_notes": fidelity,
        "fidelity_examples": fidelity_examples,
        "statuses": dict(statuses.most_common()),
        "traps": dict(traps.most_common()),
        "phases": dict(phases.most_common()),
        "driver_errors": dict(drivers.most_common()),
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 2),
    }
