"""Header, trailer and metadata maps: every call on every map type, success and error statuses (abi-spec.md §1.6)."""

from __future__ import annotations

import pytest

from abi import MapType, Status, decode_pairs, encode_pairs
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness, open_stream

REQ = [(":authority", "example.com"), (":path", "/p"), (":method", "GET"), ("x-a", "1"), ("x-a", "2"), ("user-agent", "ua")]


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine)


def get(h, ctx, map_type, key):
    status = h.call("proxy_get_header_map_value", map_type, *h.put(key), RET_PTR, RET_LEN, context_id=ctx)
    return status, h.returned() if status == Status.Ok else None


@pytest.mark.parametrize(
    "map_type", [MapType.HTTP_REQUEST_HEADERS, MapType.HTTP_RESPONSE_HEADERS, MapType.HTTP_REQUEST_TRAILERS, MapType.HTTP_RESPONSE_TRAILERS]
)
def test_every_call_on_every_writable_map(h, map_type):
    kw = {
        MapType.HTTP_REQUEST_HEADERS: "request",
        MapType.HTTP_RESPONSE_HEADERS: "response",
        MapType.HTTP_REQUEST_TRAILERS: "request_trailers",
        MapType.HTTP_RESPONSE_TRAILERS: "response_trailers",
    }[map_type]
    s = open_stream(h, **{kw: [("k", "v"), ("dup", "1"), ("dup", "2")]})
    ctx = s.context_id
    assert get(h, ctx, map_type, "K") == (Status.Ok, b"v")  # keys are lower-cased
    assert get(h, ctx, map_type, "dup") == (Status.Ok, b"1")  # first entry, not joined
    assert get(h, ctx, map_type, "nope") == (Status.NotFound, None)
    assert h.call("proxy_add_header_map_value", map_type, *h.put("New"), *h.put(b"\x00\xff"), context_id=ctx) == Status.Ok
    assert get(h, ctx, map_type, "new") == (Status.Ok, b"\x00\xff")  # binary-safe
    assert h.call("proxy_replace_header_map_value", map_type, *h.put("dup"), *h.put("3"), context_id=ctx) == Status.Ok
    assert h.call("proxy_remove_header_map_value", map_type, *h.put("k"), context_id=ctx) == Status.Ok
    assert h.call("proxy_remove_header_map_value", map_type, *h.put("absent"), context_id=ctx) == Status.Ok
    assert h.call("proxy_get_header_map_pairs", map_type, RET_PTR, RET_LEN, context_id=ctx) == Status.Ok
    assert decode_pairs(h.returned()) == [(b"new", b"\x00\xff"), (b"dup", b"3")]
    assert h.call("proxy_get_header_map_size", map_type, 16, context_id=ctx) == Status.Ok
    assert h.mem.u32(16) == len("new") + 2 + len("dup") + 1  # Envoy: byteSize, not the entry count
    assert h.call("proxy_set_header_map_pairs", map_type, *h.put(encode_pairs([("A", "x"), ("b", "y")])), context_id=ctx) == Status.Ok
    assert h.call("proxy_get_header_map_pairs", map_type, RET_PTR, RET_LEN, context_id=ctx) == Status.Ok
    assert decode_pairs(h.returned()) == [(b"a", b"x"), (b"b", b"y")]
    assert h.call("proxy_set_header_map_pairs", map_type, *h.put(b"\x05garbage"), context_id=ctx) == Status.Ok
    assert h.call("proxy_get_header_map_pairs", map_type, RET_PTR, RET_LEN, context_id=ctx) == Status.Ok
    assert (h.returned_ptr(), h.returned()) == (0, b"")  # malformed pairs empty the map, ptr=0 for empty


def test_envoy_header_rules(h):
    s = open_stream(h, request=REQ)
    ctx = s.context_id
    assert get(h, ctx, 0, "host") == (Status.Ok, b"example.com")  # alias of :authority
    h.call("proxy_add_header_map_value", 0, *h.put("user-agent"), *h.put("x"), context_id=ctx)  # inline: comma-join
    h.call("proxy_add_header_map_value", 0, *h.put("x-a"), *h.put("3"), context_id=ctx)  # not inline: new entry
    h.call("proxy_replace_header_map_value", 0, *h.put(":path"), *h.put("/new"), context_id=ctx)  # pseudo stays in front
    h.call("proxy_replace_header_map_value", 0, *h.put("x-a"), *h.put("9"), context_id=ctx)  # moves to the end
    assert s.request.headers.pairs() == [
        (b":authority", b"example.com"),
        (b":method", b"GET"),
        (b":path", b"/new"),
        (b"user-agent", b"ua,x"),
        (b"x-a", b"9"),
    ]


