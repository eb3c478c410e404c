"""HTTP and gRPC callouts: statuses, tokens, delivery, failures and timeouts (abi-spec.md §1.8, §5.5)."""

from __future__ import annotations

import pytest

from abi import GrpcStatus, Status, encode_pairs
from emulator import Host
from emulator.callouts import CalloutStateError
from tests.conftest import wat_module
from tests.hostcall_harness import Harness, open_stream

HDRS = encode_pairs([(":method", "GET"), (":path", "/x"), (":authority", "svc")])
REQ = {":method": "GET", ":path": "/", ":authority": "a"}


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine)


def http_call(h, cluster="svc", headers=HDRS, body=b"", trailers=b"", timeout=100, ctx=None):
    return h.call("proxy_http_call", *h.put(cluster), *h.put(headers), *h.put(body), *h.put(trailers), timeout, 16, context_id=ctx)


def test_http_call_tokens_and_record(h):
    assert http_call(h, body=b"payload", trailers=encode_pairs([("t", "1")])) == Status.Ok
    assert h.mem.u32(16) == 4
    assert http_call(h) == Status.Ok and h.mem.u32(16) == 8
    first = h.host.http_calls.calls[0]
    assert (first.cluster, first.body, first.timeout_ms, first.deadline_ms) == ("svc", b"payload", 100, 100)
    assert first.header("content-length") == b"7"  # a non-empty body sets content-length
    assert first.trailers == [(b"t", b"1")]
    assert first.context_id == h.plugin.root_context_id and first.pending


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"timeout": 1 << 31}, Status.BadArgument),
        ({"headers": encode_pairs([(":method", "GET"), (":path", "/")])}, Status.BadArgument),  # no :authority
        ({"headers": b"\x07garbage"}, Status.BadArgument),  # malformed pairs parse as empty
        ({"cluster": "unknown"}, Status.BadArgument),
    ],
)
def test_http_call_rejections_write_token_zero(h, kwargs, status):
    h.host.clusters = {"svc"}
    h.mem.put_u32(16, 99)
    assert http_call(h, **kwargs) == status
    assert h.mem.u32(16) == 0 and h.host.http_calls.calls == []


def test_host_header_counts_as_authority(h):
    assert http_call(h, headers=encode_pairs([(":method", "GET"), (":path", "/"), ("host", "svc")])) == Status.Ok


def test_bad_token_pointer(h):
    assert h.call("proxy_http_call", *h.put("svc"), *h.put(HDRS), 0, 0, 0, 0, 10, 2**31) == Status.InvalidMemoryAccess


