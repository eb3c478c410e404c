"""Resource limits and capability restriction (issue #8): runaway loops, memory bombs, allow-lists."""

from __future__ import annotations

import time

import pytest

from abi import LogLevel, Status, WasiErrno
from emulator import Host, Request
from emulator.engines.base import demangle
from tests.conftest import FIXTURES, wat_module

REQ = {":method": "GET", ":path": "/", ":authority": "a"}


def test_a_runaway_loop_stops_at_the_deadline_and_the_next_stream_works():
    host = Host(callback_deadline_s=0.1)
    plugin = host.load(wat_module("runaway"))
    started = time.monotonic()
    s = plugin.http_exchange(Request({**REQ, "x-spin": "1"}))
    assert time.monotonic() - started < 2.0
    assert s.error is not None and s.error.callback == "proxy_on_request_headers"
    assert "deadline of 0.1 s" in s.error.reason and "spin_forever" in str(s.error)
    assert s.downstream_response.header(":status") == b"503"
    after = plugin.http_exchange(Request(REQ))
    assert after.error is None and after.upstream_request.headers is not None and plugin.reloads == 1


def test_the_memory_limit_holds_when_the_module_was_loaded_before_without_it():
    """A session shares compiled programs between hosts; one made by a host with another limit
    must not bring that limit along (it did: the program was keyed by what the compiled code
    depends on, which leaves the memory limit out)."""
    Host().load(wat_module("runaway"))  # the default limit, 16384 pages
    plugin = Host(max_memory_pages=32).load(wat_module("runaway"))
    s = plugin.http_exchange(Request({**REQ, "x-bomb": "1"}))
    assert s.error is None and plugin.vm.memory.size == 32 * 65536


def test_the_c_export_caller_releases_the_gil_only_where_deadlines_need_the_ticker():
    """Deadlines need the epoch ticker thread to run while the guest does; without them the C
    caller keeps the GIL through the call (the ctypes path always releases it)."""
    from emulator.engines import wasmtime_engine

    if wasmtime_engine._crossing is None:
        pytest.skip("the C accelerator is part of the speed mode; the ctypes path always releases the GIL")
    for options, releases in (({}, False), ({"callback_deadline_s": 0.1}, True)):
        plugin = Host(**options).load(wat_module("runaway"))
        caller = plugin.vm.instance.export("proxy_on_request_headers")
        assert isinstance(caller, wasmtime_engine._crossing.ExportCaller)
        assert caller.release_gil is releases, options


def test_a_memory_bomb_stops_at_the_page_limit(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine, max_memory_pages=32)
    plugin = host.load(wat_module("runaway"))
    s = plugin.http_exchange(Request({**REQ, "x-bomb": "1"}))
    if proxy_wasm_engine == "wasmer":  # wasmer cannot refuse a grow: the call is failed afterwards
        assert s.error is not None and "past the limit" in str(s.error)
    else:
        assert s.error is None and plugin.vm.memory.size == 32 * 65536
        assert host.logs[-1].message == "grow failed"


def test_wasmer_says_which_limits_it_cannot_enforce():
    from emulator.engines import EngineConfig, available_engines, get_engine

    if available_engines()["wasmer"] is not None:
        pytest.skip("wasmer is not installed on this Python")
    with pytest.raises(NotImplementedError, match="no fuel"):
        get_engine("wasmer", EngineConfig(epoch=True))


def test_restricted_capabilities_log_and_return_cpp_hosts_values():
    host = Host()
    plugin = host.load(wat_module("hostcalls"), allowed_capabilities=["proxy_log", "proxy_get_buffer_bytes"])
    vm, root = plugin.vm, plugin.root_context_id
    assert vm.call("t_proxy_set_tick_period_milliseconds", 10, context_id=root) == Status.InternalFailure
    assert plugin.tick_period_ms == 0
    assert host.logs[-1].level == LogLevel.WARN and "not in allowed_capabilities" in host.logs[-1].message
    assert vm.call("t_proxy_log", 2, 0, 0, context_id=root) == Status.Ok  # allowed
    assert plugin.vm.program.restricted and "env.proxy_http_call" in plugin.vm.program.restricted


def test_restricted_wasi_returns_enotcapable():
    host = Host()
    vm = host.create_vm(wat_module("wasi_calls"), allowed_capabilities=["proxy_log"])
    assert vm.call("t_random", 3000, 8) == WasiErrno.NOTCAPABLE


def test_the_rust_sdk_panics_on_a_restricted_call_as_under_envoy():
    host = Host()
    plugin = host.load(FIXTURES / "rust/headers_rust.wasm", allowed_capabilities=["proxy_log", "proxy_get_buffer_bytes", "fd_write"])
    s = plugin.http_exchange(Request(REQ))
    assert "unexpected status: 10" in str(s.error)
    assert "proxy_wasm::hostcalls::get_map_value" in str(s.error)  # demangled backtrace


def test_demangle():
    assert demangle("_ZN10proxy_wasm9hostcalls13get_map_value17hcbe0a6806308a2cfE") == "proxy_wasm::hostcalls::get_map_value"
    assert demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE") == "core::ptr::drop_in_place"
    assert demangle("runtime.main") == "runtime.main"
    assert demangle("_ZNbroken") == "_ZNbroken"


def test_a_looping_start_function_stops_at_the_deadline():
    import wasmtime

    from emulator import PluginStartError

    wasm = bytes(
        wasmtime.wat2wasm(
            '(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 8)) (func (export "proxy_abi_version_0_2_1")) (func $spin (loop $l (br $l))) (start $spin))'
        )
    )
    started = time.monotonic()
    with pytest.raises(PluginStartError) as info:
        Host(cache=False, callback_deadline_s=0.1).load(wasm)
    assert time.monotonic() - started < 2.0
    assert info.value.phase == "the wasm start function" and "interrupt" in str(info.value)


def test_an_empty_range_past_the_end_of_memory_is_invalid():
    from tests.hostcall_harness import Harness

    h = Harness("wasmtime")
    assert h.call("proxy_log", 2, 0x80000000, 0) == Status.InvalidMemoryAccess
    assert h.call("proxy_log", 2, 0, 0) == Status.Ok


def test_a_fuel_budget_stops_a_runaway_loop_deterministically_and_the_next_stream_works():
    host = Host(callback_fuel=2_000_000)
    plugin = host.load(wat_module("runaway"))
    s = plugin.http_exchange(Request({**REQ, "x-spin": "1"}))
    assert s.error is not None and s.error.callback == "proxy_on_request_headers"
    assert "budget of 2000000 instructions" in s.error.reason and "spin_forever" in str(s.error)
    assert s.downstream_response.header(":status") == b"503"
    after = plugin.http_exchange(Request(REQ))
    assert after.error is None and after.upstream_request.headers is not None and plugin.reloads == 1


def test_a_generous_fuel_budget_changes_nothing_a_real_filter_does():
    module = FIXTURES / "rust/headers_rust.wasm"
    costs = []
    for budget in (None, 50_000_000):
        host = Host(costs=True, callback_fuel=budget)
        s = host.load(module).http_exchange(Request({**REQ, "x-a": "1"}, body="hello"))
        assert s.error is None
        costs.append([c.cost.instructions for c in s.callbacks if c.cost is not None])
    assert costs[0] == costs[1] and all(costs[0])


def test_callback_fuel_is_refused_where_it_cannot_be_counted():
    with pytest.raises(Exception, match="positive"):
        Host(callback_fuel=0)
