"""Metrics with Envoy's semantics (abi-spec.md §1.12).

Envoy keeps the stats in the plugin's stats scope under ``wasmcustom.<name>``; here there is one
namespace per :class:`~emulator.host.Host`, so every VM and plugin of a host that defines the same
name (and type) shares one stat, and separate hosts never share. Read stats by the raw name the
filter used (``"requests_total"``) or by the Envoy name (``"wasmcustom.requests_total"``).

Metric ids belong to the VM (cpp-host keeps the id counters and id tables in ``WasmBase``): counters
get 4, 8, 12..., gauges 5, 9, 13..., histograms 6, 10, 14... (``id & 3`` is the type), and every
``define`` allocates a new id, even for a name already defined, pointing at the shared stat.

Counter and gauge values are ``uint64`` as in Envoy: they wrap modulo 2**64, so a gauge decremented
below zero reads as a huge number, exactly as Envoy (release build) reports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from abi import MetricType, Status
from abi.records import field, record

if TYPE_CHECKING:
    from .vm.instance import Vm

__all__ = ["ENVOY_PREFIX", "Metric", "Metrics"]

ENVOY_PREFIX = "wasmcustom."
"""Envoy's ``custom_stat_namespace_``: the stat of ``define_metric(name)`` is ``wasmcustom.<name>``."""
_U64 = 0xFFFFFFFFFFFFFFFF
_TYPE_MASK = 3
_KINDS = {MetricType.COUNTER: "counter", MetricType.GAUGE: "gauge", MetricType.HISTOGRAM: "histogram"}


@record
class Metric:
    """One stat: a counter or gauge ``value``, or the recorded ``samples`` of a histogram."""

    type: MetricType
    name: str
    value: int = 0
    samples: list[int] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``"counter"``, ``"gauge"`` or ``"histogram"``."""
        return _KINDS[self.type]

    @property
    def envoy_name(self) -> str:
        """The name Envoy gives the stat (``wasmcustom.<name>``)."""
        return ENVOY_PREFIX + self.name


@record
class _VmIds:
    """cpp-host's per-VM id counters and id table."""

    next_id: dict[int, int] = field(default_factory=lambda: {int(t): int(t) for t in MetricType})
    ids: dict[int, Metric] = field(default_factory=dict)


