"""The header-pairs wire format (abi-spec.md §4.2) with proxy-wasm-cpp-host's parsing limits.

Layout: ``u32 N``, then ``N x (u32 key_len, u32 value_len)``, then ``N x (key, NUL, value, NUL)``,
all little-endian. Used for header maps, gRPC metadata, HTTP-call headers and trailers, local-reply
headers, and map/list property values.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

__all__ = [
    "PAIRS_MAX_BYTES",
    "PAIRS_MAX_COUNT",
    "PairsError",
    "decode_pairs",
    "decode_pairs_strict",
    "encode_pairs",
    "encoded_size",
]

PAIRS_MAX_BYTES = 1 << 20
"""cpp-host ``PROXY_WASM_HOST_PAIRS_MAX_BYTES``: larger buffers parse as empty."""
PAIRS_MAX_COUNT = 1024
"""cpp-host ``PROXY_WASM_HOST_PAIRS_MAX_COUNT``: more pairs parse as empty."""

Pairs = list[tuple[bytes, bytes]]


class PairsError(ValueError):
    """A pairs buffer that cpp-host would reject (and silently treat as empty)."""


def encoded_size(pairs: Iterable[tuple[bytes, bytes]]) -> int:
    """Bytes ``encode_pairs`` would produce: ``4 + sum(8 + len(k) + 1 + len(v) + 1)``."""
    return 4 + sum(10 + len(k) + len(v) for k, v in pairs)


def encode_pairs(pairs: Sequence[tuple[bytes | str, bytes | str]]) -> bytes:
    """Serialize pairs. ``str`` keys and values are UTF-8 encoded; order and repeats are kept."""
    items = [(_b(k), _b(v)) for k, v in pairs]
    sizes = b"".join(struct.pack("<II", len(k), len(v)) for k, v in items)
    data = b"".join(k + b"\0" + v + b"\0" for k, v in items)
    return struct.pack("<I", len(items)) + sizes + data


def decode_pairs(buf: bytes | bytearray | memoryview) -> Pairs:
    """Parse pairs the way cpp-host's ``PairsUtil::toPairs`` does.

    Anything malformed (over the limits, a length past the end, a missing NUL, trailing bytes) gives
    an empty list and no error, exactly like the real host. A buffer shorter than 4 bytes (the
    one-byte ``00`` or empty form) is also empty.
    """
    try:
        return decode_pairs_strict(buf)
    except PairsError:
        return []


def decode_pairs_strict(buf: bytes | bytearray | memoryview) -> Pairs:
    """Parse pairs, raising :class:`PairsError` naming the first problem (for traces and lint)."""
    mv = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
    size = len(mv)
    if size < 4:
        return []
    if size > PAIRS_MAX_BYTES:
        raise PairsError(f"pairs buffer of {size} bytes exceeds cpp-host's limit of {PAIRS_MAX_BYTES}")
    (n,) = struct.unpack_from("<I", mv, 0)
    if n > PAIRS_MAX_COUNT:
        raise PairsError(f"{n} pairs exceed cpp-host's limit of {PAIRS_MAX_COUNT}")
    pos = 4 + 8 * n
    if pos > size:
        raise PairsError(f"{n} pairs need {pos} bytes of sizes, buffer has {size}")
    sizes = struct.unpack_from(f"<{2 * n}I", mv, 4)
    out: Pairs = []
    for i in range(n):
        klen, vlen = sizes[2 * i], sizes[2 * i + 1]
        end = pos + klen + 1 + vlen + 1
        if end > size:
            raise PairsError(f"pair {i} (key {klen} B, value {vlen} B) runs past the end of the buffer")
        if mv[pos + klen] != 0 or mv[end - 1] != 0:
            raise PairsError(f"pair {i} is missing a NUL terminator")
        out.append((bytes(mv[pos : pos + klen]), bytes(mv[pos + klen + 1 : end - 1])))
        pos = end
    if pos != size:
        raise PairsError(f"{size - pos} trailing bytes after {n} pairs")
    return out


def _b(x: bytes | str) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)
