"""A pure-Python reader of a wasm module's outline: types, imports, exports, memories, sections.

It lets the emulator inspect a filter, detect its ABI and report link problems before any engine
compiles it, and it gives a clear error for a file that is not a wasm module at all.

It reads the binary format of WebAssembly 3.0 (the section order of the spec, not of section
ids: DataCount sits between element and code, tag between memory and global) with the
encodings of every phase-4 proposal that changes a module's outline (GC types and reference
types, memory64, shared memories, multi-memory, tags, extended constant expressions). It checks
the structure it reads (section order and sizes, LEB128 widths, counts that must agree, index
ranges, duplicate export names); checking instructions is the engine's job at compile time, and
:func:`emulator.inspect.inspect_module` asks the engine for that too. The test oracle is
``wasm-tools validate`` (tests/unit/test_wasm_oracle.py).
"""

from __future__ import annotations

import zlib
from typing import Any

from abi.records import field, record, record_fields, record_values
from abi.versions import FuncType

__all__ = [
    "OUTLINE_VERSION",
    "SECTION_NAMES",
    "SECTION_ORDER",
    "Export",
    "Import",
    "Memory",
    "ModuleFormatError",
    "ModuleInfo",
    "Section",
    "outline_data",
    "outline_from_data",
    "parse_module",
]

_NUMTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
# abstract heap types: byte -> name; the one-byte reference type shorthand is "<name>ref"
_HEAPTYPES = {
    0x70: "func", 0x6F: "extern", 0x6E: "any", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct", 0x6A: "array",
    0x71: "none", 0x72: "noextern", 0x73: "nofunc", 0x69: "exn", 0x74: "noexn", 0x68: "cont", 0x75: "nocont",
}  # fmt: skip
_SHORTHAND = {b: ("nullref" if n == "none" else f"null{n[2:]}ref" if n.startswith("no") else f"{n}ref") for b, n in _HEAPTYPES.items()}
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
    7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount", 13: "tag",
}  # fmt: skip
# The order the spec requires of non-custom sections (each at most once), by section id.
SECTION_ORDER = (1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11)
_RANK = {sid: i for i, sid in enumerate(SECTION_ORDER)}


class ModuleFormatError(ValueError):
    """The bytes are not a well-formed wasm module (names the offset and what was wrong)."""


@record(frozen=True)
class Import:
    """One import: ``module.name`` of a kind, with its function type for functions."""

    module: str
    name: str
    kind: str
    type: FuncType | None = None


@record(frozen=True)
class Export:
    """One export: name, kind and, for functions, the function type."""

    name: str
    kind: str
    type: FuncType | None = None
    index: int = 0


@record(frozen=True)
class Memory:
    """One linear memory: limits in pages, and whether it is imported, shared or 64-bit."""

    minimum: int
    maximum: int | None
    imported: bool = False
    shared: bool = False
    is64: bool = False


@record(frozen=True)
class Section:
    """Where one section's content lies in the module: ``data[start:end]`` (custom: ``name``)."""

    id: int
    start: int
    end: int
    name: str = ""


