"""Behaviours checked line by line against Envoy's wasm context (issue: fidelity on real modules).

Each test names the Envoy or cpp-host source it follows.
"""

from __future__ import annotations

import pytest

from abi import MapType, Status, StreamType, encode_pairs, encode_path
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness, open_stream

REQ = [(":method", "GET"), (":path", "/"), (":authority", "a")]
RESP = [(":status", "200")]


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine)


def prop(h, path, ctx=None):
    """``proxy_get_property(path)`` in context ``ctx`` (default: the root): ``(status, value)``."""
    status = h.call("proxy_get_property", *h.put(encode_path(path)), RET_PTR, RET_LEN, context_id=ctx)
    return status, h.returned() if status == Status.Ok else None


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


def test_node_is_only_xds_node(h):
    # source/extensions/filters/common/expr/evaluator.cc ACTIVATION_TOKENS has no `node` (Request,
    # Response, Connection, Upstream, Source, Destination, Metadata, FilterState, XDS,
    # UpstreamFilterState), and Envoy's wasm PROPERTY_TOKENS (context.cc) are only plugin_name,
    # plugin_root_id, plugin_vm_id and connection_id since the top-level Wasm attributes were removed
    # (envoy PR #36619); the node is XDSWrapper's `node` (xds.node).
    s = open_stream(h, request=REQ)
    for ctx in (None, s.context_id):
        assert prop(h, ["xds", "node", "id"], ctx) == (Status.Ok, b"emulator-node")
        assert prop(h, ["node", "id"], ctx)[0] == Status.NotFound
        assert prop(h, ["node"], ctx)[0] == Status.NotFound


def test_the_host_node_is_served_at_xds_node(proxy_wasm_engine):
    # context.cc Context::findValue sets local_info_ from the plugin's LocalInfo (root_local_info_)
    # and delegates to StreamActivation::FindValue, whose XDSWrapper answers `node` with
    # CelProtoWrapper::CreateMessage(&local_info_->node()): the Node message, walked field by field
    # (Context::getProperty), its Struct metadata unwrapped to a map of google.protobuf.Value
    # (numbers are doubles); the whole message is serialized (serializeValue kMessage).
    import struct

    from emulator import Node

    node = Node(id="sidecar~10.0.0.1", cluster="shop", metadata={"zone": "eu-1", "replicas": 3, "labels": {"app": "cart"}})
    h = Harness(proxy_wasm_engine, node=node)
    s = open_stream(h, request=REQ)
    for ctx in (None, s.context_id):  # the root context too: xds needs no stream info
        assert prop(h, ["xds", "node", "id"], ctx) == (Status.Ok, b"sidecar~10.0.0.1")
        assert prop(h, ["xds", "node", "cluster"], ctx) == (Status.Ok, b"shop")
        assert prop(h, ["xds", "node", "metadata", "zone"], ctx) == (Status.Ok, b"eu-1")
        assert prop(h, ["xds", "node", "metadata", "replicas"], ctx) == (Status.Ok, struct.pack("<d", 3.0))
        assert prop(h, ["xds", "node", "metadata", "labels", "app"], ctx) == (Status.Ok, b"cart")
        assert prop(h, ["xds", "node", "metadata", "absent"], ctx)[0] == Status.NotFound
        assert prop(h, ["xds", "node"], ctx) == (Status.Ok, node.serialized())
    assert node.serialized().startswith(b"\x0a\x10sidecar~10.0.0.1\x12\x04shop\x1a")  # Node fields 1, 2, 3


