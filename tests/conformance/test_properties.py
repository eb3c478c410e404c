"""Envoy attributes through proxy_get_property, phase by phase (abi-spec.md §7)."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from abi import Status, UInt64, decode_pairs, encode_path, encode_value
from emulator import DEFAULT_EPOCH_NS
from emulator.stream_info import ConnectionInfo
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness, open_stream

REQ = [
    (":authority", "shop.example"),
    (":path", "/cart/items?id=7&x=1#frag"),
    (":method", "POST"),
    (":scheme", "https"),
    ("user-agent", "curl/8"),
    ("x-request-id", "req-1"),
    ("x-multi", "a"),
    ("x-multi", "b"),
    ("content-length", "42"),
]


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine, host_properties={"request": {"custom": "mine"}, "xds": {"cluster_name": "overridden"}})


def prop(h, path, ctx=None):
    status = h.call("proxy_get_property", *h.put(encode_path(path.split("."))), RET_PTR, RET_LEN, context_id=ctx)
    return status, h.returned() if status == Status.Ok else None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("request.path", b"/cart/items?id=7&x=1#frag"),
        ("request.url_path", b"/cart/items"),
        ("request.query", b"id=7&x=1"),
        ("request.host", b"shop.example"),
        ("request.scheme", b"https"),
        ("request.method", b"POST"),
        ("request.useragent", b"curl/8"),
        ("request.id", b"req-1"),
        ("request.headers.x-multi", b"a,b"),
        ("request.protocol", b"HTTP/1.1"),
        ("request.size", struct.pack("<q", 42)),
        ("request.time", encode_value(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))),
        ("source.address", b"192.168.0.10:43210"),
        ("source.port", struct.pack("<q", 43210)),
        ("destination.port", struct.pack("<q", 8080)),
        ("connection.id", encode_value(UInt64(1))),
        ("connection.mtls", b"\x00"),
        ("connection_id", encode_value(UInt64(1))),
        ("xds.node.id", b"emulator-node"),
        ("xds.route_name", b"default"),
        ("request.custom", b"mine"),
        ("xds.cluster_name", b"overridden"),
    ],
)
def test_attributes_in_the_request_headers_phase(h, path, value):
    s = open_stream(h, request=REQ)
    s.request.received_headers = s.request.headers.copy()
    assert prop(h, path, s.context_id) == (Status.Ok, value)


def test_request_time_is_the_virtual_clock(h):
    h.host.advance(1500)
    s = open_stream(h, request=REQ)
    status, raw = prop(h, "request.time", s.context_id)
    assert status == Status.Ok and struct.unpack("<q", raw)[0] == DEFAULT_EPOCH_NS + 1_500_000_000


def test_header_attributes_vanish_after_the_headers_continue(h):
    s = open_stream(h, request=REQ)
    s.request.received_headers = s.request.headers.copy()
    s.request.headers_open = False
    assert prop(h, "request.path", s.context_id)[0] == Status.NotFound
    assert prop(h, "request.headers.x-multi", s.context_id)[0] == Status.NotFound
    assert prop(h, "request.headers", s.context_id) == (Status.Ok, b"\0\0\0\0")  # an empty map
    assert prop(h, "request.protocol", s.context_id)[0] == Status.Ok  # stream info stays


def test_whole_headers_map_and_wrappers(h):
    s = open_stream(h, request=REQ)
    status, raw = prop(h, "request.headers", s.context_id)
    assert status == Status.Ok and (b"x-multi", b"a,b") in decode_pairs(raw)
    assert prop(h, "response", s.context_id)[0] == Status.SerializationFailure
    assert prop(h, "source", s.context_id)[0] == Status.SerializationFailure


def test_tls_only_fields_and_upstream_after_forwarding(h):
    s = open_stream(h, request=REQ)
    assert prop(h, "connection.tls_version", s.context_id)[0] == Status.NotFound
    assert prop(h, "upstream.address", s.context_id)[0] == Status.NotFound
    s.request.headers_sent = True
    assert prop(h, "upstream.address", s.context_id) == (Status.Ok, b"10.0.0.3:80")
    tls = open_stream(h, request=REQ)
    tls.connection = ConnectionInfo(tls=True, mtls=True, tls_version="TLSv1.2")
    assert prop(h, "connection.tls_version", tls.context_id) == (Status.Ok, b"TLSv1.2")
    assert prop(h, "connection.mtls", tls.context_id) == (Status.Ok, b"\x01")


def test_response_attributes_once_known(h):
    s = open_stream(h, request=REQ)
    assert prop(h, "response.code", s.context_id)[0] == Status.NotFound
    from emulator.http.headers import HeaderMap

    s.response.received_headers = HeaderMap([(":status", "201"), ("grpc-status", "3")], kind="response")
    s.response.out.headers = s.response.received_headers.pairs()
    assert prop(h, "response.code", s.context_id) == (Status.Ok, struct.pack("<q", 201))
    assert prop(h, "response.code_details", s.context_id) == (Status.Ok, b"via_upstream")
    assert prop(h, "response.grpc_status", s.context_id) == (Status.Ok, struct.pack("<q", 3))


def test_root_context_sees_only_node_and_plugin(h):
    assert prop(h, "xds.node.cluster") == (Status.Ok, b"emulator-cluster")
    assert prop(h, "node.id")[0] == Status.NotFound  # no top-level `node` attribute: the node is xds.node
    assert prop(h, "request.protocol")[0] == Status.NotFound
    assert prop(h, "source.address")[0] == Status.NotFound


def test_set_property_then_read_it_back(h):
    s = open_stream(h, request=REQ)
    assert h.call("proxy_set_property", *h.put(encode_path(["my_key"])), *h.put(b"\x01value"), context_id=s.context_id) == Status.Ok
    assert prop(h, "my_key", s.context_id) == (Status.Ok, b"\x01value")
    status = h.call("proxy_get_property", *h.put(encode_path(["filter_state", "wasm.my_key"])), RET_PTR, RET_LEN, context_id=s.context_id)
    assert (status, h.returned()) == (Status.Ok, b"\x01value")  # CEL filter_state takes the full key
    assert prop(h, "filter_state.my_key", s.context_id)[0] == Status.NotFound
    other = open_stream(h, request=REQ)
    assert prop(h, "my_key", other.context_id)[0] == Status.NotFound  # filter state is per stream
