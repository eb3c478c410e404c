"""Context control and the small Emscripten/pthread shims (abi-spec.md §1.2, §1.9)."""

from __future__ import annotations

from abi import Status

from .base import Glue

__all__ = ["ContextCalls"]


class ContextCalls(Glue):
    """``proxy_set_effective_context``, ``proxy_done``, ``proxy_get_status`` and shims."""

    def proxy_set_effective_context(self, context_id: int) -> int:
        if context_id not in self.vm.contexts:
            return Status.BadArgument
        self.vm.effective_context = context_id
        return Status.Ok

    def proxy_done(self) -> int:
        return self.context().done()

    def proxy_get_status(self, ret_code: int, ret_msg_ptr: int, ret_msg_size: int) -> int:
        code, message = self.context().get_status()
        self.vm.memory.put_u32(ret_code, code)
        return self.copy_out(message, ret_msg_ptr, ret_msg_size)

    def emscripten_notify_memory_growth(self, memory_index: int) -> None:
        return None

    def pthread_equal(self, a: int, b: int) -> int:
        return int(a == b)
