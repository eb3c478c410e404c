"""Unsigned LEB128: the integer encoding of the wasm binary format (and of protobuf varints)."""

from __future__ import annotations

__all__ = ["decode_uleb", "encode_uleb"]


def decode_uleb(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 integer at ``data[pos:]`` and the position after it.

    Raises ``IndexError`` when the data ends inside the number.
    """
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def encode_uleb(n: int) -> bytes:
    """``n`` (not negative) as unsigned LEB128 bytes."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
