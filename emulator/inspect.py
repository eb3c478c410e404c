"""``inspect``: what a filter module is, without running it.

ABI version, a best guess of the SDK and toolchain, imports (marking those the emulator does not
implement), exports, memory limits and size, and everything a real host would refuse.
"""

from __future__ import annotations

import hashlib
from typing import Any

from abi import import_table
from abi.records import field, record

from .engines import CompileError, Engine, get_engine
from .tables import Part, Table
from .vm.module import ModuleFormatError, ModuleInfo, parse_module
from .vm.program import implemented_functions

__all__ = ["Inspection", "guess_sdk", "inspect_module"]


@record
class Inspection:
    """The result of :func:`inspect_module`; ``to_json`` gives the CLI's ``--json`` object."""

    path: str
    size: int
    sha256: str
    abi_version: str
    abi_declared: str | None
    headers_arity: int
    sdk: str
    toolchain: str
    imports: list[dict[str, Any]]
    exports: list[dict[str, Any]]
    unsupported_imports: list[str]
    unimplemented_imports: list[str]
    memory: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with at least ``abi_version``, ``imports``, ``exports``, ``unsupported_imports``."""
        return dict(self.__dict__)

    def parts(self) -> list[Part]:
        """The report as lines and tables (:mod:`emulator.tables`)."""
        parts: list[Part] = [
            f"{self.path}: {self.size} bytes, sha256 {self.sha256[:16]}...",
            f"ABI: {self.abi_version}"
            + ("" if self.abi_declared else " (inferred: no marker export)")
            + f", headers callbacks take {self.headers_arity} parameters",
            f"SDK (best guess): {self.sdk}; toolchain: {self.toolchain}",
            f"memory: {_memory_line(self.memory)}",
        ]
        status = ["UNSUPPORTED" if imp["unsupported"] else "not implemented yet" if imp["unimplemented"] else "" for imp in self.imports]
        rows = [(f"{imp['module']}.{imp['name']}", imp["signature"], mark) for imp, mark in zip(self.imports, status, strict=True)]
        parts.append(Table(f"imports ({len(self.imports)}):", ("import", "signature", "status"), rows))
        parts.append(
            Table(f"exports ({len(self.exports)}):", ("export", "kind", "signature"), [(e["name"], e["kind"], e["signature"] or "") for e in self.exports])
        )
        if self.notes:
            parts.append("notes:")
            parts += [f"  - {n}" for n in self.notes]
        return parts


_AS_STDLIB_PATH = "~lib/".encode("utf-16-le")  # asc stores its strings, source paths included, as UTF-16


def guess_sdk(info: ModuleInfo, wasm: bytes | None = None) -> tuple[str, str]:
    """``(sdk, toolchain)`` guessed from producers, exports, imports, function names and, given the
    module's bytes, its data segments."""
    exports = {e.name for e in info.exports}
    imports = {(i.module, i.name) for i in info.imports}
    names = " ".join(info.function_names.values())
    producers = info.producers
    langs = ", ".join(producers.get("language", []))
    tools = ", ".join(producers.get("processed-by", []))
    toolchain = "; ".join(x for x in (langs, tools) if x) or "unknown"
    as_data = wasm is not None and any(_AS_STDLIB_PATH in wasm[a:b] for a, b in info.data_segments)
    if "__rtti_base" in exports or "__alloc" in exports or as_data:
        return "AssemblyScript (solo-io/proxy-runtime)", toolchain if toolchain != "unknown" else "AssemblyScript"
    if "tinygo" in tools.lower():
        return "Go (tetratelabs proxy-wasm-go-sdk, TinyGo)", toolchain
    if "_rt0_wasm_wasip1" in names or "runtime.main" in names or langs.startswith("Go"):
        sdk = "Go (proxy-wasm/proxy-wasm-go-sdk)" if "proxy_wasm_go_sdk" in names or "proxy-wasm-go-sdk" in names else "Go"
        return sdk, toolchain
    if "proxy_wasm" in names and ("rustc" in tools or "Rust" in langs or "_ZN" in names):
        return "Rust (proxy-wasm crate)", toolchain
    if "rustc" in tools or "Rust" in langs:
        return "Rust", toolchain
    if ("env", "emscripten_notify_memory_growth") in imports or "Emscripten" in tools:
        return "C++ (proxy-wasm-cpp-sdk, Emscripten)", toolchain
    if "clang" in tools or "C" in langs.split(", ") or "C++" in langs:
        return "C/C++ (custom)", toolchain
    if not info.function_names and not producers:
        return "unknown (hand-written or stripped module)", toolchain
    return "unknown", toolchain


