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
