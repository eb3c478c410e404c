"""Buffers and configuration (abi-spec.md §1.4, §1.5)."""

from __future__ import annotations

from abi import BufferType, Status

from .base import Glue

__all__ = ["BufferCalls"]

_MAX_BUFFER_TYPE = max(BufferType)


class BufferCalls(Glue):
    """``proxy_get_buffer_bytes``/``_status``, ``proxy_set_buffer_bytes``, ``proxy_get_configuration``."""

    def proxy_get_buffer_bytes(self, buffer_type: int, start: int, max_size: int, ret_ptr: int, ret_size: int) -> int:
        if buffer_type > _MAX_BUFFER_TYPE:
            return Status.BadArgument
        buf = self.context().get_buffer(BufferType(buffer_type))
        if buf is None:
            return Status.NotFound
        return self.copy_out(buf.get(start, max_size), ret_ptr, ret_size)

    def proxy_get_buffer_status(self, buffer_type: int, ret_size: int, ret_flags: int) -> int:
        if buffer_type > _MAX_BUFFER_TYPE:
            return Status.BadArgument
        buf = self.context().get_buffer(BufferType(buffer_type))
        if buf is None:
            return Status.NotFound
        self.vm.memory.put_u32(ret_size, buf.size)
        self.vm.memory.put_u32(ret_flags, 0)
        return Status.Ok

    def proxy_set_buffer_bytes(self, buffer_type: int, start: int, size: int, data_ptr: int, data_size: int) -> int:
        if buffer_type > _MAX_BUFFER_TYPE:
            return Status.BadArgument
        data = self.read(data_ptr, data_size)
        buf = self.context().get_buffer(BufferType(buffer_type))
        if buf is None:
            return Status.NotFound
        return buf.set(start, size, data)

    def proxy_get_configuration(self, ret_ptr: int, ret_size: int) -> int:
        """0.1.0: the plugin configuration during configure/validate, else the VM configuration."""
        return self.copy_out(self.context().get_configuration(), ret_ptr, ret_size)
