"""Metrics with Envoy's semantics (abi-spec.md §1.12)."""

from __future__ import annotations

__all__ = ["Metrics"]


class Metrics:
    """Counters, gauges and histograms by name (filled in by the metrics work)."""
