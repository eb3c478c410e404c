"""Properties (abi-spec.md §1.13, §4.3, §7)."""

from __future__ import annotations

from abi import Status, decode_path

from .base import Glue

__all__ = ["PropertyCalls"]


class PropertyCalls(Glue):
    """``proxy_get_property`` and ``proxy_set_property``."""

    def proxy_get_property(self, path_ptr: int, path_size: int, ret_ptr: int, ret_size: int) -> int:
        path = decode_path(self.read(path_ptr, path_size))
        status, value = self.context().get_property(path)
        if status != Status.Ok:
            return status
        return self.copy_out(value, ret_ptr, ret_size)

    def proxy_set_property(self, path_ptr: int, path_size: int, value_ptr: int, value_size: int) -> int:
        path = self.read(path_ptr, path_size)
        value = self.read(value_ptr, value_size)
        return self.context().set_property(path, value)
