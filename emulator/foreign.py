"""Foreign functions: a registry of Python callables and Envoy's built-ins (abi-spec.md §1.14, §8)."""

from __future__ import annotations

__all__ = ["ForeignFunctions"]


class ForeignFunctions:
    """The foreign-function registry of a host (filled in by the foreign-function work)."""
