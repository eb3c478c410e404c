"""A small pure-Python reader of a wasm module's outline: types, imports, exports, memory.

It lets the emulator inspect a filter, detect its ABI and report link problems before any engine
compiles it, and it gives a clear error for a file that is not a wasm module at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from abi.versions import FuncType

__all__ = ["Export", "Import", "ModuleFormatError", "ModuleInfo", "parse_module"]

_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
_SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
    7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount", 13: "tag",
}  # fmt: skip


class ModuleFormatError(ValueError):
    """The bytes are not a well-formed wasm module (names the offset and what was wrong)."""


@dataclass(frozen=True)
class Import:
    """One import: ``module.name`` of a kind, with its function type for functions."""

    module: str
    name: str
    kind: str
    type: FuncType | None = None


@dataclass(frozen=True)
class Export:
    """One export: name, kind and, for functions, the function type."""

    name: str
    kind: str
    type: FuncType | None = None


@dataclass
class ModuleInfo:
    """The outline of a module as far as a proxy-wasm host cares."""

    size: int
    imports: list[Import] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    memory_limits: tuple[int, int | None] | None = None
    memory_imported: bool = False
    has_start_section: bool = False
    custom_sections: list[str] = field(default_factory=list)
    producers: dict[str, list[str]] = field(default_factory=dict)
    num_imported_functions: int = 0
    mutable_globals: int = 0
    _name_section: tuple[bytes, int, int] | None = field(default=None, repr=False)
    _names: dict[int, str] | None = field(default=None, repr=False)

    @property
    def function_names(self) -> dict[int, str]:
        """Function index to name, from the ``name`` section (read on first use: Go's is large)."""
        if self._names is None:
            self._names = {}
            if self._name_section is not None:
                data, start, end = self._name_section
                _read_names(_Reader(data, start, end), self._names)
        return self._names

    def export_types(self) -> dict[str, FuncType | None]:
        """Export name to function type (``None`` for non-functions), in export order."""
        return {e.name: e.type for e in self.exports}

    def import_names(self) -> list[tuple[str, str]]:
        """``(module, name)`` of every function import, in order, duplicates kept."""
        return [(i.module, i.name) for i in self.imports if i.kind == "func"]


class _Reader:
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

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise self.fail("LEB128 integer too long")

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

    def valtype(self) -> str:
        b = self.byte()
        if b not in _VALTYPES:
            raise self.fail(f"unknown value type 0x{b:02x}")
        return _VALTYPES[b]

    def limits(self) -> tuple[int, int | None]:
        flags = self.byte()
        lo = self.uleb()
        hi = self.uleb() if flags & 1 else None
        return lo, hi

    def skip_init_expr(self) -> None:
        depth = 0
        while True:
            op = self.byte()
            if op == 0x0B:
                if depth == 0:
                    return
                depth -= 1
            elif op in (0x41, 0x42, 0x23, 0xD2):
                self.uleb()
            elif op in (0x43,):
                self.bytes_(4)
            elif op in (0x44,):
                self.bytes_(8)
            elif op == 0xD0:
                self.byte()
            elif op in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):
                pass
            else:
                raise self.fail(f"unsupported opcode 0x{op:02x} in a constant expression")


def parse_module(data: bytes) -> ModuleInfo:
    """Read the outline of a wasm binary; raise :class:`ModuleFormatError` if it is malformed."""
    if len(data) < 8:
        raise ModuleFormatError(f"not a wasm module: {len(data)} bytes is shorter than the 8-byte header")
    if data[:4] != b"\0asm":
        hint = " (it looks like WebAssembly text: compile it with wat2wasm first)" if data.lstrip()[:1] == b"(" else ""
        raise ModuleFormatError(f"not a wasm module: missing the \\0asm magic bytes{hint}")
    if data[4:8] != b"\x01\0\0\0":
        raise ModuleFormatError(f"unsupported wasm binary version {data[4:8].hex()} (only version 1 modules are proxy-wasm filters)")
    info = ModuleInfo(size=len(data))
    types: list[FuncType] = []
    func_types: list[int] = []
    r = _Reader(data, 8)
    last_id = 0
    while r.pos < r.end:
        sid = r.byte()
        size = r.uleb()
        start = r.pos
        if start + size > len(data):
            raise r.fail(f"{_SECTION_NAMES.get(sid, f'section {sid}')} section of {size} bytes runs past the end of the file")
        s = _Reader(data, start, start + size)
        if sid != 0:
            if sid not in _SECTION_NAMES:
                raise r.fail(f"unknown section id {sid}")
            order = sid if sid not in (12, 13) else {12: 10.5, 13: 5.5}[sid]
            if order <= last_id:
                raise r.fail(f"{_SECTION_NAMES[sid]} section out of order")
            last_id = order
        if sid == 0:
            name = s.name()
            info.custom_sections.append(name)
            if name == "producers":
                _read_producers(s, info)
            elif name == "name":
                info._name_section = (data, s.pos, s.end)
        elif sid == 1:
            for _ in range(s.uleb()):
                if s.byte() != 0x60:
                    raise s.fail("expected a function type (0x60)")
                params = tuple(s.valtype() for _ in range(s.uleb()))
                results = tuple(s.valtype() for _ in range(s.uleb()))
                types.append((params, results))
        elif sid == 2:
            for _ in range(s.uleb()):
                module, name, kind = s.name(), s.name(), s.byte()
                ty = None
                if kind == 0:
                    idx = s.uleb()
                    if idx >= len(types):
                        raise s.fail(f"import {module}.{name} uses undefined type {idx}")
                    ty = types[idx]
                    func_types.append(idx)
                elif kind == 1:
                    s.byte()
                    s.limits()
                elif kind == 2:
                    info.memory_limits = s.limits()
                    info.memory_imported = True
                elif kind == 3:
                    s.valtype()
                    s.byte()
                elif kind == 4:
                    s.byte()
                    s.uleb()
                else:
                    raise s.fail(f"unknown import kind {kind}")
                info.imports.append(Import(module, name, _KINDS[kind], ty))
            info.num_imported_functions = len(func_types)
        elif sid == 3:
            for _ in range(s.uleb()):
                idx = s.uleb()
                if idx >= len(types):
                    raise s.fail(f"function uses undefined type {idx}")
                func_types.append(idx)
        elif sid == 5:
            n = s.uleb()
            if n:
                info.memory_limits = s.limits()
        elif sid == 6:
            for _ in range(s.uleb()):
                s.valtype()
                if s.byte() & 1:
                    info.mutable_globals += 1
                s.skip_init_expr()
        elif sid == 7:
            for _ in range(s.uleb()):
                name, kind, idx = s.name(), s.byte(), s.uleb()
                if kind not in _KINDS:
                    raise s.fail(f"export {name!r} has unknown kind {kind}")
                ty = None
                if kind == 0:
                    if idx >= len(func_types):
                        raise s.fail(f"export {name!r} refers to undefined function {idx}")
                    ty = types[func_types[idx]]
                info.exports.append(Export(name, _KINDS[kind], ty))
        elif sid == 8:
            info.has_start_section = True
        r.pos = start + size
    return info


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