def test_maps_outside_their_phase(h):
    s = open_stream(h)
    ctx = s.context_id
    for map_type in range(4):
        assert get(h, ctx, map_type, "k")[0] == Status.BadArgument
        assert h.call("proxy_add_header_map_value", map_type, *h.put("k"), *h.put("v"), context_id=ctx) == Status.BadArgument
        assert h.call("proxy_replace_header_map_value", map_type, *h.put("k"), *h.put("v"), context_id=ctx) == Status.BadArgument
        assert h.call("proxy_remove_header_map_value", map_type, *h.put("k"), context_id=ctx) == Status.BadArgument
        assert h.call("proxy_set_header_map_pairs", map_type, *h.put(encode_pairs([])), context_id=ctx) == Status.BadArgument
        assert h.call("proxy_get_header_map_size", map_type, 16, context_id=ctx) == Status.BadArgument
        assert h.call("proxy_get_header_map_pairs", map_type, RET_PTR, RET_LEN, context_id=ctx) == Status.Ok
        assert h.returned() == b""
    # root context: no stream maps at all
    assert get(h, None, 0, "k")[0] == Status.BadArgument


@pytest.mark.parametrize("map_type", [4, 5, 6, 7])
def test_callout_maps_are_read_only_and_absent_outside_callbacks(h, map_type):
    assert get(h, None, map_type, "k")[0] == Status.BadArgument
    assert h.call("proxy_get_header_map_pairs", map_type, RET_PTR, RET_LEN) == Status.Ok and h.returned() == b""
    assert h.call("proxy_add_header_map_value", map_type, *h.put("k"), *h.put("v")) == Status.BadArgument
    assert h.call("proxy_get_header_map_size", map_type, 16) == Status.BadArgument


def test_bad_map_type_and_bad_pointers(h):
    s = open_stream(h, request=REQ)
    ctx = s.context_id
    assert h.call("proxy_get_header_map_pairs", 8, RET_PTR, RET_LEN, context_id=ctx) == Status.BadArgument
    assert get(h, ctx, 8, "k")[0] == Status.BadArgument
    assert h.call("proxy_add_header_map_value", 8, *h.put("k"), *h.put("v"), context_id=ctx) == Status.BadArgument
    assert h.call("proxy_get_header_map_value", 0, 2**31, 4, RET_PTR, RET_LEN, context_id=ctx) == Status.InvalidMemoryAccess
    assert h.call("proxy_get_header_map_pairs", 0, RET_PTR, 2**31, context_id=ctx) == Status.InvalidMemoryAccess


def test_trailers_can_be_created_in_the_last_body_callback(h):
    s = open_stream(h)
    s.request.trailers_creatable = True
    assert get(h, s.context_id, 1, "k")[0] == Status.BadArgument  # reads never create them
    assert h.call("proxy_add_header_map_value", 1, *h.put("x-t"), *h.put("1"), context_id=s.context_id) == Status.Ok
    assert s.request.trailers.pairs() == [(b"x-t", b"1")]


def test_access_log_phase(h):
    s = open_stream(h, request=REQ)
    s.request.headers_open = False
    s._log_copy = {"request_headers": s.request.headers.copy(), "response_headers": None, "response_trailers": None}
    s.in_log = True
    assert get(h, s.context_id, 0, ":path") == (Status.Ok, b"/p")
    assert get(h, s.context_id, 2, ":status")[0] == Status.NotFound  # unavailable map in the log phase
    assert h.call("proxy_add_header_map_value", 0, *h.put("k"), *h.put("v"), context_id=s.context_id) == Status.BadArgument


def test_abi_0_1_0_missing_key_is_ok_and_empty(proxy_wasm_engine):
    h = Harness(proxy_wasm_engine, module="hostcalls_abi010")
    s = open_stream(h, request=REQ)
    assert get(h, s.context_id, 0, "absent") == (Status.Ok, b"")
    s.request.headers_open = False
    s._log_copy = {"request_headers": None, "response_headers": None, "response_trailers": None}
    s.in_log = True
    assert get(h, s.context_id, 2, ":status") == (Status.Ok, b"")
