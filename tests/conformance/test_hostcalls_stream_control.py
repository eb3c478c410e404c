"""Local replies, continue, close and the route cache: each call's statuses (abi-spec.md §1.7)."""

from __future__ import annotations

import pytest

from abi import Status, encode_pairs
from emulator.http.headers import HeaderMap
from tests.hostcall_harness import Harness, open_stream

REQ = [(":method", "GET"), (":path", "/"), (":authority", "a")]


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine)


def reply(h, ctx, status=403, details="not allowed here", body="no", headers=(("X-Why", "policy"),), grpc=0xFFFFFFFF):
    return h.call("proxy_send_local_response", status, *h.put(details), *h.put(body), *h.put(encode_pairs(list(headers))), grpc, context_id=ctx)


def test_local_response_is_captured_and_sent_after_the_call(h):
    s = open_stream(h, request=REQ)
    assert reply(h, s.context_id) == Status.Ok
    assert s.local_response is None and s.pending_local is not None  # deferred until the VM call returns
    assert reply(h, s.context_id, status=500, body="second") == Status.Ok  # the first prepared reply wins
    h.host.drain()
    lr = s.local_response
    assert (lr.status, lr.body, lr.details, lr.grpc_status) == (403, b"no", "not_allowed_here", None)
    assert lr.headers == [(b"x-why", b"policy")]
    assert s.downstream_response.header(":status") == b"403" and s.completed
    assert any("first prepared reply wins" in n for n in s.notes)


def test_local_response_grpc_status_and_empty_body(h):
    s = open_stream(h, request=REQ)
    assert reply(h, s.context_id, body="", headers=(("content-type", "x/y"), ("content-length", "9")), grpc=7) == Status.Ok
    h.host.drain()
    assert s.local_response.grpc_status == 7
    out = s.downstream_response
    assert out.header("content-type") is None and out.header("content-length") is None  # empty body removes them


def test_local_response_outside_a_stream_is_a_no_op(h):
    assert reply(h, None) == Status.Ok
    assert any("no-op" in n for n in h.vm.notes)


def test_local_response_bad_pointers(h):
    s = open_stream(h, request=REQ)
    assert h.call("proxy_send_local_response", 403, 2**31, 5, 0, 0, 0, 0, 0, context_id=s.context_id) == Status.InvalidMemoryAccess


def test_continue_stream_statuses(h):
    s = open_stream(h, request=REQ)
    assert h.call("proxy_continue_stream", 4, context_id=s.context_id) == Status.BadArgument
    assert h.call("proxy_continue_stream", 3, context_id=s.context_id) == Status.Unimplemented
    assert h.call("proxy_continue_stream", 2, context_id=s.context_id) == Status.Ok
    assert h.call("proxy_continue_stream", 0) == Status.Ok  # root context: nothing to continue


def test_continue_stream_resumes_a_held_request(h):
    s = open_stream(h, request=REQ)
    s.request.received_headers = HeaderMap(REQ, kind="request")
    s.request.headers_held = "all"
    s.request.ended = True
    assert h.call("proxy_continue_stream", 0, context_id=s.context_id) == Status.Ok
    assert s.request.headers_open is False  # request-side pointers are cleared at once
    assert s.upstream_request.headers is None  # the resume itself runs after the VM call
    h.host.drain()
    assert s.upstream_request.headers == [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a")]
    assert s.upstream_request.end_stream


def test_abi_0_1_0_continue_request_and_response(proxy_wasm_engine):
    h = Harness(proxy_wasm_engine, module="hostcalls_abi010")
    s = open_stream(h, request=REQ)
    s.request.received_headers = HeaderMap(REQ, kind="request")
    s.request.headers_held = "all"
    assert h.call("proxy_continue_request", context_id=s.context_id) == Status.Ok
    h.host.drain()
    assert s.upstream_request.headers is not None
    assert h.call("proxy_continue_response", context_id=s.context_id) == Status.Ok
    h.host.drain()
    assert any("not paused" in lint for lint in s.lints)


def test_close_stream(h):
    s = open_stream(h, request=REQ)
    assert h.call("proxy_close_stream", 9, context_id=s.context_id) == Status.BadArgument
    assert h.call("proxy_close_stream", 0, context_id=s.context_id) == Status.Ok
    assert not s.completed
    h.host.drain()
    assert s.completed and s.reset_reason == "wasm_close_stream" and s.downstream_response.reset
    assert h.call("proxy_close_stream", 0) == Status.Ok  # root: nothing to close


def test_clear_route_cache(proxy_wasm_engine):
    h = Harness(proxy_wasm_engine, module="hostcalls_abi010")
    s = open_stream(h, request=REQ)
    assert h.call("proxy_clear_route_cache", context_id=s.context_id) == Status.Ok
    assert s.route_cache_cleared == 1
    assert h.call("proxy_clear_route_cache") == Status.Ok
