"""Time the emulator on the Go SDK fixture with the peer benchmark's request sequence.

    python benchmarks/peers/emulator_bench.py [--wasm FILE] [--warmup N] [--requests M] [--rounds R]

Per request: a new HTTP stream (``proxy_on_context_create``), request headers (5 headers, end of
stream), response headers (2 headers, end of stream: this completes the stream, so ``on_log``,
``on_done`` and ``on_delete`` run). The host records no trace (``Host(trace=False)``).

Prints one JSON line per round: ``{"impl": "emulator-wasmtime", "per_request_us": ...}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from timing import parser, time_rounds  # noqa: E402

_IMPORT_START = time.perf_counter()
from emulator import Host  # noqa: E402

IMPORT_MS = (time.perf_counter() - _IMPORT_START) * 1e3
"""``import emulator`` in this process (wasmtime is imported by the first ``Host``, in ``load_ms``)."""

REQUEST_HEADERS = [
    (":method", "GET"),
    (":path", "/items?page=2"),
    (":authority", "shop.example"),
    (":scheme", "http"),
    ("user-agent", "bench"),
]
RESPONSE_HEADERS = [(":status", "200"), ("content-type", "text/plain")]


MODES = {
    "lean": ("emulator-wasmtime", {"trace": False}),  # the peer comparison: nothing recorded
    "default": ("emulator-default", {}),  # Host() as tests use it: the trace on
    "costs": ("emulator-costs", {"trace": False, "costs": True}),  # every callback metered
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--mode", choices=sorted(MODES), default="lean", help="lean: Host(trace=False); default: Host(); costs: Host(trace=False, costs=True)")
    p.add_argument("--impl", help="the name printed for this implementation (default: per mode)")
    p.add_argument("--null-filter", action="store_true", help="the module adds no header (fixtures/wat/null_filter.wasm): check only that the stream completed")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    impl, options = MODES[args.mode]
    host = Host(**options)
    plugin = host.load(args.wasm)
    load_ms = (time.perf_counter() - t0) * 1e3

    def request():
        stream = plugin.http_stream()
        stream.send_request_headers(REQUEST_HEADERS, end_of_stream=True)
        stream.send_response_headers(RESPONSE_HEADERS, end_of_stream=True)
        return stream

    # Check once that the filter ran the whole sequence.
    s = request()
    if not args.null_filter and (not s.request_headers.get("x-fixture") or not s.response_headers.get("x-fixture-response")):
        sys.exit(f"emulator_bench: the filter did not add its headers: {s.request_headers!r} {s.response_headers!r}")
    called = [c.name for c in s.callbacks]
    if called[-3:] != ["proxy_on_log", "proxy_on_done", "proxy_on_delete"]:
        sys.exit(f"emulator_bench: the stream did not complete: {called}")

    def before_round() -> None:  # logs and the trace must not grow across rounds
        host.logs.clear()
        if host.trace is not None:
            host.trace.clear()

    time_rounds(args.impl or impl, request, args, load_ms, before_round=before_round, process_ms=IMPORT_MS + load_ms)  # logs must not grow across rounds


if __name__ == "__main__":
    main()
