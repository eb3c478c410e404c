"""Shared data and shared queues, scoped by vm_id, as proxy-wasm-cpp-host keeps them (abi-spec.md §1.10-1.11)."""

from __future__ import annotations

__all__ = ["SharedData", "SharedQueues"]


class SharedData:
    """Process-wide key/value store with cpp-host's CAS rules (filled in by the shared-state work)."""


class SharedQueues:
    """Process-wide queues keyed by (vm_id, name) (filled in by the shared-state work)."""
