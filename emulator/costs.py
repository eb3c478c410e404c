"""Deterministic cost figures: what a callback or a request costs, independent of the machine.

Guest instructions come from wasmtime fuel (about one unit per wasm operator); host calls,
bytes copied across the boundary and guest-allocator use are counted by the host. Wall-clock
time is not here on purpose: it belongs to benchmarks, these belong to regression gates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["Cost", "DETERMINISTIC"]

DETERMINISTIC = ("instructions", "host_calls", "bytes_to_guest", "bytes_from_guest", "alloc_calls", "alloc_bytes")
"""The cost fields that are identical on every machine for the same module and traffic."""


@dataclass(slots=True)
class Cost:
    """The cost of one callback, one request or one run."""

    instructions: int | None = 0
    """Guest instructions (wasmtime fuel units); ``None`` when the engine cannot count them (wasmer)."""
    host_calls: int = 0
    bytes_to_guest: int = 0
    bytes_from_guest: int = 0
    alloc_calls: int = 0
    alloc_bytes: int = 0

    def __add__(self, other: Cost) -> Cost:
        values = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            values[f.name] = None if a is None or b is None else a + b
        return Cost(**values)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def total(costs: list[Cost | None]) -> Cost:
    """The sum of several costs (missing ones count as zero)."""
    out = Cost()
    for c in costs:
        if c is not None:
            out = out + c
    return out
