"""One virtual clock for proxy time, WASI clocks, ticks and timeouts; it moves only when told."""

from __future__ import annotations

__all__ = ["DEFAULT_EPOCH_NS", "MONOTONIC_BASE_NS", "VirtualClock"]

DEFAULT_EPOCH_NS = 1_767_225_600_000_000_000
"""2026-01-01T00:00:00Z: where the realtime clock starts unless the host is told otherwise."""


MONOTONIC_BASE_NS = 1_000_000_000
"""The monotonic clock reads 1 s at host creation: runtimes such as Go's refuse a clock at zero."""


class VirtualClock:
    """Realtime and monotonic nanoseconds that advance only through :meth:`advance`."""

    __slots__ = ("_elapsed", "_epoch")

    def __init__(self, epoch_ns: int = DEFAULT_EPOCH_NS) -> None:
        self._epoch = epoch_ns
        self._elapsed = 0

    @property
    def realtime_ns(self) -> int:
        """Wall-clock nanoseconds since the Unix epoch (``proxy_get_current_time_nanoseconds``)."""
        return self._epoch + self._elapsed

    @property
    def monotonic_ns(self) -> int:
        """WASI monotonic clock: :data:`MONOTONIC_BASE_NS` plus the time advanced since creation."""
        return MONOTONIC_BASE_NS + self._elapsed

    @property
    def now_ms(self) -> float:
        """Monotonic milliseconds, the unit of tick periods and timeouts."""
        return self._elapsed / 1e6

    @property
    def elapsed_ns(self) -> int:
        """Nanoseconds advanced since the host was created."""
        return self._elapsed

    def advance_ns(self, ns: int) -> None:
        """Move both clocks forward by ``ns`` nanoseconds."""
        if ns < 0:
            raise ValueError("the virtual clock cannot go backwards")
        self._elapsed += ns

    def advance(self, ms: float) -> None:
        """Move both clocks forward by ``ms`` milliseconds."""
        self.advance_ns(int(ms * 1_000_000))