class Metrics:
    """Counters, gauges and histograms of one host, by name; ids per VM, as Envoy allocates them."""

    def __init__(self) -> None:
        self._stats: dict[tuple[MetricType, str], Metric] = {}
        self._vms: dict[int, tuple[Vm, _VmIds]] = {}

    # -- what the host calls use ----------------------------------------------------------------
    def define(self, vm: Vm, metric_type: int, name: str | bytes) -> tuple[Status, int]:
        """``define_metric``: ``(Ok, new id)``, or ``(BadArgument, 0)`` for a type above 2."""
        if metric_type > MetricType.HISTOGRAM:
            return Status.BadArgument, 0
        kind = MetricType(metric_type)
        raw = name if isinstance(name, str) else bytes(name).decode("utf-8", "surrogateescape")
        stat = self._stats.get((kind, raw))
        if stat is None:
            stat = self._stats[(kind, raw)] = Metric(kind, raw)
        table = self._table(vm)
        table.next_id[kind] += 4
        metric_id = table.next_id[kind]
        table.ids[metric_id] = stat
        return Status.Ok, metric_id

    def increment(self, vm: Vm, metric_id: int, offset: int) -> Status:
        """``increment_metric`` (``offset`` is a signed i64): the type bits are checked before the id."""
        kind = metric_id & _TYPE_MASK
        if kind not in (MetricType.COUNTER, MetricType.GAUGE):
            return Status.BadArgument
        stat = self._lookup(vm, metric_id)
        if stat is None:
            return Status.NotFound
        if kind == MetricType.COUNTER and offset <= 0:
            return Status.BadArgument
        stat.value = (stat.value + offset) & _U64
        return Status.Ok

    def record(self, vm: Vm, metric_id: int, value: int) -> Status:
        """``record_metric`` (``value`` is a u64): counters add, gauges set, histograms record."""
        stat = self._lookup(vm, metric_id)
        if stat is None:
            return Status.NotFound
        value &= _U64
        if stat.type == MetricType.COUNTER:
            stat.value = (stat.value + value) & _U64
        elif stat.type == MetricType.GAUGE:
            stat.value = value
        else:
            stat.samples.append(value)
        return Status.Ok

    def read(self, vm: Vm, metric_id: int) -> tuple[Status, int]:
        """``get_metric``: ``(Ok, u64 value)``; histograms and id & 3 == 3 are BadArgument."""
        kind = metric_id & _TYPE_MASK
        if kind not in (MetricType.COUNTER, MetricType.GAUGE):
            return Status.BadArgument, 0
        stat = self._lookup(vm, metric_id)
        if stat is None:
            return Status.NotFound, 0
        return Status.Ok, stat.value

    # -- Python API ----------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        """The value of a counter or gauge (the samples list of a histogram), by raw or Envoy name.

        A name used for several types answers counter, then gauge, then histogram.
        """
        stat = self.metric(name)
        if stat is None:
            return default
        return list(stat.samples) if stat.type == MetricType.HISTOGRAM else stat.value

    def histogram(self, name: str) -> list[int]:
        """The samples recorded into histogram ``name``, oldest first (empty if never defined)."""
        stat = self.metric(name, MetricType.HISTOGRAM)
        return list(stat.samples) if stat is not None else []

    def metric(self, name: str, metric_type: MetricType | None = None) -> Metric | None:
        """The :class:`Metric` object for ``name`` (raw or Envoy name), optionally of one type."""
        for raw in _candidates(name):
            for kind in (metric_type,) if metric_type is not None else tuple(MetricType):
                stat = self._stats.get((MetricType(kind), raw))
                if stat is not None:
                    return stat
        return None

    def all(self, *, envoy_names: bool = False) -> dict[str, dict[str, Any]]:
        """``{name: {"type": "counter"|"gauge"|"histogram", "value": value or samples}}``.

        ``envoy_names=True`` keys the result by ``wasmcustom.<name>``. A name defined with more than
        one type appears once per type, as ``"<name> (<type>)"`` for the second and later types.
        """
        out: dict[str, dict[str, Any]] = {}
        for stat in sorted(self._stats.values(), key=lambda s: (s.name, s.type)):
            key = stat.envoy_name if envoy_names else stat.name
            if key in out:
                key = f"{key} ({stat.kind})"
            value: Any = list(stat.samples) if stat.type == MetricType.HISTOGRAM else stat.value
            out[key] = {"type": stat.kind, "value": value}
        return out

    def ids(self, vm: Vm) -> dict[int, str]:
        """``{metric id: name}`` of the ids ``vm`` has defined."""
        return {mid: stat.name for mid, stat in self._table(vm).ids.items()}

    # -- internals -----------------------------------------------------------------------------
    def _table(self, vm: Vm) -> _VmIds:
        entry = self._vms.get(id(vm))
        if entry is None or entry[0] is not vm:
            entry = self._vms[id(vm)] = (vm, _VmIds())
        return entry[1]

    def _lookup(self, vm: Vm, metric_id: int) -> Metric | None:
        entry = self._vms.get(id(vm))
        if entry is None or entry[0] is not vm:
            return None
        return entry[1].ids.get(metric_id)

    def __repr__(self) -> str:
        return f"<Metrics {len(self._stats)} stat(s)>"


def _candidates(name: str | bytes) -> tuple[str, ...]:
    """The raw names ``name`` may mean: itself, and without ``wasmcustom.`` if it has the prefix."""
    raw = name if isinstance(name, str) else bytes(name).decode("utf-8", "surrogateescape")
    return (raw, raw[len(ENVOY_PREFIX) :]) if raw.startswith(ENVOY_PREFIX) else (raw,)
