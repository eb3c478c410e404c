"""What the peer benchmark's Python implementations share: their arguments and their timing loop."""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WASM = ROOT / "fixtures" / "go" / "headers_go.wasm"


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every implementation takes (``run.sh`` passes the same ones to each)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--wasm", default=str(DEFAULT_WASM), help="a Go SDK fixture (default: fixtures/go/headers_go.wasm)")
    p.add_argument("--warmup", type=int, default=1000, help="untimed requests before each round")
    p.add_argument("--requests", type=int, default=5000, help="timed requests per round")
    p.add_argument("--rounds", type=int, default=1)
    return p


def time_rounds(
    impl: str,
    request: Callable[[], object],
    args: argparse.Namespace,
    load_ms: float,
    before_round: Callable[[], None] | None = None,
    process_ms: float | None = None,
) -> None:
    """Warm up, then time ``args.requests`` calls of ``request`` per round; one JSON line per round.

    The first round's line also carries ``load_ms`` and, when given, ``process_ms`` (the new
    process's import, load and start)."""
    for r in range(args.rounds):
        for _ in range(args.warmup):
            request()
        if before_round is not None:
            before_round()
        gc.collect()
        start = time.perf_counter()
        for _ in range(args.requests):
            request()
        elapsed = time.perf_counter() - start
        line = {"impl": impl, "per_request_us": elapsed * 1e6 / args.requests, "round": r, "requests": args.requests, "warmup": args.warmup}
        if r == 0:
            line["load_ms"] = round(load_ms, 3)
            if process_ms is not None:
                line["process_ms"] = round(process_ms, 3)
        print(json.dumps(line), flush=True)
