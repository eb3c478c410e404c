"""Logging, time and timers (abi-spec.md §1.3)."""

from __future__ import annotations

from abi import LogLevel, Status

from .base import Glue

__all__ = ["LoggingTimeCalls"]

_LEVELS = tuple(LogLevel)  # by value: LogLevel(n) without the enum call
# enum members the request path reads, bound once (why: tests/unit/test_hot_lookups.py)
_OK = Status.Ok
_CRITICAL = int(LogLevel.CRITICAL)  # a plain int: every proxy_log compares its level with it


class LoggingTimeCalls(Glue):
    """``proxy_log``, ``proxy_get_log_level``, the time and the tick period."""

    def proxy_log(self, level: int, msg_ptr: int, msg_size: int) -> int:
        if level > _CRITICAL:
            return Status.BadArgument
        self.context().log(_LEVELS[level], self.read(msg_ptr, msg_size).decode("utf-8", "replace"))
        return _OK

    def proxy_get_log_level(self, ret_level: int) -> int:
        self.vm.memory.put_u32(ret_level, self.context().log_level())
        return Status.Ok

    def proxy_get_current_time_nanoseconds(self, ret_time: int) -> int:
        self.vm.memory.put_u64(ret_time, self.context().current_time_ns())
        return Status.Ok

    def proxy_set_tick_period_milliseconds(self, period_ms: int) -> int:
        return self.context().set_tick_period(period_ms)
