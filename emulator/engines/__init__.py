"""Engine adapters behind one protocol; nothing outside this package imports a wasm engine.

``get_engine("wasmtime")`` (the default, any Python) or ``get_engine("wasmer")`` (Python <= 3.10,
cranelift) returns a shared engine per configuration.
"""

from __future__ import annotations

import atexit
from types import ModuleType

from .base import (
    CompileError,
    Engine,
    EngineConfig,
    EngineError,
    Frame,
    GuestMemory,
    GuestTrap,
    HostFunction,
    Instance,
    Linked,
    LinkError,
    MemoryAccessError,
)

__all__ = [
    "ENGINE_NAMES",
    "accelerator",
    "CompileError",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Frame",
    "GuestMemory",
    "GuestTrap",
    "HostFunction",
    "Instance",
    "LinkError",
    "Linked",
    "MemoryAccessError",
    "available_engines",
    "get_engine",
    "wat2wasm",
]

ENGINE_NAMES = ("wasmtime", "wasmtime-stock", "wasmer")

_ENGINES: dict[tuple[str, EngineConfig], Engine] = {}
# Drop engines before interpreter teardown: wasmtime-py objects must die while its ctypes module lives.
atexit.register(_ENGINES.clear)


def accelerator() -> ModuleType | None:
    """The speed mode's C accelerator (``emulator.engines._crossing``), or None where it is not in
    use (pure Python, no C compiler at install time, or a build its sources no longer match): the
    code that uses it keeps its Python reference path for that case. Imported on first use."""
    try:
        from . import _crossing
    except ImportError:
        return None
    return _crossing


def get_engine(name: str = "wasmtime", config: EngineConfig | None = None) -> Engine:
    """The process-wide engine for ``name`` and ``config`` (engines are immutable once made).

    ``wasmtime-stock`` is wasmtime through the stock wasmtime-py API, without the fast path
    (for comparisons and as the fallback).
    """
    config = config or EngineConfig()
    key = (name, config)
    engine = _ENGINES.get(key)
    if engine is None:
        if name in ("wasmtime", "wasmtime-stock"):
            from .wasmtime_engine import WasmtimeEngine

            engine = WasmtimeEngine(config, fast=name == "wasmtime")
            if name == "wasmtime-stock":
                engine.name = "wasmtime-stock"
        elif name == "wasmer":
            from .wasmer_engine import WasmerEngine

            engine = WasmerEngine(config)
        else:
            raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(ENGINE_NAMES)}")
        _ENGINES[key] = engine
    return engine


def available_engines() -> dict[str, str | None]:
    """Each engine name mapped to ``None`` if usable here, else the reason it is not."""
    from .wasmer_engine import wasmer_available

    return {"wasmtime": None, "wasmtime-stock": None, "wasmer": wasmer_available()}


def wat2wasm(text: str) -> bytes:
    """WebAssembly text compiled to a binary module (wasmtime's parser); for generated guests and tests."""
    import wasmtime

    return bytes(wasmtime.wat2wasm(text))