def inspect_module(wasm: bytes, path: str = "<bytes>", *, engine: Engine | None = None) -> Inspection:
    """Inspect a module's bytes; raises ``ModuleFormatError`` for a malformed or invalid module.

    The outline is read in Python; the instructions are checked by ``engine``'s validator (the
    default wasmtime engine when not given), so a module Envoy's runtime would refuse is refused
    here too.
    """
    from abi import detect_abi

    info = parse_module(wasm)
    try:
        (engine or get_engine()).validate(wasm)
    except CompileError as exc:
        raise ModuleFormatError(f"invalid wasm module: {exc}") from None
    abi = detect_abi(info.export_types(), info.import_names())
    known = import_table()
    implemented = implemented_functions()
    imports = []
    unsupported: list[str] = []
    unimplemented: list[str] = []
    for imp in info.imports:
        qual = f"{imp.module}.{imp.name}"
        sig = known.get((imp.module, imp.name))
        is_unsupported = imp.kind != "func" or sig is None or (imp.type is not None and sig.wasm_type != imp.type)
        is_unimplemented = not is_unsupported and imp.name not in implemented
        if is_unsupported and qual not in unsupported:
            unsupported.append(qual)
        if is_unimplemented and qual not in unimplemented:
            unimplemented.append(qual)
        imports.append(
            {
                "module": imp.module,
                "name": imp.name,
                "kind": imp.kind,
                "signature": _sig(imp.type),
                "unsupported": is_unsupported,
                "unimplemented": is_unimplemented,
            }
        )
    exports = [{"name": e.name, "kind": e.kind, "signature": _sig(e.type)} for e in info.exports]
    sdk, toolchain = guess_sdk(info, wasm)
    lo, hi = info.memory_limits or (0, None)
    notes = list(abi.notes)
    if unsupported:
        notes.append(f"{len(unsupported)} import(s) are unknown to proxy-wasm hosts: loading fails unless unknown imports are stubbed")
    if info.has_start_section:
        notes.append("has a wasm start section: it runs during instantiation")
    return Inspection(
        path=path,
        size=len(wasm),
        sha256=hashlib.sha256(wasm).hexdigest(),
        abi_version=abi.version,
        abi_declared=abi.declared,
        headers_arity=abi.headers_arity,
        sdk=sdk,
        toolchain=toolchain,
        imports=imports,
        exports=exports,
        unsupported_imports=unsupported,
        unimplemented_imports=unimplemented,
        memory={"initial_pages": lo, "maximum_pages": hi, "initial_bytes": lo * 65536, "imported": info.memory_imported},
        notes=notes,
    )


def _sig(ty: Any) -> str:
    if ty is None:
        return ""
    return f"({', '.join(ty[0])}) -> ({', '.join(ty[1])})"


def _memory_line(memory: dict[str, Any]) -> str:
    """``37 pages (2,424,832 bytes) initial, no maximum, defined by the module`` for the human report."""
    hi = memory["maximum_pages"]
    limit = "no maximum" if hi is None else f"maximum {hi} pages ({hi * 65536:,} bytes)"
    owner = "imported from the host" if memory["imported"] else "defined by the module"
    return f"{memory['initial_pages']} pages ({memory['initial_bytes']:,} bytes) initial, {limit}, {owner}"
