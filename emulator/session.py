"""A session owns what many hosts share in one process: linked programs and warm starts.

Building a :class:`~emulator.vm.program.Program` (parse, compile, link) costs milliseconds to
seconds, and a started plugin (``_initialize``, ``on_vm_start``, ``on_configure``) costs more; both
are immutable or restorable, so every :class:`~emulator.Host` of a session reuses them. Fuzzing,
hardening and the strategies keep their caches here too, each under its own name, so one object
has the lifetime of all of them: :func:`default_session` lives until the process ends (or
:meth:`Session.clear`), and a ``Host(session=Session())`` shares nothing with the others.
"""

from __future__ import annotations

import atexit
from collections import OrderedDict
from typing import Any

__all__ = ["Session", "default_session"]


class Session:
    """The shared caches of a group of hosts; see the module docstring."""

    def __init__(self, *, max_starts: int = 8) -> None:
        self.programs: dict[tuple[Any, ...], Any] = {}
        """Linked programs by (engine key, sha256, stubbed, capabilities): immutable once built."""
        self.starts: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        """Warm starts (a started host and its snapshot) by what made them, least recently used first."""
        self.max_starts = max_starts
        self._caches: dict[str, dict[Any, Any]] = {}

    def cache(self, name: str) -> dict[Any, Any]:
        """A named cache of this session (e.g. ``"strategies"``, ``"hardening.probe"``), created empty."""
        return self._caches.setdefault(name, {})

    def remember_start(self, key: tuple[Any, ...], entry: Any) -> None:
        """Keep a warm start, dropping the least recently used beyond ``max_starts``."""
        self.starts[key] = entry
        self.starts.move_to_end(key)
        while len(self.starts) > self.max_starts:
            self.starts.popitem(last=False)

    def start(self, key: tuple[Any, ...]) -> Any:
        """A warm start made earlier (marked as just used), or ``None``."""
        entry = self.starts.get(key)
        if entry is not None:
            self.starts.move_to_end(key)
        return entry

    def clear(self) -> None:
        """Drop everything this session holds."""
        self.programs.clear()
        self.starts.clear()
        self._caches.clear()


_DEFAULT: Session | None = None


def default_session() -> Session:
    """The session hosts use unless given one; cleared when the interpreter exits."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Session()
        atexit.register(_DEFAULT.clear)  # engine objects must die while the engine's ctypes module lives
    return _DEFAULT
