"""Small binary rewrites of a module: export every mutable global so a VM can be snapshotted.

Restoring a VM to a snapshot needs its linear memory *and* its mutable globals (the stack
pointer of clang/Rust modules, Go's eight runtime registers, AssemblyScript's allocator roots).
Toolchains do not export them, so the loader adds exports named ``__snap_g<index>``; nothing
else in the module changes.
"""

from __future__ import annotations

from abi.leb128 import decode_uleb, encode_uleb

from .module import SECTION_ORDER, ModuleFormatError, ModuleInfo, Section, parse_module

__all__ = ["SNAPSHOT_PREFIX", "export_mutable_globals"]

SNAPSHOT_PREFIX = "__snap_g"


def export_mutable_globals(wasm: bytes, info: ModuleInfo | None = None) -> tuple[bytes, list[str]]:
    """The module with every defined mutable global exported, and the export names added.

    ``info`` is the module's outline when the caller has it already. Returns the input
    unchanged (and ``[]``) when there is nothing to add or the module cannot be read (the
    loader reports malformed modules itself).
    """
    if info is None:
        try:
            info = parse_module(wasm)
        except ModuleFormatError:
            return wasm, []
    mutable = list(info.mutable_global_indices)
    if not mutable:
        return wasm, []
    names = [f"{SNAPSHOT_PREFIX}{g}" for g in mutable]
    extra = b"".join(encode_uleb(len(n)) + n.encode() + b"\x03" + encode_uleb(g) for n, g in zip(names, mutable, strict=True))
    exports = next((sec for sec in info.sections if sec.id == 7), None)
    if exports is not None:
        n, p = decode_uleb(wasm, exports.start)
        body = encode_uleb(n + len(names)) + wasm[p : exports.end] + extra
        header = _header_start(wasm, info, exports)
        return wasm[:header] + b"\x07" + encode_uleb(len(body)) + body + wasm[exports.end :], names
    # no export section: add one before the first section that must come after it
    body = encode_uleb(len(names)) + extra
    later = next((sec for sec in info.sections if sec.id != 0 and SECTION_ORDER.index(sec.id) > SECTION_ORDER.index(7)), None)
    at = _header_start(wasm, info, later) if later is not None else len(wasm)
    return wasm[:at] + b"\x07" + encode_uleb(len(body)) + body + wasm[at:], names


def _header_start(wasm: bytes, info: ModuleInfo, section: Section) -> int:
    """Where ``section``'s id byte is: just after the previous section's content (or the 8-byte header)."""
    i = info.sections.index(section)
    return info.sections[i - 1].end if i else 8
