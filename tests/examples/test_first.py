from emulator.testing import assert_headers, assert_logged


def test_the_filter_tags_the_request(load_filter):
    plugin = load_filter("fixtures/rust/headers_rust.wasm")
    stream = plugin.http_exchange({":method": "GET", ":path": "/items", ":authority": "shop"})
    assert_headers(stream.upstream_request, {"x-fixture": "rust"})
    assert_logged(plugin, "request_headers: path=/items")
