"""Requests per second through each fixture filter, with the deterministic cost of one request
(guest instructions per callback, host calls, bytes copied) in ``extra_info``."""

from __future__ import annotations

import pytest

from benchmarks.conftest import FIXTURES
from emulator import Host, Request, Response

FILTERS = [
    "rust/headers_rust.wasm",
    "go/headers_go.wasm",
    "assemblyscript/headers_assemblyscript.wasm",
    "c/headers_c.wasm",
    "c/headers_cpp.wasm",
    "wat/headers_wat.wasm",
]
REQUEST = Request({":method": "GET", ":path": "/items?page=2", ":authority": "shop.example", ":scheme": "http", "user-agent": "bench"})
RESPONSE = Response({":status": "200", "content-type": "text/plain"})


@pytest.mark.parametrize("fixture", FILTERS, ids=[f.split("/")[1].removesuffix(".wasm") for f in FILTERS])
def test_request_through_filter(proxy_wasm_benchmark, fixture):
    proxy_wasm_benchmark(FIXTURES / fixture, REQUEST, RESPONSE, root_id="headers")


@pytest.mark.parametrize("fixture", FILTERS[:2], ids=["rust", "go"])
def test_per_callback_instructions(benchmark, fixture):
    """Guest instructions per callback of one request (fuel), recorded for the report."""
    plugin = Host(costs=True, trace=False).load(FIXTURES / fixture, root_id="headers")
    plugin.http_exchange(REQUEST, RESPONSE)
    stream = plugin.http_exchange(REQUEST, RESPONSE)
    benchmark.extra_info["instructions"] = {c.name: c.cost.instructions for c in stream.callbacks if c.cost is not None}
    benchmark(plugin.http_exchange, REQUEST, RESPONSE)
