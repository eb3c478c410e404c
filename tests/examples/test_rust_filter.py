"""Example: testing a Rust filter (fixtures/rust/headers_rust.wasm) the way a filter author would."""

import pytest

from emulator import PluginStartError, Request, Response
from emulator.testing import assert_headers, assert_local_response, assert_logged, assert_no_local_response

FILTER = "fixtures/rust/headers_rust.wasm"
GET = {":method": "GET", ":path": "/items", ":authority": "shop.example"}


@pytest.fixture
def plugin(load_filter):
    return load_filter(FILTER, plugin_config="")


def test_adds_headers_both_ways(plugin):
    stream = plugin.http_exchange(Request(GET), Response({":status": "200"}, body="ok"))
    assert_no_local_response(stream)
    assert_headers(stream.upstream_request, {"x-fixture": "rust"})
    assert_headers(stream.downstream_response, {":status": "200", "x-fixture-response": "rust"})
    assert_logged(plugin, "request_headers: path=/items", level="info")


def test_denies_with_a_local_reply(plugin):
    stream = plugin.http_exchange(Request({**GET, "x-deny": "1"}))
    assert_local_response(stream, 403, body="denied", headers={"x-denied-by": "rust"})
    assert stream.upstream_request.headers is None


def test_appends_to_a_buffered_body(plugin):
    request = Request({**GET, ":method": "POST", "x-body-mode": "append"}, body="hello world", chunks=4)
    stream = plugin.http_exchange(request)
    assert stream.upstream_request.body == b"hello world-appended"


def test_a_bad_configuration_is_refused(load_filter):
    with pytest.raises(PluginStartError) as info:
        load_filter(FILTER, plugin_config="fail-configure")
    assert info.value.phase == "proxy_on_configure"
