"""Deterministic cost figures: what a callback or a request costs, independent of the machine.

Guest instructions come from wasmtime fuel (about one unit per wasm operator); host calls,
bytes copied across the boundary and guest-allocator use are counted by the host. Wall-clock
time is not here on purpose: it belongs to benchmarks, these belong to regression gates.
"""

from __future__ import annotations

from typing import Any

from abi.records import fields_eq, fields_repr

__all__ = ["Cost", "DETERMINISTIC"]

DETERMINISTIC = ("instructions", "host_calls", "bytes_to_guest", "bytes_from_guest", "alloc_calls", "alloc_bytes")
"""The cost fields that are identical on every machine for the same module and traffic: all of
:class:`Cost`'s, in its constructor's order."""


class Cost:
    """The cost of one callback, one request or one run.

    ``instructions`` are guest instructions (wasmtime fuel units), ``None`` when the engine cannot
    count them (wasmer); the other fields are counted by the host. Costs add up (``a + b``) and
    compare by value.
    """

    # a plain class, not a dataclass: every metered callback makes one (compiled, see costs.pxd)
    __slots__ = DETERMINISTIC

    def __init__(
        self,
        instructions: int | None = 0,
        host_calls: int = 0,
        bytes_to_guest: int = 0,
        bytes_from_guest: int = 0,
        alloc_calls: int = 0,
        alloc_bytes: int = 0,
    ) -> None:
        self.instructions = instructions
        self.host_calls = host_calls
        self.bytes_to_guest = bytes_to_guest
        self.bytes_from_guest = bytes_from_guest
        self.alloc_calls = alloc_calls
        self.alloc_bytes = alloc_bytes

    def __add__(self, other: Cost) -> Cost:
        values = []
        for name in DETERMINISTIC:
            a, b = getattr(self, name), getattr(other, name)
            values.append(None if a is None or b is None else a + b)
        return Cost(*values)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {name: getattr(self, name) for name in DETERMINISTIC}

    def __repr__(self) -> str:
        return fields_repr(self, DETERMINISTIC)

    def __eq__(self, other: object) -> bool:
        return fields_eq(self, other, DETERMINISTIC)

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass


def total(costs: list[Cost | None]) -> Cost:
    """The sum of several costs (missing ones count as zero)."""
    out = Cost()
    for c in costs:
        if c is not None:
            out = out + c
    return out
