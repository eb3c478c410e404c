"""Header, trailer and metadata maps (abi-spec.md §1.6).

Map types go to the receivers as plain ints: ``MapType`` is an ``IntEnum``, so they compare and
hash the same, and no enum is built per call.
"""

from __future__ import annotations

from abi import MapType, Status, decode_pairs, encode_pairs

from .base import Glue

__all__ = ["MapCalls"]

_MAX_MAP = int(max(MapType))  # a plain int: every call compares its map type with it
# enum members the request path reads, bound once (why: tests/unit/test_hot_lookups.py)
_OK, _NOT_FOUND = Status.Ok, Status.NotFound


class MapCalls(Glue):
    """Every ``proxy_*_header_map_*`` call: the active context's map methods (emulator.contexts)."""

    def proxy_get_header_map_pairs(self, map_type: int, ret_ptr: int, ret_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        _, pairs = self.context().get_header_map_pairs(map_type)
        return self.copy_out(encode_pairs(pairs) if pairs else b"", ret_ptr, ret_size)

    def proxy_set_header_map_pairs(self, map_type: int, pairs_ptr: int, pairs_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        pairs = decode_pairs(self.read(pairs_ptr, pairs_size))
        return self.context().set_header_map_pairs(map_type, pairs)

    def proxy_get_header_map_value(self, map_type: int, key_ptr: int, key_size: int, ret_ptr: int, ret_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        key = self.read(key_ptr, key_size)
        status, value = self.context().get_header_map_value(map_type, key)
        if status is not _OK:  # identity first, a pointer compare: == goes through the generic rich compare
            if (status is _NOT_FOUND or status == _NOT_FOUND) and self.vm.abi_010:
                return self.copy_out(b"", ret_ptr, ret_size)  # ABI 0.1.0: a missing value is an empty one
            if status is _NOT_FOUND or status != _OK:
                return status
        return self.copy_out(value or b"", ret_ptr, ret_size)

    def proxy_add_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        key, value = self.read(key_ptr, key_size), self.read(value_ptr, value_size)
        return self.context().add_header_map_value(map_type, key, value)

    def proxy_replace_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        key, value = self.read(key_ptr, key_size), self.read(value_ptr, value_size)
        return self.context().replace_header_map_value(map_type, key, value)

    def proxy_remove_header_map_value(self, map_type: int, key_ptr: int, key_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        key = self.read(key_ptr, key_size)
        return self.context().remove_header_map_value(map_type, key)

    def proxy_get_header_map_size(self, map_type: int, ret_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        status, size = self.context().get_header_map_size(map_type)
        if status == Status.Ok:
            self.vm.memory.put_u32(ret_size, size)
        return status