@pytest.fixture
def client(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    return host, host.load(wat_module("callout_client"))


def messages(host):
    return [r.message for r in host.logs]


def test_a_paused_stream_resumes_from_the_callout_response(client):
    host, plugin = client
    s = plugin.http_stream()
    s.send_request_headers(REQ, end_of_stream=True)
    assert s.upstream_request.headers is None
    (call,) = host.http_calls.pending()
    assert call.stream is s and s.http_calls == [call]
    call.respond(200, {"x-reason": "ok"}, body="granted")
    assert messages(host)[-2:] == ["200", "granted"]  # maps 6 and buffer 4 readable in the callback
    assert s.upstream_request.headers is not None and s.upstream_request.end_stream
    with pytest.raises(CalloutStateError):
        call.respond(200)


def test_failure_is_zero_headers_and_status_reset(client):
    host, plugin = client
    s = plugin.http_stream()
    s.send_request_headers(REQ, end_of_stream=True)
    host.http_calls.pending()[0].fail()
    assert messages(host)[-2:] == ["failed", "reset"]
    assert plugin.status == (11, b"")  # Envoy clears the message after the call, never the code


def test_timeout_is_a_successful_504_when_the_clock_passes_it(client):
    host, plugin = client
    s = plugin.http_stream()
    s.send_request_headers(REQ, end_of_stream=True)
    host.advance(999)
    assert host.http_calls.pending()
    host.advance(1)
    assert not host.http_calls.pending() and host.http_calls.calls[0].state == "timed_out"
    assert messages(host)[-2:] == ["504", "upstream request timeout"]


def test_responders_answer_after_the_vm_call_and_keep_order(client):
    host, plugin = client
    host.http_calls.add_responder("auth", path="/check", method="GET", status=201, body="declared", times=1)
    first = plugin.http_stream()
    first.send_request_headers(REQ, end_of_stream=True)
    assert first.upstream_request.headers is not None  # answered right after on_request_headers
    assert messages(host)[-2:] == ["201", "declared"]
    second = plugin.http_stream()
    second.send_request_headers(REQ, end_of_stream=True)
    third = plugin.http_stream()
    third.send_request_headers(REQ, end_of_stream=True)
    pending = host.http_calls.pending()
    assert [c.stream for c in pending] == [second, third]
    pending[1].respond(200)  # the test chooses the order
    assert third.upstream_request.headers is not None and second.upstream_request.headers is None


def test_run_until_idle_fires_timeouts(client):
    host, plugin = client
    plugin.http_stream().send_request_headers(REQ, end_of_stream=True)
    assert host.run_until_idle() == 1000
    assert not host.http_calls.pending()


def test_grpc_unary_call_and_stream(client):
    host, plugin = client
    vm = plugin.vm
    assert vm.call("t_grpc_call", context_id=plugin.root_context_id) == 5
    assert vm.call("t_grpc_stream", context_id=plugin.root_context_id) == 6
    call, stream = host.grpc_calls.calls
    assert (call.cluster, call.service, call.method, call.message, call.initial_metadata) == ("authz", "auth.Authz", "Check", b"ping", [(b"x-token", b"t1")])
    call.respond(b"allow")
    assert messages(host)[-1] == "allow" and call.state == "answered"
    stream.send_initial_metadata({"k": "initial"})
    stream.send_message(b"m1")
    stream.send_trailing_metadata({"k": "trailing"})
    stream.close(GrpcStatus.NOT_FOUND, "no such thing")
    assert messages(host)[-5:] == ["initial", "m1", "trailing", "closed", "no such thing"]
    assert plugin.status == (5, b"")


def test_grpc_failure_and_timeout(client):
    host, plugin = client
    vm = plugin.vm
    vm.call("t_grpc_call", context_id=plugin.root_context_id)
    host.grpc_calls.calls[0].fail(GrpcStatus.UNAVAILABLE, "no backend")
    assert messages(host)[-2:] == ["closed", "no backend"]
    vm.call("t_grpc_call", context_id=plugin.root_context_id)
    host.advance(1000)
    assert host.grpc_calls.calls[1].state == "timed_out" and plugin.status[0] == GrpcStatus.DEADLINE_EXCEEDED


def test_grpc_statuses(h):
    assert h.call("proxy_grpc_call", *h.put("svc"), *h.put("s"), *h.put("m"), 0, 0, *h.put("msg"), 100, 16) == Status.Ok
    call_token = h.mem.u32(16)
    assert h.call("proxy_grpc_stream", *h.put("svc"), *h.put("s"), *h.put("m"), 0, 0, 16) == Status.Ok
    stream_token = h.mem.u32(16)
    assert (call_token, stream_token) == (5, 6)
    assert h.call("proxy_grpc_send", call_token, *h.put("x"), 0) == Status.BadArgument  # not a stream
    assert h.call("proxy_grpc_send", 10, *h.put("x"), 0) == Status.NotFound  # unknown stream
    assert h.call("proxy_grpc_send", stream_token, *h.put("x"), 1) == Status.Ok
    assert h.host.grpc_calls.calls[1].sent == [b"x"] and h.host.grpc_calls.calls[1].local_closed
    assert h.call("proxy_grpc_cancel", 8) == Status.BadArgument  # neither call nor stream
    assert h.call("proxy_grpc_cancel", 9) == Status.NotFound
    assert h.call("proxy_grpc_close", 12) == Status.BadArgument
    assert h.call("proxy_grpc_close", 13) == Status.NotFound
    assert h.call("proxy_grpc_close", call_token) == Status.Ok  # a call is cancelled
    assert h.call("proxy_grpc_cancel", call_token) == Status.NotFound
    assert h.call("proxy_grpc_cancel", stream_token) == Status.Ok
    h.host.clusters = {"svc"}
    assert h.call("proxy_grpc_call", *h.put("nope"), *h.put("s"), *h.put("m"), 0, 0, 0, 0, 100, 16) == Status.ParseFailure
    assert h.mem.u32(16) == 0


def test_grpc_service_proto_names_the_cluster(h):
    proto = b"\x0a\x07\x0a\x05authz"  # GrpcService{envoy_grpc{cluster_name: "authz"}}
    assert h.call("proxy_grpc_stream", *h.put(proto), *h.put("s"), *h.put("m"), 0, 0, 16) == Status.Ok
    assert h.host.grpc_calls.calls[0].cluster == "authz"


def test_calls_from_a_stream_belong_to_the_root(h):
    s = open_stream(h, request=[(":path", "/")])
    assert http_call(h, ctx=s.context_id) == Status.Ok
    call = h.host.http_calls.calls[0]
    assert call.plugin is h.plugin and call.stream is s and call.context_id == s.context_id


def test_get_status_in_callout_callbacks_reads_the_callouts_status(client):
    # callout_client.wat calls proxy_get_status from on_http_call_response and on_grpc_close
    host, plugin = client
    plugin.http_stream().send_request_headers(REQ, end_of_stream=True)
    host.http_calls.pending()[0].fail()
    plugin.vm.call("t_grpc_stream", context_id=plugin.root_context_id)
    host.grpc_calls.calls[-1].close(GrpcStatus.NOT_FOUND, "no such thing")
    seen = [(e.callback, e.status_name, e.results) for e in host.trace.calls("proxy_get_status")]
    assert seen == [
        ("proxy_on_http_call_response", "Ok", {"code": 11, "msg": "reset"}),  # a failed HTTP call: Reset
        ("proxy_on_grpc_close", "Ok", {"code": GrpcStatus.NOT_FOUND, "msg": "no such thing"}),
    ]
