"""Each built-in invariant of the host lint fires on a filter that breaks it and stays quiet on a
well-behaved one; user invariants plug in."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from abi import MapType
from emulator import Host, PluginStartError, Request, Response
from emulator.fuzz import strategies as pst
from emulator.fuzz.invariants import (
    BUILTIN_INVARIANTS,
    Invariant,
    RunView,
    check,
    check_host,
    check_stream,
    memory_growth,
    register_invariant,
    registered_invariants,
    resolve_invariants,
    stream_invariant,
    unregister_invariant,
)
from tests.conftest import FIXTURES, wat_module
from tests.fuzz.modules import LEAK_EVERY_REQUEST, NEVER_DONE, compile_wat
from tests.hostcall_harness import Harness, open_stream

GET = {":method": "GET", ":path": "/", ":authority": "shop"}
RUST = FIXTURES / "rust/headers_rust.wasm"


def names(violations):
    return {v.invariant for v in violations}


@pytest.fixture
def pitfalls(proxy_wasm_engine):
    return Host(engine=proxy_wasm_engine).load(wat_module("pitfalls"))


def test_trap_in_a_callback(pitfalls):
    stream = pitfalls.http_exchange({**GET, "x-trap": "1"})
    (v,) = check_stream(stream)
    assert v.invariant == "trap"
    assert v.message.startswith("stream 1: proxy_on_request_headers (context 2) failed: ")


def test_trap_outside_streams_counts_too(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("trap_in_configure"))
    (v,) = check(RunView(host, start_error=info.value), resolve_invariants(), "end")
    assert v.invariant == "trap"
    assert v.message.startswith("plugin start (proxy_on_configure): proxy_on_configure")


def test_local_reply_followed_by_continue(pitfalls):
    stream = pitfalls.http_exchange({**GET, "x-local-continue": "1"})
    (v,) = check_stream(stream)
    assert v.invariant == "local_reply_then_continue"
    assert "send_local_response followed by Continue" in v.message


def test_removing_status(pitfalls):
    stream = pitfalls.http_exchange(Request(GET), Response({":status": "200", "x-remove-status": "1"}, body="gone"))
    (v,) = check_stream(stream)
    assert v.invariant == "removed_pseudo_header"
    assert ":status" in v.message and "502" in v.message


def test_a_status_that_arrived_invalid_is_not_the_filters_fault(pitfalls):
    stream = pitfalls.http_stream()
    stream.send_request_headers(GET, end_of_stream=True)
    stream.send_response_headers({":status": "abc"}, end_of_stream=True)
    assert any("removed the required response header" in lint for lint in stream.lints)  # the emulator's 502...
    assert check_stream(stream) == []  # ...is not blamed on the filter


def test_removing_another_pseudo_header(proxy_wasm_engine):
    h = Harness(proxy_wasm_engine)
    stream = open_stream(h, request={**GET, ":scheme": "https"})
    stream.request.received_headers = stream.request.headers.copy()
    ptr, size = h.put(":scheme")
    assert h.call("proxy_remove_header_map_value", MapType.HTTP_REQUEST_HEADERS, ptr, size, context_id=stream.context_id) == 0
    stream._forward_headers(stream.request)
    (v,) = check_stream(stream, invariants=["removed_pseudo_header"])
    assert "removed the request pseudo-header(s) :scheme" in v.message


def test_headers_changed_after_they_were_sent(proxy_wasm_engine):
    # Envoy closes the map when headers continue, so a filter reaches this only through a stale
    # map; the emulator lints the write, and the invariant reports the lint.
    h = Harness(proxy_wasm_engine)
    stream = open_stream(h, response={":status": "200"})
    stream.response.headers_sent = True
    key, klen = h.put("x-late")
    value, vlen = h.put("1")
    h.call("proxy_replace_header_map_value", MapType.HTTP_RESPONSE_HEADERS, key, klen, value, vlen, context_id=stream.context_id)
    (v,) = check_stream(stream)
    assert v.invariant == "headers_after_sent"
    assert "response headers changed after they were sent" in v.message


def test_host_call_from_a_forbidden_phase(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("restricted_at_start"))
    run = RunView(host, start_error=info.value)
    violations = check(run, resolve_invariants(), "end")
    assert names(violations) == {"restricted_host_call"}  # not reported twice as a trap
    assert "proxy_set_tick_period_milliseconds called during _initialize" in violations[0].message


def test_continue_on_a_stream_that_is_not_paused(pitfalls):
    stream = pitfalls.http_exchange({**GET, "x-continue-twice": "1"})
    (v,) = check_stream(stream)
    assert v.invariant == "continue_not_paused"
    assert "continue_stream(REQUEST) on a request that is not paused" in v.message


def test_contexts_never_deleted(proxy_wasm_engine, tmp_path):
    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(compile_wat(NEVER_DONE, tmp_path, "never_done"))
    stream = plugin.http_exchange(GET)
    (v,) = check_host(host, [stream])
    assert v.invariant == "contexts_not_deleted"
    assert v.message == "root context 1 (root_id '') was never deleted (proxy_on_done returned false and the filter never called proxy_done)"


def test_a_root_that_calls_proxy_done_later_is_fine(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    host.load(wat_module("root_done"))
    assert check_host(host) == []  # it calls proxy_done from its next tick, within the grace period


def test_memory_that_keeps_growing(proxy_wasm_engine, tmp_path):
    plugin = Host(engine=proxy_wasm_engine).load(compile_wat(LEAK_EVERY_REQUEST, tmp_path, "leak"))
    run = RunView(plugin.host, [plugin], repeat=lambda: plugin.http_exchange(GET))
    (message,) = memory_growth(run, repeats=16)
    assert "keeps growing over identical traffic" in message and "about 16384 bytes per replay" in message


@pytest.mark.parametrize("fixture", ["rust/headers_rust.wasm", "go/headers_go.wasm", "c/headers_c.wasm"])
def test_memory_of_sdk_filters_settles(proxy_wasm_engine, fixture):
    plugin = Host(engine=proxy_wasm_engine, trace=False).load(FIXTURES / fixture)
    request = Request({**GET, ":method": "POST", "x-body-mode": "append"}, body="hello world", chunks=3)
    run = RunView(plugin.host, [plugin], repeat=lambda: plugin.http_exchange(request, Response({":status": "200"}, body="ok")))
    assert memory_growth(run, repeats=48) == []


def test_a_replay_that_traps_is_reported(proxy_wasm_engine):
    plugin = Host(engine=proxy_wasm_engine).load(wat_module("pitfalls"))
    run = RunView(plugin.host, [plugin], repeat=lambda: plugin.http_exchange({**GET, "x-trap": "1"}))
    (message,) = memory_growth(run, repeats=4, warmup=1)
    assert "trapped when the same traffic was replayed" in message


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(pst.exchanges())
def test_a_well_behaved_filter_keeps_quiet(exchange):
    host = Host(trace=False)
    plugin = host.load(RUST)
    stream = plugin.http_exchange(exchange.request, exchange.response)
    assert check_host(host, [stream]) == []


def test_every_builtin_has_a_test_here():
    tested = {"trap", "local_reply_then_continue", "removed_pseudo_header", "headers_after_sent", "restricted_host_call"}
    tested |= {"continue_not_paused", "contexts_not_deleted", "memory_growth"}
    assert {i.name for i in BUILTIN_INVARIANTS} == tested


# -- user invariants -------------------------------------------------------------------------------


def test_user_invariants_by_function_by_stream_and_registered(proxy_wasm_engine):
    @stream_invariant
    def no_denials(stream):
        if stream.local_response is not None and stream.local_response.status == 403:
            return f"denied with {stream.local_response.body!r}"
        return None

    plugin = Host(engine=proxy_wasm_engine).load(RUST)
    stream = plugin.http_exchange({**GET, "x-deny": "1"})
    (v,) = check_stream(stream, invariants=[no_denials])
    assert (v.invariant, v.message) == ("no_denials", "stream 1: denied with b'denied'")

    register_invariant(no_denials, name="no_denials")
    try:
        assert "no_denials" in {i.name for i in registered_invariants()}
        assert "no_denials" in {i.name for i in resolve_invariants()}
        assert names(check_stream(stream)) == {"no_denials"}
    finally:
        unregister_invariant("no_denials")
    assert check_stream(stream) == []


def test_invariant_lists_resolve_names_and_refuse_unknown_ones():
    assert [i.name for i in resolve_invariants(["trap", "trap", "memory_growth"])] == ["trap", "memory_growth"]
    assert "trap" not in {i.name for i in resolve_invariants(exclude=["trap"])}
    with pytest.raises(ValueError, match="unknown invariant 'nope'"):
        resolve_invariants(["nope"])
    with pytest.raises(ValueError, match="when must be one of"):
        Invariant("x", lambda run: [], when="later")
