"""An on-disk cache of compiled modules, so the second load of a filter costs milliseconds.

Key: sha256 of the wasm bytes + engine name and version + engine configuration. A file's sha256 is
remembered by its stamp (path, size, mtime, ctime, inode), so a new process that loads a file it
has loaded before hashes nothing. Entries are written atomically (safe under pytest-xdist); an
entry the engine cannot load is deleted and rebuilt. The cache keeps at most ``max_bytes``
(``$PROXY_WASM_EMULATOR_CACHE_MAX_MB``, default 1024 MiB): after each write the least recently used
entries go (a hit marks its entry used).
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engines.base import CompileError, Engine

try:
    from _blake2 import blake2b as _blake2b  # CPython's BLAKE2: ``hashlib`` would load OpenSSL (2 ms)
except ImportError:  # pragma: no cover - another Python
    from hashlib import blake2b as _blake2b

__all__ = ["DEFAULT_MAX_BYTES", "FileStamp", "ModuleCache", "default_cache_dir", "file_stamp", "wasm_digest"]

FileStamp = tuple[str, int, int, int, int]
"""``(absolute path, size, mtime_ns, ctime_ns, inode)`` of a file: any write changes it (the ctime
cannot be set back)."""


def file_stamp(path: str | os.PathLike[str]) -> FileStamp | None:
    """The stamp of a module file, or ``None`` when it cannot be read (reading it then gives the error)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def wasm_digest(wasm: bytes) -> str:
    """The sha256 of a module's bytes, in hex: its name in the cache and in a session."""
    import hashlib  # here: a module seen before is known by its stamp, and ``hashlib`` costs 2 ms to import

    return hashlib.sha256(wasm).hexdigest()


def _short_digest(text: str, size: int = 8) -> str:
    return _blake2b(text.encode(), digest_size=size).hexdigest()


DEFAULT_MAX_BYTES = 1024 << 20


def default_cache_dir() -> Path:
    """``$PROXY_WASM_EMULATOR_CACHE``, else ``$XDG_CACHE_HOME/proxy-wasm-emulator``, else ``~/.cache/...``."""
    env = os.environ.get("PROXY_WASM_EMULATOR_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "proxy-wasm-emulator"


class ModuleCache:
    """Compile through the cache: ``cache.compile(engine, wasm)``; ``hits``/``misses`` count use."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        if max_bytes is None:
            env = os.environ.get("PROXY_WASM_EMULATOR_CACHE_MAX_MB")
            max_bytes = int(float(env) * (1 << 20)) if env else DEFAULT_MAX_BYTES
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0

    def path_for(self, engine: Engine, wasm: bytes | None = None, *, digest: str | None = None, variant: str = "") -> Path:
        """Where the artifact for this module (or its sha256 ``digest``) and engine lives."""
        if digest is None:
            digest = wasm_digest(wasm or b"")
        key = _short_digest(engine.cache_key() + variant)
        return self.directory / engine.name / f"{digest}-{key}.bin"

    def compile(self, engine: Engine, wasm: bytes | Callable[[], bytes], *, digest: str | None = None, variant: str = "") -> Any:
        """A compiled module, from the cache when possible.

        ``wasm`` may be a callable producing the bytes, so a warm load never builds them;
        ``digest``/``variant`` name the entry without hashing the bytes again.
        """
        if digest is None:
            wasm = wasm() if callable(wasm) else wasm
            digest = wasm_digest(wasm)
        path = self.path_for(engine, digest=digest, variant=variant)
        if path.exists():
            try:
                module = engine.deserialize_file(str(path))
                self.hits += 1
                _touch(path)
                return module
            except CompileError:
                self.rebuilt += 1
                path.unlink(missing_ok=True)
        self.misses += 1
        module = engine.compile(wasm() if callable(wasm) else wasm)
        try:
            self._store(path, engine.serialize(module))
        except OSError:
            pass  # a read-only or full cache directory must not break loading
        return module

    def known_digest(self, stamp: FileStamp) -> str | None:
        """The sha256 of the file with this stamp, if a load remembered it (:meth:`remember_digest`)."""
        try:
            text = self._stamp_path(stamp).read_text()
        except (OSError, ValueError):
            return None
        return text if len(text) == 64 else None

    def remember_digest(self, stamp: FileStamp, digest: str) -> None:
        """Remember the sha256 of the file with this stamp, for the next process that loads it."""
        try:
            self._store(self._stamp_path(stamp), digest.encode())
        except OSError:
            pass

    def _stamp_path(self, stamp: FileStamp) -> Path:
        return self.directory / "stamps" / _short_digest(repr(stamp), 16)

    def load_meta(self, digest: str) -> Any:
        """What the loader learned about a module earlier (plain data: see :meth:`store_meta`), or
        ``None`` (never stored, or unreadable)."""
        path = self.directory / "meta" / f"{digest}.marshal"
        try:
            return marshal.loads(path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return None

    def store_meta(self, digest: str, meta: Any) -> None:
        """Remember what the loader learned about a module (its outline, its coverage map) for the
        next load: plain data (tuples, lists, dicts, sets, strings, bytes, numbers, None), written
        with :mod:`marshal`, which is built in (``pickle`` would add 1 ms to ``import emulator``)."""
        try:
            self._store(self.directory / "meta" / f"{digest}.marshal", marshal.dumps(meta))
        except (OSError, ValueError):
            pass

    def entries(self) -> list[tuple[Path, int, float]]:
        """``(path, bytes, last used)`` of every entry, least recently used first."""
        out = []
        for p in self.directory.rglob("*"):
            if p.is_file() and not p.name.startswith(".tmp-"):
                try:
                    st = p.stat()
                except OSError:
                    continue
                out.append((p, st.st_size, st.st_mtime))
        return sorted(out, key=lambda e: e[2])

    def size(self) -> int:
        """Bytes the cache holds."""
        return sum(n for _, n, _ in self.entries())

    def evict(self, keep: Path | None = None) -> int:
        """Delete least recently used entries until the cache fits ``max_bytes``; returns bytes freed."""
        entries = self.entries()
        total = sum(n for _, n, _ in entries)
        freed = 0
        for path, n, _ in entries:
            if total - freed <= self.max_bytes:
                break
            if path == keep:
                continue
            try:
                path.unlink()
                freed += n
            except OSError:
                pass
        return freed

    def clear(self) -> int:
        """Delete every entry; returns bytes freed."""
        freed = 0
        for path, n, _ in self.entries():
            try:
                path.unlink()
                freed += n
            except OSError:
                pass
        return freed

    def _store(self, path: Path, data: bytes) -> None:
        import tempfile  # here, not at import: only a cache miss writes, and tempfile (with shutil) costs 3 ms to import

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.evict(keep=path)


def _touch(path: Path) -> None:
    """Mark an entry as just used (its mtime orders the eviction)."""
    try:
        os.utime(path)
    except OSError:
        pass
