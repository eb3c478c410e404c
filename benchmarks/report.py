"""Summarize a ``--benchmark-json`` file: per-call medians and same-run ratios between engines.

    python -m benchmarks.report results.json

Each benchmark that sets ``extra_info["calls"]`` is reported per call; ratios compare engines on
the same benchmark, measured side by side in one run.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict


def load(path: str) -> dict[str, dict[str, float]]:
    """``{benchmark base name: {engine: median seconds per call}}``."""
    data = json.loads(open(path).read())  # noqa: SIM115
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for b in data["benchmarks"]:
        m = re.match(r"(?P<base>[^\[]+)\[(?P<engine>wasmtime-stock|wasmtime|wasmer)(?:-(?P<rest>.+))?\]", b["name"])
        if not m:
            continue
        base = m["base"] + (f"[{m['rest']}]" if m["rest"] else "")
        calls = b.get("extra_info", {}).get("calls", 1)
        out[base][m["engine"]] = b["stats"]["median"] / calls
    return out


def fmt(seconds: float) -> str:
    """Human time."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def main(path: str) -> None:
    """Print a markdown table."""
    rows = load(path)
    engines = [e for e in ("wasmtime", "wasmtime-stock", "wasmer") if any(e in r for r in rows.values())]
    print("| benchmark | " + " | ".join(engines) + " | stock / fast | wasmer / fast |")
    print("|---|" + "---|" * (len(engines) + 2))
    for name, r in sorted(rows.items()):
        cells = [fmt(r[e]) if e in r else "n/a" for e in engines]
        fast = r.get("wasmtime")
        stock = f"{r['wasmtime-stock'] / fast:.1f}" if fast and "wasmtime-stock" in r else "n/a"
        wasmer = f"{r['wasmer'] / fast:.2f}" if fast and "wasmer" in r else "n/a"
        print(f"| {name} | " + " | ".join(cells) + f" | {stock} | {wasmer} |")


if __name__ == "__main__":
    main(sys.argv[1])