def test_set_property_is_filter_state_under_the_wasm_prefix(h):
    # source/extensions/common/wasm/context.cc: Context::setProperty stores a CelState under
    # absl::StrAppend(&key, CelStateKeyPrefix, path) with CelStateKeyPrefix = "wasm."; Context::findValue
    # reads a name that is no attribute from filterState() at absl::StrCat(CelStateKeyPrefix, name);
    # CEL's filter_state map (FilterStateWrapper) is keyed by the full filter-state key.
    s = open_stream(h, request=REQ)

    def set_property(path, value):
        return h.call("proxy_set_property", *h.put(encode_path(path)), *h.put(value), context_id=s.context_id)

    assert set_property(["wasm_request_set_key"], b"v1") == Status.Ok
    assert s.filter_state == {b"wasm.wasm_request_set_key": b"v1"}
    assert prop(h, ["wasm_request_set_key"], s.context_id) == (Status.Ok, b"v1")
    assert prop(h, ["filter_state", "wasm.wasm_request_set_key"], s.context_id) == (Status.Ok, b"v1")
    assert prop(h, ["filter_state", "wasm_request_set_key"], s.context_id)[0] == Status.NotFound
    assert prop(h, ["wasm_request_set_key", "field"], s.context_id)[0] == Status.NotFound  # bytes have no fields
    # an attribute name is answered by Envoy first: the filter state under it is never read
    assert set_property(["request"], b"shadowed") == Status.Ok
    assert prop(h, ["request"], s.context_id)[0] == Status.SerializationFailure
    # a multi-segment path is stored under its raw bytes, which get_property never looks up
    assert set_property(["a", "b"], b"v2") == Status.Ok
    assert s.filter_state[b"wasm.a\0b"] == b"v2"
    assert prop(h, ["a", "b"], s.context_id)[0] == Status.NotFound
    assert any("cannot read back" in n for n in s.notes)
    # no stream, no filter state: Context::setProperty answers NotFound in a root context
    assert h.call("proxy_set_property", *h.put(encode_path(["k"])), *h.put(b"v")) == Status.NotFound


# on_request_headers continues, on_response_headers returns 3 (StopAllIterationAndBuffer).
RESPONSE_STOP_ALL_BUFFER = """
(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 3))
)
"""


@pytest.mark.parametrize(("stop", "code"), [(3, 413), (4, None)])
def test_a_body_held_behind_stop_all_and_buffer_is_limited_like_body_buffering(proxy_wasm_engine, stop, code):
    # source/common/http/filter_manager.cc: FilterManager::handleDataIfStopAll buffers the data behind
    # a filter that stopped all iteration, streaming only for IterationState::StopAllWatermark;
    # past the buffer limit ActiveStreamDecoderFilter::requestDataTooLarge sends
    # Code::PayloadTooLarge (details request_payload_too_large) unless streaming, when it applies
    # back-pressure (onDecoderFilterAboveWriteBufferHighWatermark).
    from emulator import Host
    from tests.conftest import wat_module

    plugin = Host(engine=proxy_wasm_engine).load(wat_module("pitfalls"))
    s = plugin.http_stream(buffer_limit=1024)
    s.send_request_headers({**dict(REQ), ":method": "POST", "x-headers-status": str(stop)})
    s.send_request_body(b"x" * 1000)
    assert s.local_response is None
    s.send_request_body(b"x" * 1000)
    assert s.response_code() == code
    if code is None:
        assert any("back-pressure" in n for n in s.notes) and not s.completed
    else:
        assert s.local_response.details == "request_payload_too_large"
        assert s.upstream_request.headers is None  # the held headers never left
        assert any("exceeds the buffer limit" in lint for lint in s.lints)


def test_a_response_body_held_behind_stop_all_and_buffer_past_the_limit_is_a_500(proxy_wasm_engine):
    # filter_manager.cc ActiveStreamEncoderFilter::responseDataTooLarge: not streaming ->
    # sendLocalReply(Http::Code::InternalServerError, ..., ResponsePayloadTooLarge); the response
    # headers have not gone downstream, so the reply replaces them.
    import wasmtime

    from emulator import Host

    plugin = Host(engine=proxy_wasm_engine).load(bytes(wasmtime.wat2wasm(RESPONSE_STOP_ALL_BUFFER)))
    s = plugin.http_stream(buffer_limit=1024)
    s.send_request_headers(dict(REQ), end_of_stream=True)
    s.send_response_headers(dict(RESP))
    s.send_response_body(b"y" * 2000)
    assert s.response_code() == 500 and s.local_response.details == "response_payload_too_large"
    assert s.downstream_response.header(":status") == b"500" and s.completed


