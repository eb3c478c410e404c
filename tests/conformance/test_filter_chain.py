"""Several filters on one stream, in Envoy's order."""

from __future__ import annotations

from emulator import FilterChain, Host, Request, Response
from tests.conftest import FIXTURES, wat_module

REQ = {":method": "GET", ":path": "/", ":authority": "a"}


def test_request_in_order_response_in_reverse(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    rust = host.load(FIXTURES / "rust/headers_rust.wasm")
    go = host.load(FIXTURES / "go/headers_go.wasm")
    chain = FilterChain([rust, go])
    s = chain.http_exchange(Request(REQ, body="abc"), Response({":status": "200"}, body="ok"))
    assert s.upstream_request.headers[-2:] == [(b"x-fixture", b"rust"), (b"x-fixture", b"go")]
    assert bytes(s.upstream_request.body) == b"abc"
    # response: go (last) replaces first, then rust replaces again: rust's value wins downstream
    assert s.downstream_response.header("x-fixture-response") == b"rust"
    assert bytes(s.downstream_response.body) == b"ok"
    order = [(i, name) for i, name, _ in s.actions]
    assert order.index((0, "proxy_on_request_headers")) < order.index((1, "proxy_on_request_headers"))
    ends = [(i, n) for i, n, _ in s.actions if n in ("proxy_on_log", "proxy_on_done", "proxy_on_delete")]
    assert ends == [(0, "proxy_on_log"), (1, "proxy_on_log"), (0, "proxy_on_done"), (0, "proxy_on_delete"), (1, "proxy_on_done"), (1, "proxy_on_delete")]


def test_a_local_reply_goes_back_through_the_filters_before_it(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    first = host.load(FIXTURES / "c/headers_c.wasm")
    second = host.load(FIXTURES / "go/headers_go.wasm", plugin_config="deny-all")
    s = FilterChain([first, second]).http_exchange(Request(REQ), Response({":status": "200"}))
    assert s.upstream_request.headers is None
    assert s.local_response.status == 403
    assert s.downstream_response.header(":status") == b"403"
    # both filters saw the reply on the way back: go replaced the header first, then c
    assert s.downstream_response.header("x-fixture-response") == b"c"


def test_a_pause_in_the_first_filter_holds_the_second(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    pauser = host.load(wat_module("pitfalls"))
    rust = host.load(FIXTURES / "rust/headers_rust.wasm")
    s = FilterChain([pauser, rust]).http_stream()
    s.send_request_headers({**REQ, "x-stop": "1"})
    assert [n for i, n, _ in s.actions if i == 1] == ["proxy_on_context_create"]
    s.streams[0].continue_side("request")
    host.drain()
    assert s.upstream_request.header("x-fixture") == b"rust"
