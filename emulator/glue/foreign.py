"""Foreign functions (abi-spec.md §1.14, §4.5, §8)."""

from __future__ import annotations

from abi import Status

from .base import Glue

__all__ = ["ForeignCalls"]


class ForeignCalls(Glue):
    """``proxy_call_foreign_function``: the active context runs the host-registered function."""

    def proxy_call_foreign_function(self, name_ptr: int, name_size: int, args_ptr: int, args_size: int, ret_ptr: int, ret_size: int) -> int:
        name = self.read(name_ptr, name_size)
        args = self.read(args_ptr, args_size)
        status, result, known = self.context().call_foreign_function(name, args)
        if not known:
            return Status.NotFound  # nothing written
        data = result or b""
        if ret_ptr and ret_size:
            written = self.copy_out(data, ret_ptr, ret_size)
            return status if written == Status.Ok else written
        # cpp-host writes each out-param only if its address is non-zero. Without ret_ptr the
        # result goes to a temporary host buffer and is dropped (its size is still reported).
        if ret_ptr:
            ptr = self.vm.alloc(len(data)) if data else 0
            if data and ptr == 0:
                return Status.InvalidMemoryAccess
            self.vm.memory.write(ptr, data)
            self.vm.memory.put_u32(ret_ptr, ptr)
        if ret_size:
            self.vm.memory.put_u32(ret_size, len(data))
        return status
