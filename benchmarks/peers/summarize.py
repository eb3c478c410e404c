"""Summarize run.sh's JSON lines: per-implementation medians and same-round ratios, as markdown.

    python benchmarks/peers/summarize.py RESULTS.jsonl

Each line is ``{"impl": ..., "per_request_us": ..., "round": ...}`` with ``round`` being run.sh's
round (the implementations ran one after another within it). A ratio is computed within each round,
then its median is reported, so a slow phase of the machine affects both sides of a ratio alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections import defaultdict

IMPLS = (
    "proxytest-wazero",
    "emulator-wasmtime",
    "emulator-pure",
    "emulator-default",
    "emulator-costs",
    "engine-floor",
    "engine-floor-4cb",
    "emulator-rust",
    "engine-floor-rust",
    "emulator-null",
    "engine-floor-null",
)
RATIOS = (
    ("emulator / proxytest", "emulator-wasmtime", "proxytest-wazero", "target <= 0.75 (6 callbacks against proxytest's 4)"),
    ("emulator / floor (6 callbacks)", "emulator-wasmtime", "engine-floor", "target <= 1.5"),
    ("emulator / floor (4 callbacks, proxytest's)", "emulator-wasmtime", "engine-floor-4cb", "the emulator still makes 6"),
    ("Rust: emulator / floor", "emulator-rust", "engine-floor-rust", "target <= 1.5"),
    ("emulator compiled / pure Python", "emulator-wasmtime", "emulator-pure", "the speed mode's gain (PROXY_WASM_EMULATOR_PURE=1)"),
    ("Host() (trace on) / Host(trace=False)", "emulator-default", "emulator-wasmtime", "target <= 1.1"),
    ("Host(costs=True) / Host(trace=False)", "emulator-costs", "emulator-wasmtime", "target <= 1.2"),
    ("null filter: emulator / floor", "emulator-null", "engine-floor-null", "the stream machinery alone (no host call; fixtures/wat/null_filter.wat)"),
    ("floor / proxytest", "engine-floor", "proxytest-wazero", "anchor 0.52"),
    ("floor (4 callbacks) / proxytest", "engine-floor-4cb", "proxytest-wazero", "like for like"),
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(path: str) -> None:
    per_round: dict[int, dict[str, float]] = defaultdict(dict)
    load: dict[str, list[float]] = defaultdict(list)
    process: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            if "meta" in d:
                meta.update(d["meta"])
                continue
            per_round[d["round"]][d["impl"]] = d["per_request_us"]
            if "load_ms" in d:
                load[d["impl"]].append(d["load_ms"])
            if "process_ms" in d:
                process[d["impl"]].append(d["process_ms"])
    rounds = sorted(per_round)
    requests = meta.get("requests", "?")
    print(
        f"Machine: {cpu_model()}, nproc {os.cpu_count()}; load average at start {meta.get('loadavg', '?')}. "
        f"{len(rounds)} interleaved rounds of {requests} timed requests after {meta.get('warmup', '?')} warm-up requests, "
        "one process per implementation per round."
    )
    if meta.get("versions"):
        print(f"Versions: {meta['versions']}.")
    print()
    print("| implementation | median µs/request | per round (µs) | load + start (ms, median) |")
    print("|---|---|---|---|")
    for impl in IMPLS:
        vals = [per_round[r][impl] for r in rounds if impl in per_round[r]]
        if not vals:
            continue
        ld = f"{statistics.median(load[impl]):.1f}" if load[impl] else "-"
        print(f"| {impl} | {statistics.median(vals):.1f} | {', '.join(f'{v:.1f}' for v in vals)} | {ld} |")
    print()
    print("| same-round ratio | median | per round | note |")
    print("|---|---|---|---|")
    for label, a, b, note in RATIOS:
        vals = [per_round[r][a] / per_round[r][b] for r in rounds if a in per_round[r] and b in per_round[r]]
        if not vals:
            continue
        print(f"| {label} | {statistics.median(vals):.2f} | {', '.join(f'{v:.2f}' for v in vals)} | {note} |")
    if process:
        print()
        print("| new process: `import emulator`, then load and start the filter from the cache | median ms | per round (ms) | note |")
        print("|---|---|---|---|")
        for impl in IMPLS:
            if process[impl]:
                vals = process[impl]
                fixture = {"rust": "Rust", "null": "null"}.get(impl.rsplit("-", 1)[-1], "Go")
                print(f"| {impl} | {statistics.median(vals):.1f} | {', '.join(f'{v:.1f}' for v in vals)} | the {fixture} fixture; target <= 45 (Go) |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
