"""The command line of the campaigns: ``python -m emulator.hardening hostile|mutants --count N --seed S
[--engine E] [--isolate CHUNK]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .guest_campaign import run_hostile_campaign
from .isolate import _isolated
from .mutants import ROOT, fixture_modules, run_mutation_campaign

__all__: list[str] = []


def main(argv: list[str] | None = None) -> int:
    """``python -m emulator.hardening hostile|mutants --count N --seed S [--engine E] [--isolate CHUNK]``."""
    parser = argparse.ArgumentParser(prog="python -m emulator.hardening", description="hardening fuzz campaigns (issue #8)")
    parser.add_argument("kind", choices=["hostile", "mutants"])
    parser.add_argument("--count", "--calls", "--mutants", type=int, default=2000, dest="count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", default="wasmtime")
    parser.add_argument("--isolate", type=int, default=0, help="run chunks of this size in child processes and count crashes")
    parser.add_argument("--save-last", default=None, help="(mutants) write each mutant here before running it")
    parser.add_argument("--crash-dir", default=str(ROOT / "tests" / "hardening" / "crashers"))
    parser.add_argument(
        "--module", action="append", type=Path, metavar="FILE.wasm", help="(mutants) a module to mutate (repeatable; default: the checkout's fixtures)"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--abort-for-test", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.abort_for_test:
        os.abort()  # lets the tests check that --isolate counts a child that dies
    sources = None
    if args.kind == "mutants":
        sources = args.module or fixture_modules()
        if not sources:
            parser.error(f"no modules to mutate: {ROOT / 'fixtures'} has none (an installed package has no fixtures); pass --module FILE.wasm")
        missing = [str(p) for p in sources if not p.is_file()]
        if missing:
            parser.error(f"no such module: {', '.join(missing)}")
        if args.module and args.isolate:
            parser.error("--module cannot be combined with --isolate (the child processes mutate the fixtures)")

    def progress(p: dict[str, Any]) -> None:
        if not args.json:
            print(json.dumps(p), file=sys.stderr, flush=True)

    if args.isolate:
        result = _isolated(args.kind, args.count, args.seed, args.isolate, args.engine, Path(args.crash_dir))
    elif args.kind == "hostile":
        result = run_hostile_campaign(args.count, args.seed, engine=args.engine, progress=progress)
    else:
        result = run_mutation_campaign(args.count, args.seed, engine=args.engine, save_last=args.save_last, progress=progress, sources=sources)
    print(json.dumps(result, indent=None if args.json else 1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