@record
class ModuleInfo:
    """The outline of a module as far as a proxy-wasm host cares."""

    size: int
    imports: list[Import] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    memory_limits: tuple[int, int | None] | None = None
    memory_imported: bool = False
    memories: list[Memory] = field(default_factory=list)
    has_start_section: bool = False
    has_datacount_section: bool = False
    custom_sections: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    producers: dict[str, list[str]] = field(default_factory=dict)
    num_imported_functions: int = 0
    num_imported_globals: int = 0
    mutable_globals: int = 0
    mutable_global_indices: list[int] = field(default_factory=list)
    data_segments: list[tuple[int, int]] = field(default_factory=list)
    data_addresses: list[int | None] = field(default_factory=list)
    """Where each data segment goes in linear memory (``None``: passive, or an offset that is not a
    plain constant), parallel to :attr:`data_segments`."""
    function_types: list[FuncType | None] = field(default_factory=list)
    """``(params, results)`` of every function, imported ones first (``None``: not a function type)."""
    proposals: set[str] = field(default_factory=set)
    """Post-MVP proposals the outline shows (``compact-imports``, ``gc``, ``exceptions``, ``memory64``, ...)."""
    _name_section: bytes | None = field(default=None, repr=False)
    _names: dict[int, str] | None = field(default=None, repr=False)

    @property
    def function_names(self) -> dict[int, str]:
        """Function index to name, from the ``name`` section (read on first use: Go's is large)."""
        if self._names is None:
            self._names = {}
            if self._name_section is not None:
                _read_names(_Reader(self._name_section), self._names)
        return self._names

    def export_types(self) -> dict[str, FuncType | None]:
        """Export name to function type (``None`` for non-functions), in export order."""
        return {e.name: e.type for e in self.exports}

    def import_names(self) -> list[tuple[str, str]]:
        """``(module, name)`` of every function import, in order, duplicates kept."""
        return [(i.module, i.name) for i in self.imports if i.kind == "func"]

    def exported_memory(self) -> Memory | None:
        """The memory the module exports (the one a proxy-wasm host reads and writes), if any."""
        for e in self.exports:
            if e.kind == "memory" and e.index < len(self.memories):
                return self.memories[e.index]
        return None


_NESTED: dict[str, type] = {"imports": Import, "exports": Export, "memories": Memory, "sections": Section}
"""The outline's fields that hold records, and their class."""


def outline_data(info: ModuleInfo) -> dict[str, Any]:
    """The outline as plain data (the module cache stores it with ``marshal``)."""
    data = {f.name: getattr(info, f.name) for f in record_fields(ModuleInfo)}
    for name in _NESTED:
        data[name] = [record_values(x) for x in data[name]]
    return data


def outline_from_data(data: dict[str, Any]) -> ModuleInfo:
    """The outline :func:`outline_data` gave (``TypeError`` or ``KeyError`` for other data)."""
    fields = dict(data)
    for name, cls in _NESTED.items():
        fields[name] = [cls(*values) for values in fields[name]]
    return ModuleInfo(**fields)


# Part of the module cache's key for outlines: a cached outline of another shape is not reused.
OUTLINE_VERSION = zlib.crc32(",".join(f"{f.name}:{f.type}" for f in record_fields(ModuleInfo)).encode())


