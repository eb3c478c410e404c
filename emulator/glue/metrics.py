"""Metrics (abi-spec.md §1.12)."""

from __future__ import annotations

from abi import Status

from .base import Glue

__all__ = ["MetricCalls"]

_I64 = 1 << 63


class MetricCalls(Glue):
    """``proxy_define_metric``, ``proxy_increment_metric``, ``proxy_record_metric``, ``proxy_get_metric``."""

    def proxy_define_metric(self, metric_type: int, name_ptr: int, name_size: int, ret_id: int) -> int:
        name = self.read(name_ptr, name_size)  # cpp-host reads the name before Envoy checks the type
        status, metric_id = self.context().define_metric(metric_type, name)
        if status == Status.Ok:
            self.vm.memory.put_u32(ret_id, metric_id)
        return status

    def proxy_increment_metric(self, metric_id: int, offset: int) -> int:
        offset = ((offset + _I64) & 0xFFFFFFFFFFFFFFFF) - _I64  # a signed i64 whatever the engine passes
        return self.context().increment_metric(metric_id, offset)

    def proxy_record_metric(self, metric_id: int, value: int) -> int:
        return self.context().record_metric(metric_id, value)

    def proxy_get_metric(self, metric_id: int, ret_value: int) -> int:
        status, value = self.context().get_metric(metric_id)
        if status == Status.Ok:
            self.vm.memory.put_u64(ret_value, value)
        return status
