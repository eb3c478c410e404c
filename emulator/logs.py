"""Log records: what the guest logged through ``proxy_log`` or wrote to stdout/stderr."""

from __future__ import annotations

from typing import Any

from abi import LogLevel

__all__ = ["LogRecord", "log_line"]

try:  # the speed mode's C helpers; without them a record stays tracked (slower collections, same logs)
    from .untracked import new_record, untracked
except ImportError:
    new_record = None

    def untracked(record: LogRecord) -> LogRecord:
        return record


_LEVELS = tuple(LogLevel)
_FIELDS = ("level", "message", "context_id", "root_id", "vm_id", "plugin_name", "source")


class LogRecord(tuple):
    """One log line, attributed to the plugin and context that produced it.

    A tuple of plain values (the level is kept as its number): a host keeps every line, so in the
    speed mode each record is taken out of the garbage collector as it is made
    (:mod:`emulator.untracked`), and a long run's logs cost no collection time. (The collector
    untracks plain tuples of plain values by itself, but never a tuple subclass.) Fields read as
    attributes; ``level`` is the :class:`LogLevel`.
    ``source`` is ``proxy_log``, ``stdout`` or ``stderr`` (WASI ``fd_write``), or ``host`` for
    emulator notes.
    """

    __slots__ = ()

    def __new__(
        cls,
        level: LogLevel | int,
        message: str,
        context_id: int | None = None,
        root_id: str = "",
        vm_id: str = "",
        plugin_name: str = "",
        source: str = "proxy_log",
    ) -> LogRecord:
        return untracked(tuple.__new__(cls, (int(level), message, context_id, root_id, vm_id, plugin_name, source)))

    @property
    def level(self) -> LogLevel:
        """The level (``LogLevel.INFO``, ...)."""
        return _LEVELS[self[0]]

    @property
    def message(self) -> str:
        """The text logged."""
        return self[1]

    @property
    def context_id(self) -> int | None:
        """The context that logged it."""
        return self[2]

    @property
    def root_id(self) -> str:
        """The root id of its plugin."""
        return self[3]

    @property
    def vm_id(self) -> str:
        """The vm_id of its VM."""
        return self[4]

    @property
    def plugin_name(self) -> str:
        """The name of its plugin."""
        return self[5]

    @property
    def source(self) -> str:
        """``proxy_log``, ``stdout``, ``stderr`` or ``host``."""
        return self[6]

    @property
    def level_name(self) -> str:
        """``trace``, ``debug``, ``info``, ``warn``, ``error`` or ``critical``."""
        return self.level.name.lower()

    def envoy_line(self) -> str:
        """The line as Envoy prints it: ``wasm log <plugin_name> <root_id> <vm_id>: <message>``."""
        parts = " ".join(p for p in (self.plugin_name, self.root_id, self.vm_id) if p)
        return f"wasm log{' ' + parts if parts else ''}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = dict(zip(_FIELDS, self, strict=True))
        d["level"] = self.level_name
        return d

    def __repr__(self) -> str:
        return "LogRecord(" + ", ".join(f"{k}={v!r}" for k, v in zip(_FIELDS, (self.level, *self[1:]), strict=True)) + ")"

    def __str__(self) -> str:
        return f"[{self.level_name}] {self.message}"

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)


def log_line(level: LogLevel | int, message: str, context_id: int | None, root_id: str, vm_id: str, plugin_name: str, source: str) -> LogRecord:
    """``LogRecord(level, message, ...)`` with every field given: what each guest log line makes. In
    the speed mode it is one C call (:func:`emulator.untracked.new_record`), not ``__new__``."""
    if new_record is not None:
        return new_record(LogRecord, level, message, context_id, root_id, vm_id, plugin_name, source)  # type: ignore[no-any-return]
    return LogRecord(level, message, context_id, root_id, vm_id, plugin_name, source)