class _Reader:
    """A cursor over ``data[pos:end]`` that reads the binary format's primitives."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def fail(self, what: str) -> ModuleFormatError:
        return ModuleFormatError(f"malformed wasm module at byte {self.pos}: {what}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of data")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def peek(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of data")
        return self.data[self.pos]

    def _leb(self, bits: int, signed: bool) -> int:
        max_bytes = (bits + 6) // 7
        result = shift = 0
        for i in range(max_bytes):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if i == max_bytes - 1:
                    # the unused high bits of the last byte must be zeros (or, signed, copies of the sign)
                    used = bits - 7 * i
                    rest = (b & 0x7F) >> (used - (1 if signed else 0))
                    if rest not in ((0, (0x7F >> (used - 1))) if signed else (0,)):
                        self.pos -= 1
                        raise self.fail(f"integer too large for {'s' if signed else 'u'}{bits}")
                if signed and b & 0x40:
                    result -= 1 << shift
                return result
        self.pos -= 1
        raise self.fail(f"integer representation too long (more than {max_bytes} bytes for {bits} bits)")

    def uleb(self) -> int:
        """A ``u32`` (counts, sizes, indices)."""
        return self._leb(32, False)

    def u64(self) -> int:
        return self._leb(64, False)

    def sleb(self, bits: int) -> int:
        return self._leb(bits, True)

    def bytes_(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise self.fail(f"needs {n} bytes, only {self.end - self.pos} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def name(self) -> str:
        raw = self.bytes_(self.uleb())
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise self.fail("name is not valid UTF-8") from exc

    def heaptype(self) -> str:
        b = self.peek()
        if b in _HEAPTYPES:
            self.pos += 1
            return _HEAPTYPES[b]
        if b == 0x65:  # shared-everything-threads: shared abstract heap type
            self.pos += 1
            b = self.byte()
            if b not in _HEAPTYPES:
                raise self.fail(f"unknown heap type 0x{b:02x}")
            return f"shared {_HEAPTYPES[b]}"
        idx = self.sleb(33)
        if idx < 0:
            raise self.fail(f"unknown heap type 0x{b:02x}")
        return str(idx)

    def valtype(self) -> str:
        b = self.byte()
        if b in _NUMTYPES:
            return _NUMTYPES[b]
        if b in _SHORTHAND:
            return _SHORTHAND[b]
        if b in (0x63, 0x64):
            return f"(ref {'null ' if b == 0x63 else ''}{self.heaptype()})"
        self.pos -= 1
        raise self.fail(f"unknown value type 0x{b:02x}")

    def limits(self, what: str, *, memory: bool) -> tuple[int, int | None, bool, bool]:
        """``(min, max, shared, is64)`` of a memory or table type."""
        flags = self.byte()
        allowed = 0x0F if memory else 0x05
        if flags & ~allowed:
            self.pos -= 1
            raise self.fail(f"unknown {what} limits flags 0x{flags:02x}")
        is64, shared = bool(flags & 4), bool(flags & 2)
        read = self.u64 if is64 else self.uleb
        lo = read()
        hi = read() if flags & 1 else None
        if flags & 8:
            self.uleb()  # custom-page-sizes: log2 of the page size
        return lo, hi, shared, is64

    def table_type(self) -> None:
        self.valtype()
        self.limits("table", memory=False)

    def const_expr(self) -> None:
        """Skip a constant expression (through its ``end``), with the extended-const and GC forms."""
        while True:
            op = self.byte()
            if op == 0x0B:
                return
            if op == 0x41:
                self.sleb(32)
            elif op == 0x42:
                self.sleb(64)
            elif op == 0x43:
                self.bytes_(4)
            elif op == 0x44:
                self.bytes_(8)
            elif op in (0x23, 0xD2):
                self.uleb()
            elif op == 0xD0:
                self.heaptype()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):
                pass
            elif op == 0xFD and self.uleb() == 12:  # v128.const
                self.bytes_(16)
            elif op == 0xFB:
                sub = self.uleb()
                if sub in (0, 1, 6, 7):  # struct.new(_default), array.new(_default)
                    self.uleb()
                elif sub == 8:  # array.new_fixed
                    self.uleb()
                    self.uleb()
                elif sub not in (26, 27, 28):  # any.convert_extern, extern.convert_any, ref.i31
                    raise self.fail(f"opcode 0xfb {sub} is not allowed in a constant expression")
            else:
                raise self.fail(f"opcode 0x{op:02x} is not allowed in a constant expression")


def parse_module(data: bytes) -> ModuleInfo:
    """Read the outline of a wasm binary; raise :class:`ModuleFormatError` if it is malformed."""
    data = bytes(data)
    if len(data) < 8:
        raise ModuleFormatError(f"not a wasm module: {len(data)} bytes is shorter than the 8-byte header")
    if data[:4] != b"\0asm":
        hint = " (it looks like WebAssembly text: compile it with wat2wasm first)" if data.lstrip()[:1] == b"(" else ""
        raise ModuleFormatError(f"not a wasm module: missing the \\0asm magic bytes{hint}")
    if data[4:6] == b"\x0d\x00" and data[6:8] in (b"\x01\x00", b"\x00\x00"):
        raise ModuleFormatError("this is a WebAssembly component (component model), not a core module: proxy-wasm filters are core modules")
    if data[4:8] != b"\x01\0\0\0":
        raise ModuleFormatError(f"unsupported wasm binary version {data[4:8].hex()} (only version 1 modules are proxy-wasm filters)")
    return _Parser(data).run()


class _Parser:
    """One pass over the sections, filling a :class:`ModuleInfo`."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.info = ModuleInfo(size=len(data))
        self.types: list[FuncType | None] = []  # None: a struct or array type
        self.func_types: list[int] = []
        self.counts = {"table": 0, "global": 0, "tag": 0}
        self.code_count: int | None = None
        self.data_count: int | None = None

    def run(self) -> ModuleInfo:
        data, info = self.data, self.info
        r = _Reader(data, 8)
        for sid, start, end in self._headers(r):
            s = _Reader(data, start, end)
            name = self._section(sid, s)
            info.sections.append(Section(sid, start, end, name))
            if sid not in (0, 9) and s.pos != s.end:
                raise s.fail(f"{SECTION_NAMES[sid]} section size mismatch: {s.end - s.pos} unread byte(s) at its end")
        if self.code_count is None and len(self.func_types) > info.num_imported_functions:
            raise r.fail(f"{len(self.func_types) - info.num_imported_functions} function(s) declared but no code section")
        if self.data_count is not None and self.data_count != len(info.data_segments):
            raise r.fail(f"datacount section says {self.data_count} data segment(s), the data section has {len(info.data_segments)}")
        info.proposals |= {"memory64"} if any(m.is64 for m in info.memories) else set()
        info.proposals |= {"threads"} if any(m.shared for m in info.memories) else set()
        info.proposals |= {"multi-memory"} if len(info.memories) > 1 else set()
        info.memory_limits = (info.memories[0].minimum, info.memories[0].maximum) if info.memories else None
        info.memory_imported = bool(info.memories) and info.memories[0].imported
        info.function_types = [self.types[t] if t < len(self.types) else None for t in self.func_types]
        return info

    @staticmethod
    def _headers(r: _Reader) -> list[tuple[int, int, int]]:
        """``(id, start, end)`` of every section, with the ids and their order checked first."""
        out = []
        last = -1
        while r.pos < r.end:
            header = r.pos
            sid = r.byte()
            size = r.uleb()
            start = r.pos
            what = SECTION_NAMES.get(sid, f"section {sid}")
            if start + size > r.end:
                raise r.fail(f"{what} section of {size} bytes runs past the end of the file")
            if sid != 0:
                r.pos = header
                if sid not in _RANK:
                    raise r.fail(f"unknown section id {sid}")
                rank = _RANK[sid]
                if rank == last:
                    raise r.fail(f"duplicate {what} section")
                if rank < last:
                    after = SECTION_NAMES[SECTION_ORDER[last]]
                    raise r.fail(f"{what} section out of order: it must come before the {after} section (spec order: {_order_text()})")
                last = rank
            out.append((sid, start, start + size))
            r.pos = start + size
        return out

    def _section(self, sid: int, s: _Reader) -> str:
        info = self.info
        if sid == 0:
            name = s.name()
            info.custom_sections.append(name)
            if name == "producers":
                _read_producers(s, info)
            elif name == "name":
                info._name_section = self.data[s.pos : s.end]
            s.pos = s.end
            return name
        if sid == 1:
            for _ in range(s.uleb()):
                self._rec_type(s)
        elif sid == 2:
            self._imports(s)
        elif sid == 3:
            for _ in range(s.uleb()):
                self.func_types.append(self._type_index(s, "function"))
        elif sid == 4:
            for _ in range(s.uleb()):
                if s.peek() == 0x40:
                    s.pos += 1
                    if s.byte() != 0:
                        raise s.fail("malformed table: expected 0x00 after 0x40")
                    s.table_type()
                    s.const_expr()
                else:
                    s.table_type()
                self.counts["table"] += 1
        elif sid == 5:
            for _ in range(s.uleb()):
                lo, hi, shared, is64 = s.limits("memory", memory=True)
                info.memories.append(Memory(lo, hi, False, shared, is64))
        elif sid == 13:
            for _ in range(s.uleb()):
                self._tag_type(s)
                self.counts["tag"] += 1
        elif sid == 6:
            for _ in range(s.uleb()):
                if self._global_type(s):
                    info.mutable_globals += 1
                    info.mutable_global_indices.append(self.counts["global"])
                self.counts["global"] += 1
                s.const_expr()
        elif sid == 7:
            self._exports(s)
        elif sid == 8:
            info.has_start_section = True
            idx = s.uleb()
            if idx >= len(self.func_types):
                raise s.fail(f"start function {idx} is not defined")
        elif sid == 9:
            s.pos = s.end  # element segments: checked by the engine
        elif sid == 12:
            info.has_datacount_section = True
            self.data_count = s.uleb()
        elif sid == 10:
            n = s.uleb()
            defined = len(self.func_types) - info.num_imported_functions
            if n != defined:
                raise s.fail(f"the code section has {n} function bodies, the function section declares {defined}")
            for _ in range(n):
                s.bytes_(s.uleb())
            self.code_count = n
        elif sid == 11:
            for _ in range(s.uleb()):
                flags = s.uleb()
                if flags == 2:
                    s.uleb()
                address = None
                if flags in (0, 2):
                    begin = s.pos
                    s.const_expr()
                    address = _constant_offset(s.data[begin : s.pos])
                elif flags != 1:
                    raise s.fail(f"unknown data segment flags {flags}")
                size = s.uleb()
                info.data_segments.append((s.pos, s.pos + size))
                info.data_addresses.append(address)
                s.bytes_(size)
        return ""

    def _type_index(self, s: _Reader, what: str) -> int:
        idx = s.uleb()
        if idx >= len(self.types):
            raise s.fail(f"{what} uses undefined type {idx}")
        return idx

    def _rec_type(self, s: _Reader) -> None:
        if s.peek() == 0x4E:  # rec group
            self.info.proposals.add("gc")
            s.pos += 1
            for _ in range(s.uleb()):
                self._sub_type(s)
        else:
            self._sub_type(s)

    def _sub_type(self, s: _Reader) -> None:
        if s.peek() in (0x50, 0x4F):  # sub / sub final
            self.info.proposals.add("gc")
            s.pos += 1
            for _ in range(s.uleb()):
                s.uleb()
        form = s.byte()
        if form == 0x60:
            params = tuple(s.valtype() for _ in range(s.uleb()))
            results = tuple(s.valtype() for _ in range(s.uleb()))
            self.types.append((params, results))
            return
        self.info.proposals.add("gc")
        if form == 0x5F:  # struct
            for _ in range(s.uleb()):
                self._field_type(s)
        elif form == 0x5E:  # array
            self._field_type(s)
        else:
            s.pos -= 1
            raise s.fail(f"unknown type form 0x{form:02x} (expected func 0x60, struct 0x5f or array 0x5e)")
        self.types.append(None)

    @staticmethod
    def _field_type(s: _Reader) -> None:
        if s.peek() in (0x78, 0x77):  # packed i8 / i16
            s.pos += 1
        else:
            s.valtype()
        if s.byte() not in (0, 1):
            s.pos -= 1
            raise s.fail("malformed mutability")

    @staticmethod
    def _global_type(s: _Reader) -> bool:
        s.valtype()
        mut = s.byte()
        if mut not in (0, 1):
            s.pos -= 1
            raise s.fail(f"malformed global mutability 0x{mut:02x}")
        return mut == 1

    def _tag_type(self, s: _Reader) -> None:
        self.info.proposals.add("exceptions")
        if s.byte() != 0:
            s.pos -= 1
            raise s.fail("a tag's attribute must be 0 (exception)")
        self._type_index(s, "tag")

    def _imports(self, s: _Reader) -> None:
        info = self.info
        for _ in range(s.uleb()):
            module, name = s.name(), s.name()
            kind = s.byte()
            if name == "" and kind in (0x7E, 0x7F):
                info.proposals.add("compact-imports")
            if name == "" and kind == 0x7F:  # compact imports: one module; a name and a type each
                for _ in range(s.uleb()):
                    item = s.name()
                    self._import(s, module, s.byte(), item)
            elif name == "" and kind == 0x7E:  # compact imports: one module and one type; many names
                self._import(s, module, s.byte(), None)
            else:
                self._import(s, module, kind, name)
        info.num_imported_functions = len(self.func_types)
        info.num_imported_globals = self.counts["global"]

    def _import(self, s: _Reader, module: str, kind: int, name: str | None) -> None:
        """One import type, for ``name`` or (``None``) for each name of the list that follows it."""
        ty = None
        memory = None
        if kind == 0:
            idx = self._type_index(s, f"import {module}.{name or ''}")
            ty = self.types[idx]
            if ty is None:
                raise s.fail(f"import {module}.{name or ''}: type {idx} is not a function type")
        elif kind == 1:
            s.table_type()
        elif kind == 2:
            lo, hi, shared, is64 = s.limits("memory", memory=True)
            memory = Memory(lo, hi, True, shared, is64)
        elif kind == 3:
            self._global_type(s)
        elif kind == 4:
            self._tag_type(s)
        else:
            s.pos -= 1
            raise s.fail(f"unknown import kind {kind}")
        names = [name] if name is not None else [s.name() for _ in range(s.uleb())]
        what = _KINDS[kind]
        for item in names:
            if kind == 0:
                self.func_types.append(idx)
            elif memory is not None:
                self.info.memories.append(memory)
            else:
                self.counts[what] += 1
            self.info.imports.append(Import(module, item, what, ty))

    def _exports(self, s: _Reader) -> None:
        info = self.info
        seen: set[str] = set()
        for _ in range(s.uleb()):
            name, kind, idx = s.name(), s.byte(), s.uleb()
            if kind not in _KINDS:
                raise s.fail(f"export {name!r} has unknown kind {kind}")
            if name in seen:
                raise s.fail(f"duplicate export name {name!r}")
            seen.add(name)
            what = _KINDS[kind]
            count = len(self.func_types) if kind == 0 else len(info.memories) if kind == 2 else self.counts[what]
            if idx >= count:
                raise s.fail(f"export {name!r} refers to undefined {what} {idx}")
            ty = self.types[self.func_types[idx]] if kind == 0 else None
            info.exports.append(Export(name, what, ty, idx))


def _order_text() -> str:
    return ", ".join(SECTION_NAMES[sid] for sid in SECTION_ORDER)


def _read_producers(s: _Reader, info: ModuleInfo) -> None:
    try:
        for _ in range(s.uleb()):
            field_name = s.name()
            info.producers[field_name] = [f"{s.name()} {s.name()}".strip() for _ in range(s.uleb())]
    except ModuleFormatError:
        pass  # a broken custom section is not a broken module


def _read_names(s: _Reader, names: dict[int, str]) -> None:
    try:
        while s.pos < s.end:
            sub, size = s.byte(), s.uleb()
            end = s.pos + size
            if sub == 1:
                for _ in range(s.uleb()):
                    idx = s.uleb()
                    names[idx] = s.name()
            s.pos = end
    except ModuleFormatError:
        pass


def _constant_offset(expr: bytes) -> int | None:
    """The value of an offset expression that is one ``i32.const``/``i64.const`` and ``end``."""
    if len(expr) < 3 or expr[0] not in (0x41, 0x42) or expr[-1] != 0x0B:
        return None
    r = _Reader(expr, 1, len(expr) - 1)
    value = r.sleb(32 if expr[0] == 0x41 else 64)
    return value if r.pos == len(expr) - 1 else None
