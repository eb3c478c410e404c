"""Guest coverage: a rewrite of the code section that marks every basic block the guest enters.

Each probe is three instructions, ``i32.const <site>; i32.const 1; i32.store8 <coverage memory>``,
writing into a memory of its own (index after the module's memories, exported as
``__coverage``, one byte per site), so a run costs no host call per branch and the host reads
all sites in one view after the run. Probes go where a basic block starts: the entry of every
function, the body of every ``loop``, ``if`` and ``else``, after every ``end`` of a block (a join),
after ``br_if``, ``br_on_null``/``br_on_non_null`` and the GC casts that may fall through, and at
every ``catch`` of exception handling. Probes leave the stack as they found it, so they fit at any
instruction boundary.

The instructions are decoded only far enough to find their ends (:mod:`emulator.vm.instructions`);
a byte that reader does not know stops the rewrite with :class:`CoverageError` naming it. Needs an engine with multi-memory (wasmtime; not wasmer 2.1).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path

from abi.leb128 import encode_uleb
from abi.records import field, record

from .instructions import skip_immediates
from .module import ModuleInfo, _Reader, parse_module

__all__ = ["COVERAGE_EXPORT", "INSTRUMENTATION_VERSION", "CoverageError", "CoverageMap", "bitmap_bits", "covered_sites", "instrument", "read_comparisons"]

COVERAGE_EXPORT = "__coverage"


def _instrumentation_version() -> int:
    try:
        return zlib.crc32(Path(__file__).read_bytes() + (Path(__file__).parent / "instructions.py").read_bytes())
    except OSError:  # sources not on disk (a zipped install): the package version stands in
        from importlib.metadata import PackageNotFoundError, version

        try:
            return zlib.crc32(version("proxy-wasm-emulator").encode())
        except PackageNotFoundError:
            return 0


INSTRUMENTATION_VERSION = _instrumentation_version()
"""Part of the module cache's key for instrumented modules and their coverage maps: a change to
the probes (this file) or to the decoder compiles the module again."""


_HIT = re.compile(rb"[^\x00]")  # a site the guest entered: scanned in C, not byte by byte


def covered_sites(bitmaps: Sequence[bytes]) -> frozenset[tuple[int, int]]:
    """The sites entered, as ``(VM position, site)``, of the coverage bitmaps of several VMs."""
    return frozenset((k, m.start()) for k, bitmap in enumerate(bitmaps) for m in _HIT.finditer(bitmap))


def bitmap_bits(bitmap: bytes) -> int:
    """A coverage bitmap as an int with bit ``8 * i`` set when site ``i`` was entered (a probe
    stores 1, see :func:`_probe`, in a memory the guest's own code cannot address): novelty is
    ``bits & ~seen``, union ``|``, the count ``int.bit_count``, each in C (the set of the sites a
    Go filter's request entered cost 0.7 ms to build; this, 25 µs)."""
    return int.from_bytes(bitmap, "little")


class CoverageError(ValueError):
    """The module cannot be instrumented (names the function and the byte)."""


@record
class CoverageMap:
    """Where the sites are: ``sites[i] == (function index, offset of the probe's instruction in the
    original module)``, and the function names for reports."""

    sites: list[tuple[int, int]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    comparisons: int | None = None
    """Where the comparison ring starts in the coverage memory (``None``: no comparison function
    was found to probe); see :func:`read_comparisons`."""

    def describe(self, site: int) -> str:
        """``function+0xoffset`` of a site."""
        func, offset = self.sites[site]
        return f"{self.names.get(func, f'<func {func}>')}+0x{offset:x}"


# opcodes after which a new basic block starts (a probe follows the instruction)
_PROBE_AFTER = {0x03, 0x04, 0x05, 0x0B, 0x0D, 0xD5, 0xD6, 0x07, 0x19}
_BLOCK_STARTS = {0x02, 0x03, 0x04, 0x06, 0x1F}  # block, loop, if, try, try_table: push a label


# Comparison capture: the C library's byte comparisons, found by name, (i32 a, i32 b, i32 n) -> i32,
# and Go's runtime.memequal (its arguments on Go's stack).
# At their entry a probe copies up to _CMP_BYTES of both operands into a ring in the coverage
# memory, so the fuzzer learns what the filter compared its input with (a configured token, say).
_CMP_FUNCTIONS = frozenset({"memcmp", "bcmp"})
_CMP_BYTES = 32
_CMP_SLOTS = 64
_CMP_SLOT = 4 + 2 * _CMP_BYTES  # n, then the operands


def instrument(wasm: bytes, info: ModuleInfo | None = None) -> tuple[bytes, CoverageMap]:
    """The module with coverage probes and its ``__coverage`` memory, and where the sites are."""
    info = info or parse_module(wasm)
    code = next((s for s in info.sections if s.id == 10), None)
    cov_index = len(info.memories)
    names = dict(info.function_names)
    cmap = CoverageMap(names=names)
    types = info.function_types
    compared: dict[int, tuple[bytes, bytes, bytes]] = {}
    for i, name in names.items():
        ty = types[i] if i < len(types) else None
        if name in _CMP_FUNCTIONS and ty == (("i32",) * 3, ("i32",)):
            compared[i] = _LOCALS
        elif name == "runtime.memequal" and ty == (("i32",), ("i32",)):
            compared[i] = _go_args()
    bodies = b""
    if code is not None:
        count = _Reader(wasm, code.start, code.end).uleb()
        ring = -(-_probe_count_bound(wasm, code.start, code.end) // 16) * 16 if compared else 0
        r = _Reader(wasm, code.start, code.end)
        count = r.uleb()
        out = bytearray(encode_uleb(count))
        for i in range(count):
            size = r.uleb()
            start = r.pos
            func = info.num_imported_functions + i
            body = _instrument_body(wasm, start, start + size, func, cov_index, cmap, (ring, compared[func]) if func in compared else None)
            out += encode_uleb(len(body)) + body
            r.pos = start + size
        bodies = bytes(out)
        if compared:
            cmap.comparisons = ring
    end = len(cmap.sites) if cmap.comparisons is None else cmap.comparisons + 16 + _CMP_SLOTS * _CMP_SLOT
    pages = max(1, -(-end // 65536))
    memory_type = b"\x01" + encode_uleb(pages) + encode_uleb(pages)
    export_entry = encode_uleb(len(COVERAGE_EXPORT)) + COVERAGE_EXPORT.encode() + b"\x02" + encode_uleb(cov_index)
    return _rebuild(wasm, info, bodies, memory_type, export_entry), cmap


def _section(sid: int, content: bytes) -> bytes:
    return bytes([sid]) + encode_uleb(len(content)) + content


def _rebuild(wasm: bytes, info: ModuleInfo, bodies: bytes, memory_type: bytes, export_entry: bytes) -> bytes:
    """The sections again, with the code replaced, one memory added and its export added."""
    from .module import SECTION_ORDER

    rank = {sid: i for i, sid in enumerate(SECTION_ORDER)}
    out = bytearray(wasm[:8])
    added_memory = added_export = False
    prev_end = 8
    for sec in info.sections:
        header = wasm[prev_end : sec.start]  # id + size bytes of this section
        prev_end = sec.end
        if sec.id != 0:
            if not added_memory and rank[sec.id] > rank[5]:
                out += _section(5, b"\x01" + memory_type)
                added_memory = True
            if not added_export and rank[sec.id] > rank[7]:
                out += _section(7, b"\x01" + export_entry)
                added_export = True
        content = wasm[sec.start : sec.end]
        if sec.id == 5:
            r = _Reader(wasm, sec.start, sec.end)
            n = r.uleb()
            out += _section(5, encode_uleb(n + 1) + wasm[r.pos : sec.end] + memory_type)
            added_memory = True
        elif sec.id == 7:
            r = _Reader(wasm, sec.start, sec.end)
            n = r.uleb()
            out += _section(7, encode_uleb(n + 1) + wasm[r.pos : sec.end] + export_entry)
            added_export = True
        elif sec.id == 10:
            out += _section(10, bodies)
        else:
            out += header + content
    if not added_memory:
        out += _section(5, b"\x01" + memory_type)
    if not added_export:
        out += _section(7, b"\x01" + export_entry)
    return bytes(out)


def _probe(site: int, cov_index: int) -> bytes:
    # i32.const site; i32.const 1; i32.store8 {align 0, memory cov_index, offset 0}
    return b"\x41" + _sleb(site) + b"\x41\x01\x3a\x40" + encode_uleb(cov_index) + b"\x00"


_LOCALS = (b"\x20\x00", b"\x20\x01", b"\x20\x02")
"""``local.get 0, 1, 2``: the operands of a C ``memcmp``/``bcmp``."""


def _go_stack_argument(slot: int) -> bytes:
    """The ``slot``-th 8-byte argument of a Go function, read at entry from Go's stack:
    ``i64.load(SP + 8 * (slot + 1))`` wrapped to i32 (SP is global 0; the return address is at SP)."""
    return b"\x23\x00" + b"\x41" + _sleb(8 * (slot + 1)) + b"\x6a" + b"\x29\x03\x00" + b"\xa7"


def _go_args() -> tuple[bytes, bytes, bytes]:
    """``runtime.memequal(a, b unsafe.Pointer, size uintptr)`` under Go's wasm calling convention."""
    return (_go_stack_argument(0), _go_stack_argument(1), _go_stack_argument(2))


def _comparison_probe(ring: int, cov: int, operands: tuple[bytes, bytes, bytes] = _LOCALS) -> bytes:
    """Copy ``n`` and up to ``_CMP_BYTES`` bytes of both operands (``operands``: code that pushes
    ``a``, ``b`` and ``n``) into the next slot of the ring, then count the slot."""
    a, b, n = operands
    mem = encode_uleb(cov)

    def load_counter() -> bytes:  # i32.load (memory cov) offset 0 of i32.const ring
        return b"\x41" + _sleb(ring) + b"\x28\x42" + mem + b"\x00"

    slot = (
        b"\x41" + _sleb(ring + 16) + load_counter() + b"\x41" + _sleb(_CMP_SLOTS - 1) + b"\x71"  # i32.and
        + b"\x41" + _sleb(_CMP_SLOT) + b"\x6c" + b"\x6a"  # i32.mul, i32.add
    )  # fmt: skip
    clamp = n + b"\x41" + _sleb(_CMP_BYTES) + n + b"\x41" + _sleb(_CMP_BYTES) + b"\x49" + b"\x1b"  # select(n, 32, n < 32)
    copy = b"\xfc\x0a" + mem + b"\x00"  # memory.copy (dst: coverage memory) (src: memory 0)
    out = bytearray()
    out += slot + n + b"\x36\x42" + mem + b"\x00"  # i32.store n
    out += slot + b"\x41\x04\x6a" + a + clamp + copy
    out += slot + b"\x41" + _sleb(4 + _CMP_BYTES) + b"\x6a" + b + clamp + copy
    out += b"\x41" + _sleb(ring) + load_counter() + b"\x41\x01\x6a" + b"\x36\x42" + mem + b"\x00"  # counter += 1
    return bytes(out)


def read_comparisons(view: bytes, ring: int) -> list[tuple[bytes, bytes]]:
    """The operands the probed comparisons saw since the ring was cleared (the most recent
    ``_CMP_SLOTS``), each cut to the compared length."""
    count = int.from_bytes(view[ring : ring + 4], "little")
    out = []
    for k in range(max(0, count - _CMP_SLOTS), count):
        at = ring + 16 + (k % _CMP_SLOTS) * _CMP_SLOT
        n = min(int.from_bytes(view[at : at + 4], "little"), _CMP_BYTES)
        out.append((bytes(view[at + 4 : at + 4 + n]), bytes(view[at + 4 + _CMP_BYTES : at + 4 + _CMP_BYTES + n])))
    return out


def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _probe_count_bound(wasm: bytes, start: int, end: int) -> int:
    """An upper bound of the number of probes: one per function plus one per instruction byte
    (the ring must start after the last site, and is placed before the sites are counted)."""
    return end - start + 1


def _instrument_body(
    wasm: bytes, start: int, end: int, func: int, cov_index: int, cmap: CoverageMap, ring: tuple[int, tuple[bytes, bytes, bytes]] | None = None
) -> bytes:
    r = _Reader(wasm, start, end)
    for _ in range(r.uleb()):  # local declarations: count, type
        r.uleb()
        r.valtype()
    out = bytearray(wasm[start : r.pos])

    def probe(at: int) -> None:
        cmap.sites.append((func, at))
        out.extend(_probe(len(cmap.sites) - 1, cov_index))

    if ring is not None:
        out.extend(_comparison_probe(ring[0], cov_index, ring[1]))
    probe(r.pos)
    depth = 1
    while r.pos < end:
        at = r.pos
        op = r.byte()
        try:
            skip_immediates(r, op)
        except Exception as exc:
            raise CoverageError(f"function {func}: cannot decode the instruction at byte {at} (opcode 0x{op:02x}): {exc}") from None
        out += wasm[at : r.pos]
        if op in _BLOCK_STARTS:
            depth += 1
        elif op == 0x0B:
            depth -= 1
            if depth == 0:
                if r.pos != end:
                    raise CoverageError(f"function {func}: bytes after the final end")
                return bytes(out)
        if op in _PROBE_AFTER or (op == 0xFB and wasm[at + 1] in (24, 25)):
            probe(r.pos)
    raise CoverageError(f"function {func}: body ends without its final end")
