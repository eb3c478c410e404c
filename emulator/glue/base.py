"""Shared glue for host calls: reading guest arguments and returning data the cpp-host way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from abi import Status

if TYPE_CHECKING:
    from ..contexts import ContextBase
    from ..vm.instance import Vm

__all__ = ["Glue"]

# enum members the request path reads, bound once (why: tests/unit/test_hot_lookups.py)
_OK = Status.Ok


class Glue:
    """Base of every host-call family: ``vm`` is the instance currently running."""

    vm: Vm

    def read(self, ptr: int, size: int) -> bytes:
        """Guest bytes at ``(ptr, size)``; ``(0, 0)`` is the empty string, as SDKs pass it.

        An empty range must still start inside memory (cpp-host: InvalidMemoryAccess otherwise).
        """
        vm = self.vm
        if size == 0:
            if ptr:
                vm.memory.view(ptr, 0)
            return b""
        n = size  # where compiled, a C integer: the counter adds it in C, with no int object
        vm.bytes_from_guest += n
        return vm.memory.read(ptr, size)

    def context(self) -> ContextBase:
        """The context this host call acts on (:attr:`Vm.active <emulator.vm.instance.Vm.active>`)."""
        return self.vm._active()

    def copy_out(self, data: bytes, ret_ptr: int, ret_size: int) -> int:
        """Return ``data`` through the ``ptr**``/``size*`` out-params (abi-spec.md §4.1).

        Empty data writes ptr=0, size=0 and never calls the allocator. A zero address from the
        guest allocator gives InvalidMemoryAccess.
        """
        vm = self.vm
        mem = vm.memory
        mem.put_u32_pair(ret_ptr, 0, ret_size, 0)
        n = len(data)
        if n == 0:
            return _OK
        ptr = vm.alloc(n)
        if ptr == 0:
            return Status.InvalidMemoryAccess
        mem.write(ptr, data)
        vm.bytes_to_guest += n
        mem.put_u32_pair(ret_ptr, ptr, ret_size, n)
        return _OK
