"""The ``proxy-wasm-emulator`` command: :mod:`.main` (inspect, run, bench) and :mod:`.fuzz`."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
