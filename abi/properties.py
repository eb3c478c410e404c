"""Property paths and property values on the wire (abi-spec.md §4.3, §4.4).

A path is a list of segments joined by NUL (Rust, Go); the C++ SDK terminates every segment with
NUL instead. Envoy splits on NUL and ignores one trailing empty segment. Values follow Envoy's
``serializeValue``: strings and bytes raw, integers and doubles as 8 little-endian bytes, bools as
one byte, durations and timestamps as int64 nanoseconds, maps and lists as pairs.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .pairs import decode_pairs, encode_pairs

if TYPE_CHECKING:
    import datetime

__all__ = [
    "UInt64",
    "decode_path",
    "decode_value",
    "encode_path",
    "encode_value",
]


class UInt64(int):
    """An integer that Envoy serializes as an unsigned 64-bit value (CEL ``uint``)."""


def encode_path(segments: Sequence[str | bytes], *, trailing_nul: bool = False) -> bytes:
    """Join path segments with NUL; ``trailing_nul=True`` gives the C++ SDK's form."""
    raw = b"\0".join(s.encode() if isinstance(s, str) else bytes(s) for s in segments)
    return raw + b"\0" if trailing_nul and segments else raw


def decode_path(raw: bytes) -> tuple[bytes, ...]:
    """Split a path as Envoy does: on NUL, dropping a single trailing empty segment.

    A dotted segment such as ``b"request.path"`` is *not* split (Envoy answers NotFound for it).
    """
    if not raw:
        return ()
    parts = raw.split(b"\0")
    if parts[-1] == b"":
        parts.pop()
    return tuple(parts)


def encode_value(value: Any) -> bytes:
    """Serialize a Python value the way Envoy serializes the CEL value it stands for.

    ``str``/``bytes`` raw; ``bool`` 1 byte; ``int`` int64 LE (``UInt64`` unsigned); ``float``
    double LE; ``timedelta`` int64 ns; aware ``datetime`` int64 ns since the Unix epoch; mappings
    as pairs with each key and value serialized recursively; lists as pairs of ``(element, b"")``.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"\1" if value else b"\0"
    if isinstance(value, UInt64):
        return struct.pack("<Q", value)
    if isinstance(value, int):
        return struct.pack("<q", value)
    if isinstance(value, float):
        return struct.pack("<d", value)
    import datetime as _dt  # here, not at the top: it costs 1 ms of ``import emulator``

    if isinstance(value, _dt.timedelta):
        return struct.pack("<q", _timedelta_ns(value))
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware datetimes")
        return struct.pack("<q", _timedelta_ns(value - _epoch()))
    if isinstance(value, Mapping):
        return encode_pairs([(encode_value(k), encode_value(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return encode_pairs([(encode_value(v), b"") for v in value])
    raise TypeError(f"cannot serialize {type(value).__name__} as a property value (Envoy: SerializationFailure)")


def decode_value(raw: bytes, kind: str) -> Any:
    """Decode bytes returned by ``proxy_get_property`` as ``kind``.

    ``kind`` is one of ``string``, ``bytes``, ``int``, ``uint``, ``double``, ``bool``,
    ``duration``, ``timestamp``, ``map`` (pairs of bytes) or ``list`` (list of bytes).
    """
    if kind == "bytes":
        return bytes(raw)
    if kind == "string":
        return bytes(raw).decode()
    if kind == "bool":
        return raw != b"\0" and raw != b""
    if kind in ("int", "duration", "timestamp", "uint", "double"):
        if len(raw) != 8:
            raise ValueError(f"a {kind} property value is 8 bytes, got {len(raw)}")
        fmt = {"uint": "<Q", "double": "<d"}.get(kind, "<q")
        (num,) = struct.unpack(fmt, raw)
        if kind == "duration":
            import datetime as _dt

            return _dt.timedelta(microseconds=num / 1000)
        if kind == "timestamp":
            import datetime as _dt

            return _epoch() + _dt.timedelta(microseconds=num / 1000)
        return num
    if kind == "map":
        return dict(decode_pairs(raw))
    if kind == "list":
        return [k for k, _ in decode_pairs(raw)]
    raise ValueError(f"unknown property kind {kind!r}")


def _epoch() -> datetime.datetime:
    """The Unix epoch, an aware ``datetime``."""
    import datetime as _dt

    return _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _timedelta_ns(td: datetime.timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000_000 + td.microseconds * 1000
