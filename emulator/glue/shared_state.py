"""Shared data and shared queues (abi-spec.md §1.10, §1.11)."""

from __future__ import annotations

from abi import Status

from .base import Glue

__all__ = ["SharedStateCalls"]


class SharedStateCalls(Glue):
    """``proxy_get/set_shared_data`` and ``proxy_register/resolve/enqueue/dequeue_shared_queue``."""

    def proxy_get_shared_data(self, key_ptr: int, key_size: int, ret_ptr: int, ret_size: int, ret_cas: int) -> int:
        key = self.read(key_ptr, key_size)
        entry = self.context().get_shared_data(key)
        if entry is None:
            return Status.NotFound  # neither the value nor the cas is written
        value, cas = entry
        status = self.copy_out(value, ret_ptr, ret_size)
        if status == Status.Ok:
            self.vm.memory.put_u32(ret_cas, cas)
        return status

    def proxy_set_shared_data(self, key_ptr: int, key_size: int, value_ptr: int, value_size: int, cas: int) -> int:
        key = self.read(key_ptr, key_size)
        value = self.read(value_ptr, value_size)
        return self.context().set_shared_data(key, value, cas)

    def proxy_register_shared_queue(self, name_ptr: int, name_size: int, ret_token: int) -> int:
        name = self.read(name_ptr, name_size)
        self.vm.memory.put_u32(ret_token, self.context().register_shared_queue(name))
        return Status.Ok

    def proxy_resolve_shared_queue(self, vm_id_ptr: int, vm_id_size: int, name_ptr: int, name_size: int, ret_token: int) -> int:
        vm_id = self.read(vm_id_ptr, vm_id_size)
        name = self.read(name_ptr, name_size)
        token = self.context().resolve_shared_queue(vm_id, name)
        if token is None:
            return Status.NotFound
        self.vm.memory.put_u32(ret_token, token)
        return Status.Ok

    def proxy_enqueue_shared_queue(self, token: int, data_ptr: int, data_size: int) -> int:
        data = self.read(data_ptr, data_size)
        return self.context().enqueue_shared_queue(token, data)

    def proxy_dequeue_shared_queue(self, token: int, ret_ptr: int, ret_size: int) -> int:
        status, item = self.context().dequeue_shared_queue(token)
        if status != Status.Ok:
            return status
        return self.copy_out(item, ret_ptr, ret_size)
