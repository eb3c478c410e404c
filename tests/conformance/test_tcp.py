"""Network filters: the connection lifecycle, data buffers and actions (abi-spec.md §5.7)."""

from __future__ import annotations

from abi import FilterStatus, PeerType, Status
from emulator import Host
from tests.conftest import wat_module
from tests.hostcall_harness import Harness


def test_lifecycle_buffers_and_what_reaches_each_side(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    p = host.load(wat_module("tcp_filter"))
    conn = p.tcp_connection()
    assert conn.new_connection_action == "Continue"
    assert conn.send_downstream(b"ab") == FilterStatus.StopIteration  # kept in the read buffer
    assert conn.upstream_received == b""
    assert conn.send_downstream(b"cd-ef") == FilterStatus.Continue
    assert conn.callbacks[-1].args[1] == 7  # the size includes the bytes kept before
    assert conn.upstream_received == b"ABCD-EF"
    assert conn.send_upstream(b"reply", end_of_stream=True) == FilterStatus.Continue
    assert conn.downstream_received == b"reply"
    conn.close(PeerType.REMOTE)
    names = [c.name for c in conn.callbacks]
    assert names[-5:] == ["proxy_on_upstream_connection_close", "proxy_on_downstream_connection_close", "proxy_on_done", "proxy_on_log", "proxy_on_delete"]
    assert conn.callbacks[-4].args[1] == PeerType.REMOTE
    assert conn.callbacks[-5].args[1] == PeerType.UNKNOWN  # synthesized from upstream end of stream
    assert [r.message for r in host.logs][-5:] == ["upstream close", "downstream close", "done", "log", "delete"]
    assert conn.send_downstream(b"late") is None and conn.notes


def test_continue_and_close_from_a_network_filter(proxy_wasm_engine):
    h = Harness(proxy_wasm_engine)
    conn = h.plugin.tcp_connection()
    conn.downstream.data += b"held"
    ctx = conn.context_id
    assert h.call("proxy_continue_stream", 2, context_id=ctx) == Status.Ok
    h.host.drain()
    assert conn.upstream_received == b"held"
    assert h.call("proxy_continue_stream", 3, context_id=ctx) == Status.Unimplemented
    assert h.call("proxy_continue_stream", 0, context_id=ctx) == Status.Ok  # no HTTP side: nothing to do
    assert h.call("proxy_get_header_map_value", 0, *h.put("k"), 0, 4, context_id=ctx) == Status.BadArgument
    assert h.call("proxy_get_buffer_status", 2, 16, 20, context_id=ctx) == Status.Ok and h.mem.u32(16) == 0
    assert h.call("proxy_set_buffer_bytes", 3, 0, 0, *h.put("up"), context_id=ctx) == Status.Ok
    assert bytes(conn.upstream) == b"up"
    assert h.call("proxy_close_stream", 2, context_id=ctx) == Status.Ok
    h.host.drain()
    assert conn.closed and conn.closed_by == "wasm_downstream_close"


def test_properties_of_a_connection(proxy_wasm_engine):
    from abi import encode_path

    h = Harness(proxy_wasm_engine)
    conn = h.plugin.tcp_connection()
    assert h.call("proxy_get_property", *h.put(encode_path(["source", "address"])), 0, 4, context_id=conn.context_id) == Status.Ok
    assert h.mem.read(h.mem.u32(0), h.mem.u32(4)) == b"192.168.0.10:43210"
    assert h.call("proxy_get_property", *h.put(encode_path(["request", "path"])), 0, 4, context_id=conn.context_id) == Status.NotFound
