"""A byte buffer with Envoy's ``get_buffer_bytes`` / ``set_buffer_bytes`` rules (abi-spec.md §1.5)."""

from __future__ import annotations

from abi import Status

__all__ = ["Buffer"]

_NONE = bytearray()  # never changed: only added to


class Buffer:
    """Bytes a filter can read, and modify when ``mutable``.

    ``get`` clamps the range. ``set`` follows current Envoy: ``start == 0`` drains ``size`` bytes and
    prepends, ``start >= len`` appends, a splice in the middle is BadArgument, and immutable
    buffers (configuration, call data, callout bodies) refuse every write with BadArgument.
    """

    __slots__ = ("data", "mutable")

    def __init__(self, data: bytes | bytearray = b"", *, mutable: bool = True) -> None:
        # bytes concatenated onto an empty bytearray: a new bytearray, as bytearray(data) makes, without
        # the type call's argument parsing (most of a request's two empty side buffers' cost)
        self.data = _NONE + data if type(data) is bytes else bytearray(data)
        self.mutable = mutable

    @property
    def size(self) -> int:
        """Current length."""
        return len(self.data)

    def get(self, start: int, max_size: int) -> bytes:
        """At most ``max_size`` bytes from ``start``; empty past the end."""
        if start >= len(self.data):
            return b""
        return bytes(self.data[start : start + max_size])

    def set(self, start: int, size: int, data: bytes) -> int:
        """Envoy's ``Buffer::copyFrom``; returns the status the guest sees."""
        if not self.mutable:
            return Status.BadArgument
        if start == 0:
            del self.data[: min(size, len(self.data))]
            self.data[:0] = data
        elif start >= len(self.data):
            self.data += data
        else:
            return Status.BadArgument
        return Status.Ok

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def __repr__(self) -> str:
        return f"Buffer({bytes(self.data)!r}{'' if self.mutable else ', mutable=False'})"
