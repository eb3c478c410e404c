"""Long campaigns in child processes: each chunk runs as ``python -m emulator.hardening`` in its own
process, so a child that dies is counted as a crash (its command, stderr and last mutant kept)
instead of ending the campaign.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .mutants import ROOT

__all__: list[str] = []


def _merge(total: dict[str, Any], part: dict[str, Any]) -> None:
    for k, v in part.items():
        if isinstance(v, bool) or k in ("engine", "seed"):
            continue
        if isinstance(v, int | float):
            total[k] = total.get(k, 0) + v
        elif isinstance(v, dict):
            sub = total.setdefault(k, {})
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    inner = sub.setdefault(kk, {})
                    for k3, v3 in vv.items():
                        inner[k3] = inner.get(k3, 0) + v3
                else:
                    sub[kk] = sub.get(kk, 0) + vv
        elif isinstance(v, list):
            total.setdefault(k, []).extend(v[: max(0, 10 - len(total.get(k, [])))])


def _isolated(kind: str, count: int, seed: int, chunk: int, engine: str, crash_dir: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run the campaign in chunks, each in a child process; a child that dies counts as a crash."""
    total: dict[str, Any] = {"engine": engine, "seed": seed, "crashes": 0, "child_errors": 0}
    crash_dir.mkdir(parents=True, exist_ok=True)
    done = 0
    index = 0
    while done < count:
        n = min(chunk, count - done)
        sub_seed = seed * 1_000_003 + index
        last = crash_dir / f"last_{kind}_{os.getpid()}.wasm"
        cmd = [sys.executable, "-m", "emulator.hardening", kind, "--count", str(n), "--seed", str(sub_seed), "--engine", engine, "--json", *extra]
        if kind == "mutants":
            cmd += ["--save-last", str(last)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode == 0:
            part = json.loads(proc.stdout)
            _merge(total, part)
            done += part["calls"] if kind == "hostile" else part["mutants"]
        else:
            # killed by a signal (segfault, abort): a crash; an exit status > 0 is a runner error
            what = "crash" if proc.returncode < 0 else "error"
            total["crashes" if what == "crash" else "child_errors"] += 1
            note = crash_dir / f"{what}_{kind}_seed{sub_seed}.txt"
            note.write_text(f"{' '.join(cmd)}\nreturn code {proc.returncode}\n{proc.stderr[-4000:]}")
            if last.exists():
                last.rename(crash_dir / f"{what}_{kind}_seed{sub_seed}.wasm")
            total.setdefault("crash_reports", []).append(str(note))
            done += n
        index += 1
        print(f"[{kind}] {done}/{count} crashes={total['crashes']} child_errors={total['child_errors']}", file=sys.stderr, flush=True)
    last = crash_dir / f"last_{kind}_{os.getpid()}.wasm"
    if last.exists():
        last.unlink()
    return total
