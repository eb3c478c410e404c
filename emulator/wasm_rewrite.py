"""Small binary rewrites of a module: export every mutable global so a VM can be snapshotted.

Restoring a VM to a snapshot needs its linear memory *and* its mutable globals (the stack
pointer of clang/Rust modules, Go's eight runtime registers, AssemblyScript's allocator roots).
Toolchains do not export them, so the loader adds exports named ``__snap_g<index>``; nothing
else in the module changes.
"""

from __future__ import annotations

from .leb128 import decode_uleb, encode_uleb

__all__ = ["SNAPSHOT_PREFIX", "export_mutable_globals"]

SNAPSHOT_PREFIX = "__snap_g"

# the order non-custom sections must keep (datacount 12 sits before code 10, tag 13 before global 6)
_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 5.5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 9.5, 10: 10, 11: 11}


def _skip_const_expr(data: bytes, pos: int) -> int:
    while True:
        op = data[pos]
        pos += 1
        if op == 0x0B:
            return pos
        if op in (0x41, 0x42, 0x23, 0xD2):
            _, pos = decode_uleb(data, pos)
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op == 0xD0:
            pos += 1


def export_mutable_globals(wasm: bytes) -> tuple[bytes, list[str]]:
    """The module with every defined mutable global exported, and the export names added.

    Returns the input unchanged (and ``[]``) when there is nothing to add or the module cannot
    be read (the loader reports malformed modules itself).
    """
    try:
        return _rewrite(wasm)
    except (IndexError, ValueError):
        return wasm, []


def _rewrite(wasm: bytes) -> tuple[bytes, list[str]]:
    sections: list[tuple[int, bytes]] = []
    pos = 8
    while pos < len(wasm):
        sid = wasm[pos]
        size, body = decode_uleb(wasm, pos + 1)
        sections.append((sid, wasm[body : body + size]))
        pos = body + size
    imported_globals = 0
    mutable: list[int] = []
    for sid, content in sections:
        if sid == 2:
            n, p = decode_uleb(content, 0)
            for _ in range(n):
                for _ in range(2):
                    ln, p = decode_uleb(content, p)
                    p += ln
                kind = content[p]
                p += 1
                if kind == 0:
                    _, p = decode_uleb(content, p)
                elif kind == 1:
                    p += 1
                    flags = content[p]
                    _, p = decode_uleb(content, p + 1)
                    if flags & 1:
                        _, p = decode_uleb(content, p)
                elif kind == 2:
                    flags = content[p]
                    _, p = decode_uleb(content, p + 1)
                    if flags & 1:
                        _, p = decode_uleb(content, p)
                elif kind == 3:
                    p += 2
                    imported_globals += 1
                elif kind == 4:
                    p += 1
                    _, p = decode_uleb(content, p)
        elif sid == 6:
            n, p = decode_uleb(content, 0)
            for i in range(n):
                p += 1  # value type
                if content[p] & 1:
                    mutable.append(imported_globals + i)
                p = _skip_const_expr(content, p + 1)
    if not mutable:
        return wasm, []
    names = [f"{SNAPSHOT_PREFIX}{g}" for g in mutable]
    extra = b"".join(encode_uleb(len(n)) + n.encode() + b"\x03" + encode_uleb(g) for n, g in zip(names, mutable, strict=True))
    out = bytearray(wasm[:8])
    done = False
    for i, (sid, content) in enumerate(sections):
        if sid == 7:
            n, p = decode_uleb(content, 0)
            content = encode_uleb(n + len(names)) + content[p:] + extra
            done = True
        elif not done and sid != 0 and _ORDER.get(sid, 99) > 7:
            new = encode_uleb(len(names)) + extra
            out += b"\x07" + encode_uleb(len(new)) + new
            done = True
        out += bytes([sid]) + encode_uleb(len(content)) + content
        if not done and i == len(sections) - 1:
            new = encode_uleb(len(names)) + extra
            out += b"\x07" + encode_uleb(len(new)) + new
            done = True
    return bytes(out), names
