"""Load through ``serve`` (benchmarks/serve_load.py): 2,000 requests over 50 connections on loopback.

Correctness is asserted (nothing lost, nothing mixed up, no error, a clean shutdown, the proxy's
memory flat); the speed is only reported (``extra_info``: requests per second, p50, p99).
"""

from __future__ import annotations

import asyncio

from benchmarks.conftest import FIXTURES
from benchmarks.serve_load import run


def test_serve_under_load(benchmark):
    results = []
    benchmark.pedantic(lambda: results.append(asyncio.run(run(2000, 50, FIXTURES / "go/headers_go.wasm"))), rounds=1, iterations=1)
    (result,) = results
    assert result["errors"] == {}, result
    assert result["clean_shutdown"], result
    rss = result["rss_kib"]
    if rss["after_first_quarter_kib"] is not None:  # Linux
        assert rss["at_end_kib"] - rss["after_first_quarter_kib"] < 16 * 1024, rss  # flat: not a copy of each request kept
    benchmark.extra_info.update({k: result[k] for k in ("requests_per_s", "p50_ms", "p99_ms", "rss_kib", "loadavg")})
