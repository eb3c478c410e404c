"""Time the emulator on the Go SDK fixture with the peer benchmark's request sequence.

    python benchmarks/peers/emulator_bench.py [--wasm FILE] [--warmup N] [--requests M] [--rounds R]

Per request: a new HTTP stream (``proxy_on_context_create``), request headers (5 headers, end of
stream), response headers (2 headers, end of stream: this completes the stream, so ``on_log``,
``on_done`` and ``on_delete`` run). The host records no trace (``Host(trace=False)``).

Prints one JSON line per round: ``{"impl": "emulator-wasmtime", "per_request_us": ...}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from emulator import Host  # noqa: E402

DEFAULT_WASM = ROOT / "fixtures" / "go" / "headers_go.wasm"
REQUEST_HEADERS = [
    (":method", "GET"),
    (":path", "/items?page=2"),
    (":authority", "shop.example"),
    (":scheme", "http"),
    ("user-agent", "bench"),
]
RESPONSE_HEADERS = [(":status", "200"), ("content-type", "text/plain")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wasm", default=str(DEFAULT_WASM), help="a Go SDK fixture (default: fixtures/go/headers_go.wasm)")
    p.add_argument("--warmup", type=int, default=1000, help="untimed requests before each round")
    p.add_argument("--requests", type=int, default=5000, help="timed requests per round")
    p.add_argument("--rounds", type=int, default=1)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    host = Host(trace=False)
    plugin = host.load(args.wasm)
    load_ms = (time.perf_counter() - t0) * 1e3

    def request():
        stream = plugin.http_stream()
        stream.send_request_headers(REQUEST_HEADERS, end_of_stream=True)
        stream.send_response_headers(RESPONSE_HEADERS, end_of_stream=True)
        return stream

    # Check once that the filter ran the whole sequence.
    s = request()
    if s.request_headers.get("x-fixture") != b"go" or s.response_headers.get("x-fixture-response") != b"go":
        sys.exit(f"emulator_bench: the filter did not add its headers: {s.request_headers!r} {s.response_headers!r}")
    called = [c.name for c in s.callbacks]
    if called[-3:] != ["proxy_on_log", "proxy_on_done", "proxy_on_delete"]:
        sys.exit(f"emulator_bench: the stream did not complete: {called}")

    for r in range(args.rounds):
        for _ in range(args.warmup):
            request()
        host.logs.clear()  # keep the retained log records from growing across rounds
        gc.collect()
        start = time.perf_counter()
        for _ in range(args.requests):
            request()
        elapsed = time.perf_counter() - start
        line = {
            "impl": "emulator-wasmtime",
            "per_request_us": elapsed * 1e6 / args.requests,
            "round": r,
            "requests": args.requests,
            "warmup": args.warmup,
        }
        if r == 0:
            line["load_ms"] = round(load_ms, 3)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
