"""An on-disk cache of compiled modules, so the second load of a filter costs milliseconds.

Key: sha256 of the wasm bytes + engine name and version + engine configuration. Entries are written
atomically (safe under pytest-xdist); an entry the engine cannot load is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from .engines.base import CompileError, Engine

__all__ = ["ModuleCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$PROXY_WASM_EMULATOR_CACHE``, else ``$XDG_CACHE_HOME/proxy-wasm-emulator``, else ``~/.cache/...``."""
    env = os.environ.get("PROXY_WASM_EMULATOR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "proxy-wasm-emulator"


class ModuleCache:
    """Compile through the cache: ``cache.compile(engine, wasm)``; ``hits``/``misses`` count use."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0

    def path_for(self, engine: Engine, wasm: bytes) -> Path:
        """Where the artifact for this module and engine lives."""
        digest = hashlib.sha256(wasm).hexdigest()
        key = hashlib.sha256(engine.cache_key().encode()).hexdigest()[:16]
        return self.directory / engine.name / f"{digest}-{key}.bin"

    def compile(self, engine: Engine, wasm: bytes) -> Any:
        """A compiled module, from the cache when possible."""
        path = self.path_for(engine, wasm)
        if path.exists():
            try:
                module = engine.deserialize_file(str(path))
                self.hits += 1
                return module
            except CompileError:
                self.rebuilt += 1
                path.unlink(missing_ok=True)
        self.misses += 1
        module = engine.compile(wasm)
        try:
            self._store(path, engine.serialize(module))
        except OSError:
            pass  # a read-only or full cache directory must not break loading
        return module

    @staticmethod
    def _store(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
