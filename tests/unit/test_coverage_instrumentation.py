"""The coverage rewrite keeps every module valid (wasm-tools validates the output)."""

from __future__ import annotations

import subprocess

import pytest

from emulator.vm.coverage import COVERAGE_EXPORT, instrument
from emulator.vm.module import parse_module
from tests.conftest import FIXTURES
from tests.unit.test_wasm_oracle import SMITH_CONFIGS, WASM_TOOLS, smith

FIXTURE_MODULES = sorted(p for p in FIXTURES.rglob("*.wasm") if "node_modules" not in p.parts and p.stat().st_size < 500_000)


def validate(wasm: bytes) -> str:
    proc = subprocess.run([WASM_TOOLS, "validate", "-"], input=wasm, capture_output=True, check=False)
    return proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("path", FIXTURE_MODULES, ids=[str(p.relative_to(FIXTURES)) for p in FIXTURE_MODULES])
def test_every_instrumented_fixture_is_valid(path):
    original = path.read_bytes()
    out, cmap = instrument(original)
    assert validate(out) == ""
    info, before = parse_module(out), parse_module(original)
    assert len(info.memories) == len(before.memories) + 1
    assert (COVERAGE_EXPORT, "memory") in [(e.name, e.kind) for e in info.exports]
    assert [e.name for e in info.exports if e.name != COVERAGE_EXPORT] == [e.name for e in before.exports]
    assert info.import_names() == before.import_names()
    code = next(s for s in before.sections if s.id == 10)
    defined = int.from_bytes(original[code.start : code.start + 1], "little") & 0x7F if original[code.start] < 0x80 else None
    entries = {f for f, _ in cmap.sites}
    first = before.num_imported_functions
    assert min(entries) == first  # a probe at the entry of every defined function, numbered after the imports
    if defined is not None:
        assert entries == set(range(first, first + defined))


def test_instrumented_smith_modules_stay_valid(tmp_path):
    # arbitrary valid modules with every phase-4 proposal: the decoder must know every instruction
    failures = []
    for i, config in enumerate(SMITH_CONFIGS):
        for seed in range(3):
            wasm = smith(5000 + 10 * i + seed, [*config, "--min-funcs", "3"] if "--min-funcs" not in config else config, tmp_path)
            out, _ = instrument(wasm)
            error = validate(out)
            if error:
                failures.append(f"smith {config} seed {seed}: {error}")
    assert failures == []
