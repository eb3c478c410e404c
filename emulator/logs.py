"""Log records: what the guest logged through ``proxy_log`` or wrote to stdout/stderr."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from abi import LogLevel

__all__ = ["LogRecord"]


@dataclass(slots=True, unsafe_hash=True)
class LogRecord:
    """One log line, attributed to the plugin and context that produced it.

    (Not frozen: a frozen dataclass pays ``object.__setattr__`` per field, on every log line.)
    """

    level: LogLevel
    message: str
    context_id: int | None = None
    root_id: str = ""
    vm_id: str = ""
    plugin_name: str = ""
    source: str = "proxy_log"
    """``proxy_log``, ``stdout`` or ``stderr`` (WASI ``fd_write``), or ``host`` for emulator notes."""

    @property
    def level_name(self) -> str:
        """``trace``, ``debug``, ``info``, ``warn``, ``error`` or ``critical``."""
        return self.level.name.lower()

    def envoy_line(self) -> str:
        """The line as Envoy prints it: ``wasm log <plugin_name> <root_id> <vm_id>: <message>``."""
        parts = " ".join(p for p in (self.plugin_name, self.root_id, self.vm_id) if p)
        return f"wasm log{' ' + parts if parts else ''}: {self.message}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        d = asdict(self)
        d["level"] = self.level_name
        return d

    def __str__(self) -> str:
        return f"[{self.level_name}] {self.message}"
