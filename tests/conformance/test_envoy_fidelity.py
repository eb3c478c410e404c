"""Behaviours checked line by line against Envoy's wasm context (issue: fidelity on real modules).

Each test names the Envoy or cpp-host source it follows.
"""

from __future__ import annotations

import pytest

from abi import MapType, Status, StreamType, encode_pairs
from tests.hostcall_harness import Harness, open_stream

REQ = [(":method", "GET"), (":path", "/"), (":authority", "a")]
RESP = [(":status", "200")]


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("proxy_add_header_map_value", ("x-a", "1")),
        ("proxy_replace_header_map_value", ("x-a", "1")),
        ("proxy_remove_header_map_value", (":path",)),
        ("proxy_set_header_map_pairs", (encode_pairs([(b":path", b"/b")]),)),
    ],
)
def test_changing_request_headers_clears_the_route_cache(h, call, args):
    # source/extensions/common/wasm/context.cc: addHeaderMapValue, replaceHeaderMapValue,
    # removeHeaderMapValue and setHeaderMapPairs end with onHeadersModified(type), which clears the
    # route cache for RequestHeaders (decoder_callbacks_->downstreamCallbacks()->clearRouteCache()).
    s = open_stream(h, request=REQ, response=RESP)
    ptrs = [p for a in args for p in h.put(a)]
    assert h.call(call, MapType.HTTP_REQUEST_HEADERS, *ptrs, context_id=s.context_id) == Status.Ok
    assert s.route_cache_cleared == 1
    assert h.call(call, MapType.HTTP_RESPONSE_HEADERS, *ptrs, context_id=s.context_id) == Status.Ok
    assert s.route_cache_cleared == 1  # response headers do not route


def test_a_refused_change_does_not_clear_the_route_cache(h):
    s = open_stream(h)  # request headers not open: the change is refused
    assert h.call("proxy_add_header_map_value", MapType.HTTP_REQUEST_HEADERS, *h.put("x"), *h.put("1"), context_id=s.context_id) == Status.BadArgument
    assert s.route_cache_cleared == 0


@pytest.mark.parametrize("stream_type", [StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE])
def test_close_stream_sets_response_code_details(h, stream_type):
    # context.cc Context::closeStream: "if (!streamInfo().responseCodeDetails().has_value())
    # setResponseCodeDetails(CloseStreamResponseDetails)" with CloseStreamResponseDetails = "wasm_close_stream",
    # then resetStream() after the VM call.
    s = open_stream(h, request=REQ)
    assert s.response_code_details() is None
    assert h.call("proxy_close_stream", stream_type, context_id=s.context_id) == Status.Ok
    h.host.drain()
    assert s.reset_reason == "wasm_close_stream"
    assert s.response_code_details() == "wasm_close_stream"


def test_pending_callouts_are_cancelled_when_their_root_context_goes_away(h):
    # context.cc Context::onDestroy / ~Context cancel every pending http_request_, grpc_call_request_
    # and grpc_stream_ (request_->cancel()); the calls belong to the root context (cpp-host
    # src/exports.cc http_call: contextOrEffectiveContext()->root_context()).
    hdrs = encode_pairs([(":method", "GET"), (":path", "/x"), (":authority", "svc")])
    s = open_stream(h, request=REQ)
    assert h.call("proxy_http_call", *h.put("svc"), *h.put(hdrs), 0, 0, 0, 0, 1000, 16, context_id=s.context_id) == Status.Ok
    assert h.call("proxy_grpc_call", *h.put("svc"), *h.put("s"), *h.put("m"), 0, 0, *h.put("msg"), 1000, 16) == Status.Ok
    assert h.call("proxy_grpc_stream", *h.put("svc"), *h.put("s"), *h.put("m"), 0, 0, 16) == Status.Ok
    calls = [*h.host.http_calls.calls, *h.host.grpc_calls.calls]
    assert len(calls) == 3 and all(c.pending for c in calls)
    h.host.shutdown()
    assert [c.state for c in calls] == ["cancelled"] * 3
    assert h.host.http_calls.pending() == [] and h.host.grpc_calls.pending() == []


@pytest.mark.parametrize(("policy", "expected"), [("FAIL_CLOSED", "StopAllIterationAndWatermark"), ("FAIL_OPEN", "Continue")])
def test_a_trap_in_request_headers_returns_what_envoys_filter_returns(proxy_wasm_engine, policy, expected):
    # cpp-host src/context.cc ContextBase::onRequestHeaders:
    # CHECK_FAIL_HTTP(FilterHeadersStatus::Continue, FilterHeadersStatus::StopAllIterationAndWatermark),
    # i.e. Continue when the plugin fails open, StopAllIterationAndWatermark (after failStream) when closed.
    from emulator import Host
    from tests.conftest import FIXTURES

    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(FIXTURES / "rust/headers_rust.wasm", fail_policy=policy)
    s = plugin.http_stream()
    status = s.send_request_headers({**dict(REQ), "x-trap": "1"}, end_of_stream=True)
    assert status is not None and status.name == expected
    assert s.error is not None
    if policy == "FAIL_CLOSED":
        assert s.response_code() == 503


# A filter without proxy_on_context_create that logs "delete <id>" from proxy_on_delete.
NO_CONTEXT_CREATE = """
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "delete ")
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param $id i32)
    (i32.store8 (i32.const 23) (i32.add (i32.const 48) (local.get $id)))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 8))))
)
"""


def test_contexts_of_a_module_without_on_context_create_still_get_on_delete(proxy_wasm_engine):
    # cpp-host src/context.cc ContextBase::onCreate and ContextBase::onConfigure set
    # in_vm_context_created_ = true whether or not proxy_on_context_create is exported ("NB: If no
    # on_context_create function is registered the in-VM SDK is responsible for managing any
    # required in-VM state"); ContextBase::onDelete then calls proxy_on_delete.
    import wasmtime

    from emulator import Host

    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(bytes(wasmtime.wat2wasm(NO_CONTEXT_CREATE)))
    s = plugin.http_exchange(REQ, RESP)
    tcp = plugin.tcp_connection()
    tcp.close()
    host.shutdown()
    assert [n for n, _ in s.actions][-1] == "proxy_on_delete"
    deleted = [r.message for r in plugin.logs if r.message.startswith("delete")]
    assert deleted == [f"delete {s.context_id}", f"delete {tcp.context_id}", f"delete {plugin.root_context_id}"]


def test_a_host_header_in_the_input_arrives_as_authority(proxy_wasm_engine):
    # source/common/http/header_map_impl.cc StaticLookupTable<RequestHeaderMap>: "Special case where
    # we map a legacy host header to :authority" -- the codec inserts `Host: x` into the :authority
    # inline slot (HeaderMapImpl::insertByKey), so no filter ever sees a `host` entry.
    from emulator import Host
    from tests.conftest import wat_module

    plugin = Host(engine=proxy_wasm_engine).load(wat_module("headers_wat"), root_id="headers")
    s = plugin.http_exchange({":method": "GET", ":path": "/", "Host": "shop.example", "x-read-property": "request.host"}, RESP)
    sent = s.upstream_request.headers
    assert (b":authority", b"shop.example") in sent and all(k != b"host" for k, _ in sent)
    assert s.upstream_request.header("x-property-value") == b"shop.example"  # CEL request.host reads :authority
    assert not s.lints and s.local_response is None
