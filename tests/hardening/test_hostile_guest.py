"""Hostile guests (issue #8): whatever a guest passes to the host, the emulator answers with a proper
status or a clean trap, never lets a Python exception escape, and keeps its state intact.

The generated modules are in ``emulator/hardening/plans.py`` and ``wat.py``, every property checked
in ``guest_checks.py`` and ``guest_campaign.py``; ``run_plan`` returns ``escaped`` (Python
exceptions that were not emulator errors) and ``problems`` (statuses that are not what cpp-host
returns, corrupted state, broken reports). Every test here runs on each engine given with
``--proxy-wasm-engine``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abi import Status
from emulator.hardening import isolate, layout
from emulator.hardening.calls import HostCall
from emulator.hardening.choosers import DataChooser, RandomChooser
from emulator.hardening.guest_campaign import run_hostile_campaign, run_plan
from emulator.hardening.layout import MEM, U32, payload, slot
from emulator.hardening.plans import ALLOCATORS, PHASES, GuestPlan, draw_plan
from tests.conftest import ROOT

OK, IMA, BAD, NOT_FOUND = Status.Ok, Status.InvalidMemoryAccess, Status.BadArgument, Status.NotFound
C = HostCall.make


def run(engine, calls, phase="root", allocator="bump", **plan):
    result = run_plan(GuestPlan(phase, allocator, list(calls), **plan), engine=engine)
    assert not result.escaped, result.report()
    assert not result.problems, result.report()
    return result


def test_out_of_bounds_pointers_and_overflowing_sizes_are_invalid_memory_access(proxy_wasm_engine):
    msg_ptr, msg_len = payload("bytes")
    key = payload("shared_key")
    r = run(
        proxy_wasm_engine,
        [
            C("proxy_log", 2, MEM + 16, 4),  # past the end
            C("proxy_log", 2, MEM - 2, 8),  # straddles the end
            C("proxy_log", 2, U32 - 3, 16),  # ptr + size > 2**32
            C("proxy_log", 2, msg_ptr, (1 << 32) - msg_ptr + 4),  # ptr + size wraps to 4 as a u32
            C("proxy_log", 2, msg_ptr, U32),  # a huge size
            C("proxy_get_current_time_nanoseconds", MEM - 4),  # a u64 out-param straddling the end
            C("proxy_get_log_level", U32),
            C("proxy_set_shared_data", *key, U32 - 3, 8, 0),
            C("proxy_get_property", *payload("path"), slot(0), MEM),  # the ptr** out-param is outside
            C("proxy_log", 2, msg_ptr, msg_len),  # and a good call still works afterwards
        ],
    )
    assert r.statuses == [IMA] * 9 + [OK]
    assert r.trap is None


def test_invalid_enums_are_bad_argument(proxy_wasm_engine):
    msg = payload("bytes")
    r = run(
        proxy_wasm_engine,
        [
            C("proxy_log", 6, *msg),
            C("proxy_log", U32, *msg),
            C("proxy_get_header_map_pairs", 8, slot(0), slot(1)),
            C("proxy_get_header_map_value", U32, *payload("header_key"), slot(0), slot(1)),
            C("proxy_add_header_map_value", 1 << 31, *payload("header_key"), *msg),
            C("proxy_get_header_map_size", 9, slot(0)),
            C("proxy_get_buffer_bytes", 9, 0, 10, slot(0), slot(1)),
            C("proxy_get_buffer_status", U32, slot(0), slot(1)),
            C("proxy_set_buffer_bytes", 12, 0, 0, *msg),
            C("proxy_continue_stream", 4),
            C("proxy_close_stream", U32),
            C("proxy_define_metric", 3, *payload("metric"), slot(0)),
            C("proxy_define_metric", 3, MEM + 1, 4, slot(0)),  # cpp-host reads the name first
        ],
        phase="request_headers",
    )
    assert r.statuses == [BAD] * 12 + [IMA]


def test_calls_from_initialize_trap_except_the_allowed_ones(proxy_wasm_engine):
    r = run(
        proxy_wasm_engine,
        [C("proxy_log", 2, *payload("bytes")), C("clock_time_get", 0, 1, slot(0)), C("proxy_get_property", *payload("path"), slot(0), slot(1))],
        phase="initialize",
    )
    assert r.statuses[:2] == [OK, 0] and r.trap == "restricted" and r.trapped_at == 2
    assert r.driver_errors == ["PluginStartError"]


def test_calls_from_the_wrong_context_get_statuses(proxy_wasm_engine):
    calls = [
        C("proxy_get_header_map_value", 0, *payload("header_key"), slot(0), slot(1)),
        C("proxy_replace_header_map_value", 2, *payload("header_key"), *payload("bytes")),
        C("proxy_get_buffer_bytes", 0, 0, 100, slot(0), slot(1)),
        C("proxy_send_local_response", 403, *payload("bytes"), *payload("bytes"), *payload("pairs"), 0),
        C("proxy_continue_stream", 0),
        C("proxy_set_property", *payload("path"), *payload("bytes")),
        C("proxy_done"),
    ]
    for phase in ("vm_start", "configure", "root", "vm_context", "bogus_context", "tick", "queue_ready"):
        r = run(proxy_wasm_engine, calls, phase=phase)
        assert r.statuses == [BAD, BAD, OK, OK, OK, NOT_FOUND, NOT_FOUND], phase


def test_a_reentrant_log_from_the_allocator_is_allowed(proxy_wasm_engine):
    log = C("proxy_log", 3, *payload("bytes"))
    r = run(proxy_wasm_engine, [C("proxy_get_property", *payload("path"), slot(0), slot(1))], allocator="reentrant", reentrant=log)
    assert r.statuses == [OK] and r.reentrant_calls == 1 and r.trap is None


def test_a_reentrant_host_call_from_the_allocator_traps_cleanly(proxy_wasm_engine):
    get = C("proxy_get_property", *payload("path"), slot(2), slot(3))
    r = run(proxy_wasm_engine, [C("proxy_get_property", *payload("path"), slot(0), slot(1))], allocator="reentrant", reentrant=get)
    assert r.trap == "restricted" and r.trapped_at == 0 and r.reentrant_calls == 1


@pytest.mark.parametrize("allocator", ["zero", "end", "huge", "random", "alternate"])
def test_an_allocator_returning_garbage_gives_invalid_memory_access(proxy_wasm_engine, allocator):
    get = C("proxy_get_property", *payload("path"), slot(0), slot(1))
    r = run(proxy_wasm_engine, [get, C("proxy_log", 2, *payload("bytes")), get], allocator=allocator, allocator_value=MEM + 8)
    assert r.statuses[0] == IMA and r.statuses[1] == OK and r.trap is None
    if allocator != "alternate":
        assert r.statuses[2] == IMA


def test_an_allocator_that_traps_fails_the_vm_and_keeps_the_host_state(proxy_wasm_engine):
    # run_plan then checks that shared data, metrics, the queue and the log written by the
    # well-formed prologue survive, that the failed VM answers 503 and that a fresh VM reads them
    r = run(proxy_wasm_engine, [C("proxy_log", 2, *payload("bytes")), C("proxy_get_property", *payload("path"), slot(0), slot(1))], allocator="trap")
    assert r.statuses[0] == OK and r.trap == "wasm" and r.trapped_at == 1


def test_an_allocator_that_grows_memory(proxy_wasm_engine):
    get = C("proxy_get_property", *payload("path"), slot(0), slot(1))
    r = run(proxy_wasm_engine, [get] * 5, allocator="grow")
    assert r.statuses == [OK] * 5


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_every_phase(proxy_wasm_engine, phase):
    ch = RandomChooser(sorted(PHASES).index(phase))
    for _ in range(2):
        plan = draw_plan(ch, max_calls=16, phase=phase)
        result = run_plan(plan, engine=proxy_wasm_engine)
        assert not result.escaped and not result.problems, result.report()


@pytest.mark.parametrize("allocator", sorted(ALLOCATORS))
def test_every_allocator(proxy_wasm_engine, allocator):
    ch = RandomChooser(100 + sorted(ALLOCATORS).index(allocator))
    for _ in range(2):
        plan = draw_plan(ch, max_calls=16, allocator=allocator)
        result = run_plan(plan, engine=proxy_wasm_engine)
        assert not result.escaped and not result.problems, result.report()


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_guests_never_break_the_emulator(proxy_wasm_engine, data):
    plan = draw_plan(DataChooser(data), max_calls=12)
    result = run_plan(plan, engine=proxy_wasm_engine)
    assert not result.escaped and not result.problems, result.report()


def test_ci_sized_campaign(proxy_wasm_engine):
    """The CI figure of docs/pages/reliability.md: at least 2,000 hostile calls in under a minute, none escaping."""
    res = run_hostile_campaign(2000, seed=2026, engine=proxy_wasm_engine)
    assert res["calls"] >= 2000
    assert (res["crashes"], res["escaped_exceptions"], res["problems"]) == (0, 0, 0), "\n\n".join(res["failures"])
    assert res["seconds"] < 60
    assert res["statuses"]["InvalidMemoryAccess"] and res["statuses"]["BadArgument"] and res["statuses"]["Ok"]


# -- the fuzzer catches what it claims to catch -------------------------------------------------


def test_it_reports_a_python_exception_raised_by_a_host_function(proxy_wasm_engine, monkeypatch):
    from emulator.glue import ImportCalls  # the Python class that mixes the families (a compiled family's type is immutable)

    def broken(self, level, ptr, size):
        raise KeyError("planted")

    monkeypatch.setattr(ImportCalls, "proxy_log", broken)
    result = run_plan(GuestPlan("root", "bump", [C("proxy_log", 2, *payload("bytes"))]), engine=proxy_wasm_engine)
    assert len(result.escaped) == 1 and "KeyError: 'planted'" in result.escaped[0]


def test_it_reports_corrupted_shared_state(proxy_wasm_engine, monkeypatch):
    from emulator.shared_state import SharedData

    real_set = SharedData.set

    def corrupting(self, key, value, vm_id="", cas=0):
        status = real_set(self, key, value, vm_id, cas)
        if key not in (layout.SENTINEL_KEY, layout.SENTINEL_KEY.decode()):
            real_set(self, layout.SENTINEL_KEY, b"clobbered", vm_id)
        return status

    monkeypatch.setattr(SharedData, "set", corrupting)
    result = run_plan(GuestPlan("root", "bump", [C("proxy_set_shared_data", *payload("shared_key"), *payload("bytes"), 0)]), engine=proxy_wasm_engine)
    assert any("shared data corrupted" in p for p in result.problems)
    assert any("fresh VM cannot read" in p for p in result.problems)


def test_it_reports_a_wrong_status(proxy_wasm_engine, monkeypatch):
    from emulator.glue import ImportCalls

    monkeypatch.setattr(ImportCalls, "proxy_get_log_level", lambda self, ret: 77)
    result = run_plan(GuestPlan("root", "bump", [C("proxy_get_log_level", slot(0))]), engine=proxy_wasm_engine)
    assert any("not a proxy-wasm status" in p for p in result.problems)


# -- the command line ------------------------------------------------------------------------------


def test_command_line_campaign():
    out = subprocess.run(
        [sys.executable, "-m", "emulator.hardening", "hostile", "--count", "40", "--seed", "3", "--json"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    res = json.loads(out.stdout)
    assert res["calls"] >= 40 and res["escaped_exceptions"] == 0 and res["crashes"] == 0


def test_isolated_runs_count_a_child_that_dies(tmp_path):
    res = isolate._isolated("hostile", 10, 1, 10, "wasmtime", tmp_path, extra=["--abort-for-test"])
    assert (res["crashes"], res["child_errors"]) == (1, 0)
    assert list(tmp_path.glob("crash_hostile_seed*.txt"))


def test_isolated_runs_tell_a_runner_error_from_a_crash(tmp_path):
    res = isolate._isolated("hostile", 10, 1, 10, "wasmtime", tmp_path, extra=["--no-such-option"])
    assert (res["crashes"], res["child_errors"]) == (0, 1)
    assert list(tmp_path.glob("error_hostile_seed*.txt"))
