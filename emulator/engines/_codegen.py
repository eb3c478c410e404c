"""Generated per-signature adapters shared by the engine adapters.

Host functions and export callers are hot: one is run for every host call and every callback.
Generating a tiny function per signature keeps each call to a handful of bytecodes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from types import CodeType
from typing import Any

__all__ = ["MASK32", "MASK64", "build", "to_s64"]

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF


def to_s64(v: int) -> int:
    """Reinterpret a raw 64-bit slot as a signed i64."""
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


@lru_cache(maxsize=1024)
def _code(name: str, src: str) -> CodeType:
    return compile(src, f"<proxy-wasm-emulator adapter {name}>", "exec")


def build(name: str, src: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Define ``name`` from ``src`` with ``namespace`` as its globals and return it.

    Templates repeat (one per signature), so their code objects are compiled once and cached.
    """
    ns = {"MASK32": MASK32, "MASK64": MASK64, "to_s64": to_s64, **namespace}
    exec(_code(name, src), ns)
    return ns[name]
