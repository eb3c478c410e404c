"""Malformed modules: :func:`mutate` makes truncated, bit-flipped, byte-smashed, section-shuffled
and spliced versions of the fixtures, and small modules with a wrong signature; :func:`load_mutant`
loads one the way Envoy would and exercises it if it starts; :func:`run_mutation_campaign` counts
the outcomes; :func:`screen_on_wasmtime` keeps runaway mutants off engines without deadlines.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from abi import HOST_FUNCTIONS, WASI_FUNCTIONS, callbacks_for
from abi.leb128 import encode_uleb
from abi.records import record

from ..engines import EngineConfig, get_engine, wat2wasm
from ..errors import CallbackError, EmulatorError, ModuleLoadError, PluginStartError
from ..host import Host
from ..http.types import Request, Response
from ..vm.program import Program
from .choosers import Chooser, RandomChooser
from .layout import U32
from .results import MutantResult, _escaped
from .wat import _wat_sig

__all__ = ["MUTATION_STRATEGIES", "Mutant", "fixture_modules", "load_mutant", "mutate", "run_mutation_campaign", "screen_on_wasmtime"]


ROOT = Path(__file__).resolve().parents[2]


def fixture_modules(root: Path | None = None) -> list[Path]:
    """Every well-formed fixture module (``fixtures/*/*.wasm``), smallest first."""
    from ..vm.module import ModuleFormatError, parse_module

    base = (root or ROOT) / "fixtures"
    out = []
    for path in sorted(base.glob("*/*.wasm"), key=lambda p: (p.stat().st_size, str(p))):
        try:
            parse_module(path.read_bytes())
        except (ModuleFormatError, OSError):
            continue  # e.g. a fixture being rebuilt right now
        out.append(path)
    return out


@record(frozen=True)
class Mutant:
    """One malformed module: its bytes, how it was made and from what."""

    wasm: bytes
    strategy: str
    source: str
    detail: str = ""
    expect_refused: bool = False
    """True for wrong-signature modules cpp-host refuses: starting one is a fidelity bug."""


def _sections(data: bytes) -> list[tuple[int, int, int, int]]:
    """``(id, header_start, payload_start, end)`` of each section (stops at the first malformed one)."""
    out = []
    pos = 8
    while pos < len(data):
        if not _section_fits(data, pos):
            break
        start = pos
        sid = data[pos]
        pos += 1
        size = shift = 0
        while True:
            b = data[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((sid, start, pos, pos + size))
        pos += size
    return out


def _section_fits(data: bytes, pos: int) -> bool:
    i = pos + 1
    size = shift = 0
    while i < len(data) and shift < 35:
        b = data[i]
        i += 1
        size |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return i + size <= len(data)
    return False


MUTATION_STRATEGIES: dict[str, float] = {
    "truncate": 3,
    "truncate_at_section": 1,
    "bitflip": 4,
    "section_bitflip": 5,
    "byteset": 2,
    "section_shuffle": 2,
    "section_drop": 2,
    "section_duplicate": 1,
    "section_size": 2,
    "splice": 1,
    "signature": 3,
}
"""How mutants are made, with their weights."""


def _weight(size: int) -> float:
    """Small modules compile in milliseconds, the Go ones in seconds: pick big ones rarely."""
    return 1.0 if size < 64_000 else 0.1 if size < 1_000_000 else 0.01


_INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0x60, 0x0B, 0x41)


def mutate(ch: Chooser, sources: Sequence[Path] | None = None, *, strategy: str | None = None) -> Mutant:
    """One mutant of a fixture (small fixtures are picked far more often: they compile fast)."""
    strategy = strategy or ch.weighted(list(MUTATION_STRATEGIES.items()))
    if strategy == "signature":
        return _signature_mutant(ch)
    paths = list(sources or fixture_modules())
    weights = [_weight(p.stat().st_size) for p in paths]
    path = ch.weighted(list(zip(paths, weights, strict=True)))
    data = path.read_bytes()
    if len(data) < 9 or not _sections(data):
        return Mutant(data, "identity", str(path), "unusable source")
    src = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    secs = _sections(data)
    if strategy == "truncate":
        n = ch.integer(0, len(data) - 1)
        return Mutant(data[:n], strategy, src, f"first {n} bytes")
    if strategy == "truncate_at_section":
        sec = ch.choice(secs)
        return Mutant(data[: sec[1]], strategy, src, f"cut before section {sec[0]} at {sec[1]}")
    if strategy == "bitflip":
        out = bytearray(data)
        flips = [ch.integer(0, len(data) * 8 - 1) for _ in range(ch.integer(1, 8))]
        for bit in flips:
            out[bit // 8] ^= 1 << (bit % 8)
        return Mutant(bytes(out), strategy, src, f"bits {flips}")
    if strategy == "section_bitflip":
        sec = ch.choice(secs)
        lo, hi = sec[2], sec[3]
        out = bytearray(data)
        if hi <= lo:
            return Mutant(bytes(out), strategy, src, f"empty section {sec[0]}")
        flips = [ch.integer(lo * 8, hi * 8 - 1) for _ in range(ch.integer(1, 4))]
        for bit in flips:
            out[bit // 8] ^= 1 << (bit % 8)
        return Mutant(bytes(out), strategy, src, f"section {sec[0]} bits {flips}")
    if strategy == "byteset":
        out = bytearray(data)
        spots = []
        for _ in range(ch.integer(1, 4)):
            pos = ch.integer(0, len(data) - 1)
            out[pos] = ch.choice(_INTERESTING_BYTES)
            spots.append(pos)
        return Mutant(bytes(out), strategy, src, f"bytes at {spots}")
    head = data[:8]
    chunks = [data[s[1] : s[3]] for s in secs]
    if strategy == "section_shuffle" and len(chunks) > 1:
        i, j = ch.integer(0, len(chunks) - 1), ch.integer(0, len(chunks) - 1)
        chunks[i], chunks[j] = chunks[j], chunks[i]
        return Mutant(head + b"".join(chunks), strategy, src, f"swap sections {secs[i][0]} and {secs[j][0]}")
    if strategy == "section_drop":
        i = ch.integer(0, len(chunks) - 1)
        del chunks[i]
        return Mutant(head + b"".join(chunks), strategy, src, f"drop section {secs[i][0]}")
    if strategy == "section_duplicate":
        i = ch.integer(0, len(chunks) - 1)
        chunks.insert(ch.integer(0, len(chunks)), chunks[i])
        return Mutant(head + b"".join(chunks), strategy, src, f"duplicate section {secs[i][0]}")
    if strategy == "section_size":
        i = ch.integer(0, len(secs) - 1)
        sid, _hstart, pstart, end = secs[i]
        size = end - pstart
        new = ch.choice([0, size - 1, size + 1, size * 2, U32, 1 << 40, max(0, size - ch.integer(1, 64))])
        chunks[i] = bytes([sid]) + encode_uleb(max(0, new)) + data[pstart:end]
        return Mutant(head + b"".join(chunks), strategy, src, f"section {sid} size {size} -> {new}")
    if strategy == "splice":
        other = ch.choice(paths)
        odata = other.read_bytes()
        osecs = {s[0]: odata[s[1] : s[3]] for s in _sections(odata)}
        ids = [s[0] for s in secs if s[0] in osecs and s[0] != 0]
        if not ids:
            return Mutant(data, strategy, src, "nothing to splice")
        sid = ch.choice(ids)
        chunks = [osecs[sid] if s[0] == sid else c for s, c in zip(secs, chunks, strict=True)]
        return Mutant(head + b"".join(chunks), strategy, src, f"section {sid} from {other.name}")
    return Mutant(data, "identity", src)


_CALLBACK_SIGS = callbacks_for("0.2.1")
_WRONG_TYPES = ("i32", "i64", "f32", "f64")


def _wrong_sig(ch: Chooser, params: tuple[str, ...], results: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    while True:
        p, r = list(params), list(results)
        how = ch.choice(["add", "drop", "retype", "result", "swap_result"])
        if how == "add":
            p.insert(ch.integer(0, len(p)), ch.choice(_WRONG_TYPES))
        elif how == "drop" and p:
            del p[ch.integer(0, len(p) - 1)]
        elif how == "retype" and p:
            i = ch.integer(0, len(p) - 1)
            p[i] = ch.choice([t for t in _WRONG_TYPES if t != p[i]])
        elif how == "result":
            r = [] if r else [ch.choice(_WRONG_TYPES)]
        elif how == "swap_result" and r:
            r = [ch.choice([t for t in _WRONG_TYPES if t != r[0]])]
        if (tuple(p), tuple(r)) != (params, results):
            return tuple(p), tuple(r)


def _dummy_body(results: Sequence[str]) -> str:
    return "".join(f" ({t}.const 0)" for t in results)


def _signature_mutant(ch: Chooser) -> Mutant:
    """A small module with one wrong signature (or a wrong kind) for a known import or export."""
    kind = ch.weighted(
        [("import", 4), ("wasi_import", 1), ("callback", 4), ("allocator", 2), ("entry", 1), ("no_memory", 1), ("memory_import", 1), ("global_import", 1)]
    )
    imports: list[str] = []
    exports: dict[str, str] = {}
    memory = '(memory (export "memory") 1)'
    expect = True
    detail = kind
    if kind in ("import", "wasi_import"):
        table = HOST_FUNCTIONS if kind == "import" else WASI_FUNCTIONS
        module = "env" if kind == "import" else "wasi_snapshot_preview1"
        name = ch.choice(sorted(table))
        p, r = _wrong_sig(ch, table[name].params, table[name].results)
        imports.append(f'(import "{module}" "{name}" (func $imp{_wat_sig(p, r)}))')
        detail = f"{module}.{name} imported as {p} -> {r}"
    elif kind == "callback":
        name = ch.choice(sorted(_CALLBACK_SIGS))
        p, r = _wrong_sig(ch, _CALLBACK_SIGS[name].params, _CALLBACK_SIGS[name].results)
        exports[name] = f'(func (export "{name}"){_wat_sig(p, r)}{_dummy_body(r)})'
        detail = f"{name} exported as {p} -> {r}"
        if name in ("proxy_on_request_headers", "proxy_on_response_headers") and p in (("i32",) * 2, ("i32",) * 3) and r == ("i32",):
            expect = False  # the emulator deliberately calls 2- or 3-argument headers callbacks
    elif kind == "allocator":
        name = ch.choice(["malloc", "proxy_on_memory_allocate"])
        p, r = _wrong_sig(ch, ("i32",), ("i32",))
        exports[name] = f'(func (export "{name}"){_wat_sig(p, r)}{_dummy_body(r)})'
        detail = f"{name} exported as {p} -> {r}"
    elif kind == "entry":
        name = ch.choice(["_initialize", "_start", "main"])
        base = (("i32", "i32"), ("i32",)) if name == "main" else ((), ())
        p, r = _wrong_sig(ch, *base)
        exports[name] = f'(func (export "{name}"){_wat_sig(p, r)}{_dummy_body(r)})'
        detail = f"{name} exported as {p} -> {r}"
    elif kind == "no_memory":
        memory = "(memory 1)"
    elif kind == "memory_import":
        memory = '(import "env" "memory" (memory 1))'
    elif kind == "global_import":
        imports.append(f'(import "env" "{ch.choice(sorted(HOST_FUNCTIONS))}" (global i32))')
    exports.setdefault("malloc", '(func (export "malloc") (param i32) (result i32) (i32.const 1024))')
    exports.setdefault("proxy_on_vm_start", '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))')
    exports.setdefault("proxy_on_configure", '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))')
    exports.setdefault("proxy_on_context_create", '(func (export "proxy_on_context_create") (param i32 i32))')
    exports.setdefault("proxy_abi_version_0_2_1", '(func (export "proxy_abi_version_0_2_1"))')
    wat = "(module\n  " + "\n  ".join([*imports, memory, *exports.values()]) + "\n)"
    return Mutant(wat2wasm(wat), "signature", "<generated>", detail, expect_refused=expect)


MUTANT_MAX_PAGES = 16384
"""1 GiB, cpp-host's default limit: a memory bomb stops there."""


def _mutant_engine(engine: str) -> Any:
    if engine == "wasmer":
        return get_engine("wasmer", EngineConfig(max_memory_pages=MUTANT_MAX_PAGES))
    return get_engine(engine, EngineConfig(epoch=True, max_memory_pages=MUTANT_MAX_PAGES))


def load_mutant(mutant: Mutant, *, engine: str = "wasmtime", deadline_s: float = 2.0, exercise: bool = True) -> MutantResult:
    """Load one mutant the way Envoy would, then (if it started) run one HTTP exchange and ticks."""
    result = MutantResult(mutant)
    eng = _mutant_engine(engine)
    deadlines = engine != "wasmer"
    host = Host(engine=eng, cache=False, trace=False, callback_deadline_s=deadline_s if deadlines else None)
    plugin = None
    try:
        program = Program(eng, mutant.wasm, cache=None, source=f"<{mutant.strategy} of {mutant.source}>")
        vm = host.create_vm(program, vm_id="mutant")
        plugin = host.add_plugin(vm, root_id="", name="mutant")
        result.outcome = "started"
    except ModuleLoadError as exc:
        result.outcome, result.error = "load_error", str(exc).splitlines()[0][:300]
        result.runaway = "interrupt" in str(exc)
    except PluginStartError as exc:
        result.outcome, result.error = "start_error", f"{exc.phase}: {exc.reason.splitlines()[0][:300]}"
        result.runaway = (isinstance(exc.cause, CallbackError) and exc.cause.trap.kind == "interrupt") or "interrupt" in exc.reason.lower()
    except Exception as exc:
        result.outcome, result.error = "other_exception", _escaped("loading", exc)
        result.problems.append(result.error)
    if result.outcome == "started" and mutant.expect_refused:
        result.problems.append(f"a module with a wrong signature started ({mutant.detail}); cpp-host refuses it")
    if plugin is not None and exercise:
        try:
            stream = plugin.http_exchange(
                Request({":method": "POST", ":path": "/m", ":authority": "mutant"}, body="hello", trailers={"x-t": "1"}),
                Response({":status": "200"}, body="ok"),
            )
            host.advance(2500)
            err = stream.error or (plugin.failures[-1] if plugin.failures else None)
            if err is None:
                result.exercise = "ok"
            else:
                result.exercise = "interrupt" if err.trap.kind == "interrupt" else "trap"
                result.runaway = result.runaway or err.trap.kind == "interrupt"
                if err.trap.kind == "host" and not isinstance(err.cause, EmulatorError):
                    result.problems.append(_escaped("a host function raised while exercising", err.cause or err))
        except EmulatorError as exc:
            result.exercise = f"emulator_error:{type(exc).__name__}"
        except Exception as exc:
            result.exercise = "exception"
            result.problems.append(_escaped("exercising a started mutant", exc))
    for vm in host.vms:
        if vm.memory is not None:
            try:
                result.max_memory = max(result.max_memory, vm.memory.size)
            except Exception as exc:
                result.problems.append(_escaped("reading memory size", exc))
    return result


def run_mutation_campaign(
    mutants: int,
    seed: int,
    *,
    engine: str = "wasmtime",
    deadline_s: float = 2.0,
    exercise: bool = True,
    sources: Sequence[Path] | None = None,
    save_last: str | os.PathLike[str] | None = None,
    max_failures: int = 10,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Load ``mutants`` malformed modules; returns the counts.

    ``{"mutants", "load_errors", "start_errors", "started", "crashes", "other_exceptions",
    "problems", "runaway_stopped", "exercise": {...}, "outcomes": {...}, "strategies": {strategy:
    {outcome: n}}, "failures": [...], "seconds", "engine", "seed"}``. ``other_exceptions`` counts
    every exception that is not an emulator error, while loading or while exercising a started
    mutant; ``outcomes`` partitions the mutants (``load_error``, ``start_error``, ``started``,
    ``other_exception``). On wasmer (no deadlines) every mutant is first
    run on wasmtime: one that loops or bombs memory there is only compiled and loaded on wasmer,
    never run (``runaway_skipped``). ``save_last`` writes each mutant to that path before it runs,
    so the input that killed a process can be found.
    """
    ch = RandomChooser(seed)
    outcomes: Counter[str] = Counter()
    exercises: Counter[str] = Counter()
    strategies: dict[str, Counter[str]] = {}
    failures: list[str] = []
    problems = runaway = skipped = 0
    src = list(sources or fixture_modules())
    start = time.perf_counter()
    for i in range(mutants):
        mutant = mutate(ch, src)
        if save_last is not None:
            Path(save_last).write_bytes(mutant.wasm)
        run_it = True
        if engine == "wasmer" and not screen_on_wasmtime(mutant, deadline_s=deadline_s):
            run_it = False
            skipped += 1
        result = load_mutant(mutant, engine=engine, deadline_s=deadline_s, exercise=run_it) if run_it or engine != "wasmer" else _load_only(mutant, engine)
        outcomes[result.outcome] += 1
        if result.exercise:
            exercises[result.exercise] += 1
        runaway += result.runaway
        strategies.setdefault(mutant.strategy, Counter())[result.outcome] += 1
        problems += len(result.problems)
        if result.problems and len(failures) < max_failures:
            failures.append(f"mutant {i} ({mutant.strategy} of {mutant.source}: {mutant.detail}):\n" + "\n".join(result.problems))
        if progress is not None and (i + 1) % 100 == 0:
            progress({"mutants": i + 1, **outcomes, "problems": problems})
    return {
        "engine": engine,
        "seed": seed,
        "mutants": mutants,
        "load_errors": outcomes["load_error"],
        "start_errors": outcomes["start_error"],
        "started": outcomes["started"],
        "crashes": 0,
        "other_exceptions": outcomes["other_exception"] + exercises["exception"],
        "linked_not_run": outcomes["linked_not_run"],
        "outcomes": dict(outcomes.most_common()),
        "problems": problems,
        "runaway_stopped": runaway,
        "runaway_skipped": skipped,
        "exercise": dict(exercises.most_common()),
        "strategies": {k: dict(v.most_common()) for k, v in sorted(strategies.items())},
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 2),
    }


def screen_on_wasmtime(mutant: Mutant, *, deadline_s: float = 2.0) -> bool:
    """Whether a mutant is safe to run on an engine without deadlines: on wasmtime it neither hits
    the deadline (an endless loop) nor grows its memory past 256 MiB."""
    pre = load_mutant(mutant, engine="wasmtime", deadline_s=deadline_s)
    return not pre.runaway and pre.max_memory <= 256 << 20


def _load_only(mutant: Mutant, engine: str) -> MutantResult:
    """Compile and link on ``engine`` without running any guest code (wasmer, for runaway mutants)."""
    result = MutantResult(mutant, exercise="not run (it runs away on wasmtime)")
    try:
        Program(_mutant_engine(engine), mutant.wasm, cache=None, source=f"<{mutant.strategy} of {mutant.source}>")
        result.outcome = "linked_not_run"
    except ModuleLoadError as exc:
        result.outcome, result.error = "load_error", str(exc).splitlines()[0]
    except Exception as exc:
        result.outcome, result.error = "other_exception", _escaped("compiling", exc)
        result.problems.append(result.error)
    return result
