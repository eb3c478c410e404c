"""Envoy's filter-manager rules and pitfalls, shown precisely with hand-written modules (abi-spec.md §3.8, §5.3, §5.9)."""

from __future__ import annotations

import pytest

from abi import FilterHeadersStatus
from emulator import Host
from emulator.http.stream import StreamStateError
from emulator.http.types import Request, Response
from tests.conftest import FIXTURES, wat_module

REQ = {":method": "GET", ":path": "/", ":authority": "a.example"}


def load(engine, module="pitfalls", **kw):
    return Host(engine=engine).load(wat_module(module), **kw)


def test_local_reply_then_continue_is_coerced_and_reported(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_exchange(Request({**REQ, "x-local-continue": "1"}), Response({":status": "200"}))
    assert s.callbacks[1].raw == 0 and s.callbacks[1].action == "StopAllIterationAndWatermark"
    assert any("send_local_response followed by Continue" in lint for lint in s.lints)
    assert s.upstream_request.headers is None
    assert s.downstream_response.header(":status") == b"403" and bytes(s.downstream_response.body) == b"nope"


def test_removing_status_gives_envoys_502(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_exchange(Request(REQ), Response({":status": "200", "x-remove-status": "1"}, body="lost"))
    assert s.downstream_response.header(":status") == b"502"
    assert bytes(s.downstream_response.body) == b"missing required header: :status"
    assert s.local_response.details == "filter_removed_required_response_headers{missing_required_header:_:status}"
    assert any("removed the required response header :status" in lint for lint in s.lints)


def test_stop_iteration_from_headers_without_the_knob(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_stream()
    status = s.send_request_headers({**REQ, "x-stop": "1"})
    assert status == FilterHeadersStatus.StopAllIterationAndWatermark
    assert any("allow_on_headers_stop_iteration" in lint for lint in s.lints)
    s.send_request_body("data", end_of_stream=True)
    assert "body" not in [r.message for r in p.logs]  # StopAll: no body callbacks until continue
    assert s.upstream_request.headers is None


def test_stop_iteration_with_the_knob_keeps_body_callbacks_flowing(proxy_wasm_engine):
    p = load(proxy_wasm_engine, allow_on_headers_stop_iteration=True)
    s = p.http_stream()
    assert s.send_request_headers({**REQ, "x-stop": "1"}) == FilterHeadersStatus.StopIteration
    assert s.upstream_request.headers is None
    s.send_request_body("data", end_of_stream=True)
    assert "body" in [r.message for r in p.logs]
    # Continue from the body releases the held headers together with the body
    assert s.upstream_request.headers is not None and bytes(s.upstream_request.body) == b"data"
    assert s.upstream_request.end_stream


def test_continue_on_a_stream_that_is_not_paused_is_ignored_and_reported(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_exchange(Request({**REQ, "x-continue-twice": "1"}), Response({":status": "200"}))
    assert s.upstream_request.headers is not None and s.downstream_response.header(":status") == b"200"
    assert any("not paused" in lint for lint in s.lints)


def test_request_headers_are_unavailable_after_they_continue(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_stream()
    s.send_request_headers(REQ)
    assert s.request.headers_open is False
    assert s.header_map(0, write=False) is None


def test_fail_closed_gives_503_and_later_streams_never_enter_the_vm(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_exchange(Request({**REQ, "x-trap": "1"}), Response({":status": "200"}))
    assert s.error is not None and s.error.callback == "proxy_on_request_headers"
    assert "trap_here" in str(s.error) or "<func" in str(s.error)
    out = s.downstream_response
    assert out.header(":status") == b"503" and out.body == b"" and out.header("content-type") is None
    assert s.local_response.details == "wasm_fail_stream" and s.local_response.grpc_status == 14
    assert [n for n, _ in s.actions] == ["proxy_on_context_create", "proxy_on_request_headers"]  # no on_log after a trap
    later = p.http_exchange(Request(REQ), Response({":status": "200"}))
    assert later.downstream_response.header(":status") == b"503" and later.callbacks == []
    assert any("wasm trap in proxy_on_request_headers" in r.message for r in p.host.logs)


def test_fail_open_passes_traffic_through(proxy_wasm_engine):
    p = load(proxy_wasm_engine, fail_policy="FAIL_OPEN")
    s = p.http_exchange(Request({**REQ, "x-trap": "1"}, body="b"), Response({":status": "201"}))
    assert s.upstream_request.header(":path") == b"/" and bytes(s.upstream_request.body) == b"b"
    assert s.downstream_response.header(":status") == b"201"
    later = p.http_exchange(Request(REQ), Response({":status": "200"}))
    assert later.callbacks == [] and later.downstream_response.header(":status") == b"200"


def test_fail_reload_gives_a_fresh_vm_after_the_backoff(proxy_wasm_engine):
    p = load(proxy_wasm_engine, fail_policy="FAIL_RELOAD")
    first_vm = p.vm
    p.http_exchange(Request({**REQ, "x-trap": "1"}))
    during_backoff = p.http_exchange(Request(REQ), Response({":status": "200"}))
    assert during_backoff.downstream_response.header(":status") == b"503"
    p.host.advance(1000)
    after = p.http_exchange(Request(REQ), Response({":status": "200"}))
    assert p.vm is not first_vm and p.reloads == 1
    assert after.downstream_response.header(":status") == b"200" and after.error is None


def test_response_before_the_request_left_is_a_clear_error(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_stream()
    s.send_request_headers({**REQ, "x-stop": "1"})
    with pytest.raises(StreamStateError, match="has not received the request headers"):
        s.send_response_headers({":status": "200"})


# on_request_headers removes :method (proxy_remove_header_map_value(HTTP_REQUEST_HEADERS, ":method")).
REMOVE_METHOD = """
(module
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) ":method")
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $remove (i32.const 0) (i32.const 16) (i32.const 7)))
    (i32.const 0))
)
"""


def test_removing_a_required_request_header_gives_the_routers_503(proxy_wasm_engine):
    import wasmtime

    p = Host(engine=proxy_wasm_engine).load(bytes(wasmtime.wat2wasm(REMOVE_METHOD)))
    s = p.http_stream()
    s.send_request_headers(REQ)
    assert s.downstream_response.header(":status") == b"503"
    assert s.local_response.details == "filter_removed_required_request_headers{missing_required_header:_:method}"
    assert any("the filter removed the required request header :method" in lint for lint in s.lints)


def test_grpc_local_reply_is_trailers_only(proxy_wasm_engine):
    p = Host(engine=proxy_wasm_engine).load(FIXTURES / "rust/headers_rust.wasm")
    s = p.http_exchange(Request({**REQ, ":method": "POST", "content-type": "application/grpc", "x-deny": "1"}))
    out = s.downstream_response
    assert out.header(":status") == b"200" and out.header("content-type") == b"application/grpc"
    assert out.header("grpc-status") == b"7"  # 403 maps to PERMISSION_DENIED
    assert out.header("grpc-message") == b"denied" and out.body == b""


def test_buffer_limit_gives_413(proxy_wasm_engine):
    p = Host(engine=proxy_wasm_engine).load(FIXTURES / "rust/headers_rust.wasm")
    s = p.http_stream(buffer_limit=10)
    s.send_request_headers({**REQ, ":method": "POST", "x-body-mode": "append"})
    s.send_request_body("0123456789ABC")
    assert s.downstream_response.header(":status") == b"413"
    assert any("buffer limit" in lint for lint in s.lints)


@pytest.mark.parametrize(
    ("raw", "action"),
    [(2, "ContinueAndEndStream"), (3, "StopAllIterationAndBuffer"), (4, "StopAllIterationAndWatermark"), (7, "StopAllIterationAndWatermark")],
)
def test_richer_headers_statuses_from_cpp_and_as_filters(proxy_wasm_engine, raw, action):
    p = load(proxy_wasm_engine)
    s = p.http_stream()
    s.send_request_headers({**REQ, "x-headers-status": str(raw)})
    assert s.callbacks[-1].action == action
    assert (s.upstream_request.headers is not None) == (raw == 2)  # ContinueAndEndStream continues


def test_watermark_accumulates_like_buffer(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_stream()
    s.send_request_headers({**REQ, ":method": "POST", "x-body-status": "2"})
    s.send_request_body("ab")
    s.send_request_body("cd")
    assert [c.args[1] for c in s.callbacks if c.name == "proxy_on_request_body"] == [2, 4]  # cumulative sizes
    assert s.upstream_request.body == b""
    s.continue_side("request")
    p.host.drain()
    assert bytes(s.upstream_request.body) == b"abcd"  # released, not re-delivered to the filter
    assert [c.name for c in s.callbacks].count("proxy_on_request_body") == 2


def test_no_buffer_drops_the_chunk(proxy_wasm_engine):
    p = load(proxy_wasm_engine)
    s = p.http_stream()
    s.send_request_headers({**REQ, ":method": "POST", "x-body-status": "3"})
    s.send_request_body("ab")
    s.send_request_body("cd", end_of_stream=True)
    assert [c.args[1] for c in s.callbacks if c.name == "proxy_on_request_body"] == [2, 2]  # not cumulative
    assert s.upstream_request.body == b""
    assert any("StopIterationNoBuffer" in n for n in s.notes)


def test_step_results_compare_equal_to_their_names(proxy_wasm_engine):
    from emulator import FilterHeadersStatus, Host

    plugin = Host(engine=proxy_wasm_engine).load(FIXTURES / "rust/headers_rust.wasm")
    stream = plugin.http_stream()
    status = stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "a"}, end_of_stream=True)
    assert status == "Continue" and status != "StopIteration" and status == FilterHeadersStatus.Continue and status == 0
    denied = plugin.http_stream().send_request_headers({":method": "GET", ":path": "/", ":authority": "a", "x-deny": "1"})
    assert denied == "StopAllIterationAndWatermark" and denied != "Continue"  # a 0.2 Pause, as Envoy converts it
