"""Header, trailer and metadata maps (abi-spec.md §1.6)."""

from __future__ import annotations

from abi import MapType, Status, decode_pairs, encode_pairs

from ..headers import HeaderMap
from ._glue import Glue

__all__ = ["MapCalls"]

_MAX_MAP = max(MapType)
_WRITABLE = frozenset({0, 1, 2, 3})  # request/response headers and trailers


class MapCalls(Glue):
    """Every ``proxy_*_header_map_*`` call, on every map type, in the phases Envoy allows."""

    def _map(self, map_type: int, *, write: bool) -> HeaderMap | None:
        if map_type in _WRITABLE:
            stream = self.vm.current_stream()
            return stream.header_map(map_type, write=write) if stream is not None else None
        if write:
            return None
        return self.vm.callout_map(MapType(map_type))

    def _in_log(self) -> bool:
        stream = self.vm.current_stream()
        return stream is not None and stream.in_log

    def proxy_get_header_map_pairs(self, map_type: int, ret_ptr: int, ret_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        m = self._map(map_type, write=False)
        if m is None or not len(m):
            return self.copy_out(b"", ret_ptr, ret_size)
        return self.copy_out(encode_pairs(m.pairs()), ret_ptr, ret_size)

    def proxy_set_header_map_pairs(self, map_type: int, pairs_ptr: int, pairs_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        pairs = decode_pairs(self.read(pairs_ptr, pairs_size))
        m = self._map(map_type, write=True)
        if m is None:
            return Status.BadArgument
        m.set_pairs(pairs)
        return Status.Ok

    def proxy_get_header_map_value(self, map_type: int, key_ptr: int, key_size: int, ret_ptr: int, ret_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        key = self.read(key_ptr, key_size)
        m = self._map(map_type, write=False)
        v010 = self.vm.abi_010
        if m is None:
            if self._in_log():
                return self.copy_out(b"", ret_ptr, ret_size) if v010 else Status.NotFound
            return Status.BadArgument
        value = m.get(key)
        if value is None:
            return self.copy_out(b"", ret_ptr, ret_size) if v010 else Status.NotFound
        return self.copy_out(value, ret_ptr, ret_size)

    def _map_write(self, map_type: int, op: str, key_ptr: int, key_size: int, value_ptr: int = 0, value_size: int = 0) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        key = self.read(key_ptr, key_size)
        value = self.read(value_ptr, value_size)
        m = self._map(map_type, write=True)
        if m is None:
            return Status.BadArgument
        if op == "add":
            m.add(key, value)
        elif op == "replace":
            m.replace(key, value)
        else:
            m.remove(key)
        return Status.Ok

    def proxy_add_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int) -> int:
        return self._map_write(map_type, "add", key_ptr, key_size, value_ptr, value_size)

    def proxy_replace_header_map_value(self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int) -> int:
        return self._map_write(map_type, "replace", key_ptr, key_size, value_ptr, value_size)

    def proxy_remove_header_map_value(self, map_type: int, key_ptr: int, key_size: int) -> int:
        return self._map_write(map_type, "remove", key_ptr, key_size)

    def proxy_get_header_map_size(self, map_type: int, ret_size: int) -> int:
        if map_type > _MAX_MAP:
            return Status.BadArgument
        m = self._map(map_type, write=True) if map_type in _WRITABLE else self._map(map_type, write=False)
        if m is None:
            return Status.BadArgument
        self.vm.memory.put_u32(ret_size, m.byte_size())
        return Status.Ok
