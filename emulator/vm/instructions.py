"""WebAssembly instructions, decoded only far enough to find where each ends and read constants.

Every opcode of WebAssembly 3.0 and its phase-4 proposals is known. The coverage rewrite
(:mod:`emulator.vm.coverage`) walks function bodies with :func:`skip_immediates`; the fuzzer's
dictionary reads the constants the code holds with :func:`code_constants`.
"""

from __future__ import annotations

from collections.abc import Iterator

from .module import ModuleInfo, _Reader, parse_module

__all__ = ["code_constants", "nearby_pairs", "skip_immediates"]

_NO_IMMEDIATE = set(range(0x45, 0xC5)) | {0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4}
_U32_IMMEDIATE = {0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x3F, 0x40, 0xD2, 0xD5, 0xD6, 0x07, 0x08, 0x09, 0x18}
_SIMD_MEMARG = set(range(0, 12)) | {92, 93}
_SIMD_LANE = set(range(21, 35))
_SIMD_MEMARG_LANE = set(range(84, 92))
_GC_ONE = {0, 1, 6, 7, 11, 12, 13, 14, 16}
_GC_TWO = {2, 3, 4, 5, 8, 9, 10, 17, 18, 19}


def code_constants(wasm: bytes, info: ModuleInfo | None = None) -> list[tuple[int, int, int]]:
    """``(value, position, function index)`` of every ``i32.const`` and ``i64.const`` in the
    module's function bodies, in code order; positions count instructions, with a gap between
    bodies so that constants of different bodies are never near each other.

    Compilers load the address of a string literal with such a constant, and its length with
    another close by (Go stores both to its stack, Rust and C pass both to a call), so these say
    where literals are even when a toolchain packs them back to back (see :func:`nearby_pairs`).
    """
    return list(_constants(wasm, info))


def nearby_pairs(constants: list[tuple[int, int, int]], *, within: int = 8, ahead: int = 3) -> dict[tuple[int, int], set[int]]:
    """``(a, b)`` for every constant ``a`` and each of the next ``ahead`` constants ``b`` at most
    ``within`` instructions later (from :func:`code_constants`), with the functions they are in."""
    pairs: dict[tuple[int, int], set[int]] = {}
    for i, (a, at, func) in enumerate(constants):
        for b, bt, _ in constants[i + 1 : i + 1 + ahead]:
            if bt - at > within:
                break
            pairs.setdefault((a, b), set()).add(func)
    return pairs


def _constants(wasm: bytes, info: ModuleInfo | None) -> Iterator[tuple[int, int, int]]:
    """``(value, instruction number)`` of every integer constant, numbered across the module so
    that constants of different bodies are never adjacent. A body this reader cannot decode is
    left from the instruction it stops at."""
    info = info or parse_module(wasm)
    code = next((s for s in info.sections if s.id == 10), None)
    if code is None:
        return
    r = _Reader(wasm, code.start, code.end)
    count = 0
    for body in range(r.uleb()):
        func = info.num_imported_functions + body
        size = r.uleb()
        end = r.pos + size
        count += 1 << 10  # a gap wider than any pairing distance
        try:
            for _ in range(r.uleb()):  # local declarations: count, type
                r.uleb()
                r.valtype()
            while r.pos < end:
                op = r.byte()
                count += 1
                if op == 0x41:
                    yield r.sleb(32), count, func
                elif op == 0x42:
                    yield r.sleb(64), count, func
                else:
                    skip_immediates(r, op)
        except (ValueError, IndexError):  # an instruction this reader does not know: skip the rest of the body
            pass
        r.pos = end


def _blocktype(r: _Reader) -> None:
    b = r.peek()
    if b == 0x40:
        r.pos += 1
    elif b in (0x7F, 0x7E, 0x7D, 0x7C, 0x7B) or b in range(0x63, 0x76):
        r.valtype()
    else:
        r.sleb(33)


def _memarg(r: _Reader) -> None:
    flags = r.uleb()
    if flags & 0x40:
        r.uleb()
    r.u64()


def skip_immediates(r: _Reader, op: int) -> None:
    """Move ``r`` past the immediates of the instruction whose opcode ``op`` was just read
    (``ValueError`` for an opcode this reader does not know)."""
    if op in _NO_IMMEDIATE:
        return
    if op in _U32_IMMEDIATE:
        r.uleb()
    elif op in (0x02, 0x03, 0x04, 0x06):
        _blocktype(r)
    elif op == 0x1F:  # try_table
        _blocktype(r)
        for _ in range(r.uleb()):
            kind = r.byte()
            if kind in (0, 1):
                r.uleb()
            r.uleb()
    elif op == 0x0E:  # br_table
        for _ in range(r.uleb()):
            r.uleb()
        r.uleb()
    elif op in (0x11, 0x13):  # call_indirect, return_call_indirect
        r.uleb()
        r.uleb()
    elif op == 0x1C:  # select t*
        for _ in range(r.uleb()):
            r.valtype()
    elif 0x28 <= op <= 0x3E:
        _memarg(r)
    elif op == 0x41:
        r.sleb(32)
    elif op == 0x42:
        r.sleb(64)
    elif op == 0x43:
        r.bytes_(4)
    elif op == 0x44:
        r.bytes_(8)
    elif op == 0xD0:
        r.heaptype()
    elif op == 0xFC:
        sub = r.uleb()
        if sub in (8, 12, 14) or sub == 10:
            r.uleb()
            r.uleb()
        elif sub in (9, 11, 13, 15, 16, 17):
            r.uleb()
        elif sub > 22:
            raise ValueError(f"unknown 0xfc instruction {sub}")
    elif op == 0xFD:
        sub = r.uleb()
        if sub in _SIMD_MEMARG:
            _memarg(r)
        elif sub in (12, 13):
            r.bytes_(16)
        elif sub in _SIMD_LANE:
            r.byte()
        elif sub in _SIMD_MEMARG_LANE:
            _memarg(r)
            r.byte()
    elif op == 0xFB:
        sub = r.uleb()
        if sub in _GC_ONE:
            r.uleb()
        elif sub in _GC_TWO:
            r.uleb()
            r.uleb()
        elif sub in (20, 21, 22, 23):
            r.heaptype()
        elif sub in (24, 25):
            r.byte()
            r.uleb()
            r.heaptype()
            r.heaptype()
        elif sub > 30:
            raise ValueError(f"unknown 0xfb instruction {sub}")
    elif op == 0xFE:
        sub = r.uleb()
        if sub == 3:
            r.byte()
        else:
            _memarg(r)
    else:
        raise ValueError(f"unknown opcode 0x{op:02x}")