def test_input_without_method_or_path_is_warned_about_once_and_run_as_given(proxy_wasm_engine):
    # source/common/http/conn_manager_impl.cc ActiveStream::decodeHeaders: "Verify header sanity
    # checks which should have been performed by the codec" (requestHeadersValid: :method), then
    # sendLocalReply(Code::NotFound, ..., ResponseCodeDetails::MissingPath) for a request without
    # :path -- all before the filter chain, so no filter ever sees such a request. The router's 503
    # (filter_removed_required_request_headers) is for headers a filter removed.
    from emulator import Host, InputWarning, Request
    from tests.conftest import wat_module

    plugin = Host(engine=proxy_wasm_engine).load(wat_module("headers_wat"), root_id="headers")
    with pytest.warns(InputWarning, match=r"no :method and :path: Envoy never delivers .*ActiveStream::decodeHeaders") as caught:
        first = plugin.http_exchange({":authority": "a", "x-in": "1"}, RESP)
        second = plugin.http_exchange({":authority": "a"}, RESP)
    assert len(caught) == 1  # said once
    for s in (first, second):
        assert s.local_response is None and not s.lints and s.response_code() == 200
        assert s.upstream_request.header(":method") is None and s.upstream_request.header(":path") is None  # nothing filled in
        assert any("Request.minimal()" in n for n in s.notes)
    assert first.upstream_request.header("x-in") == b"1"
    good = plugin.http_exchange(Request.minimal("/items", headers={"x-in": "2"}), RESP)
    assert [k for k, _ in good.upstream_request.headers][:3] == [b":method", b":path", b":authority"]
    assert not any("Request.minimal()" in n for n in good.notes)


# Like the 2020 Istio Emscripten builds: _start calls env.pthread_equal (its libc's pthread_once), then logs.
LEGACY_START = """
(module
  (import "env" "pthread_equal" (func $pthread_equal (param i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "started")
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_abi_version_0_2_0"))
  (func (export "_start")
    (if (call $pthread_equal (i32.const 7) (i32.const 7))
      (then (drop (call $log (i32.const 2) (i32.const 16) (i32.const 7))))))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
)
"""


def test_a_2020_module_calling_restricted_host_functions_from_start_runs_only_on_request(proxy_wasm_engine, tmp_path, capsys):
    # cpp-host src/wasm.cc WasmBase::startVm: wasm_vm_->setRestrictedCallback(true, {...}) around
    # _initialize/_start allows logging and WASI calls only; any other import traps
    # ("restricted_callback", src/v8/v8.cc). Added by proxy-wasm-cpp-host#306 (2022): the Envoy of
    # 2020 ran such _start code, which restricted_start=False / --legacy-start reproduces.
    import wasmtime

    from emulator import Host, PluginStartError, RestrictedHostCall
    from emulator.cli import main

    wasm = bytes(wasmtime.wat2wasm(LEGACY_START))
    with pytest.raises(PluginStartError) as info:
        Host(engine=proxy_wasm_engine).load(wasm)
    assert info.value.phase == "_start" and isinstance(info.value.cause.cause, RestrictedHostCall)
    assert "pthread_equal called during _start" in str(info.value)
    assert "Host(restricted_start=False)" in str(info.value) and "--legacy-start" in str(info.value)

    plugin = Host(engine=proxy_wasm_engine, restricted_start=False).load(wasm)
    assert plugin.started and "started" in [r.message for r in plugin.logs]

    path = tmp_path / "legacy.wasm"
    path.write_bytes(wasm)
    assert main(["run", str(path), "--engine", proxy_wasm_engine]) == 3  # the plugin does not start
    assert "--legacy-start" in capsys.readouterr().err
    assert main(["run", str(path), "--engine", proxy_wasm_engine, "--legacy-start"]) == 0
    assert "[info] started" in capsys.readouterr().out
