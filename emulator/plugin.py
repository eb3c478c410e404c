"""A plugin: one root context on a VM, with its configuration, started the way Envoy starts it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .buffer import Buffer
from .errors import CallbackError, PluginStartError
from .logs import LogRecord
from .vm import Context

if TYPE_CHECKING:
    from .vm import Vm

__all__ = ["Plugin"]

_ENVOY_TRAP = "cpp-host marks the VM failed (FailState::RuntimeError) and Envoy rejects the Wasm configuration; the failed VM never runs again"


class Plugin:
    """One plugin (``root_id``) on a VM: ``on_context_create`` -> ``on_vm_start`` -> ``on_configure``."""

    def __init__(
        self,
        vm: Vm,
        *,
        root_id: str = "",
        name: str = "",
        config: bytes = b"",
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.vm = vm
        self.root_id = root_id
        self.name = name
        self.config = bytes(config)
        self.config_buffer = Buffer(self.config, mutable=False)
        self.properties = dict(properties or {})
        self.root_context_id = vm.new_context_id()
        self.tick_period_ms = 0
        self.next_tick_ms: float | None = None
        self.status: tuple[int, bytes] = (0, b"")
        self.pending_done = False
        self.done_requested = False
        self.started = False
        vm.contexts[self.root_context_id] = Context(self.root_context_id, 0, plugin=self)
        vm.plugins.append(self)

    @property
    def host(self) -> Any:
        """The host this plugin lives in."""
        return self.vm.host

    @property
    def logs(self) -> list[LogRecord]:
        """Every log line of this plugin (root and stream contexts), oldest first."""
        return [r for r in self.vm.host.logs if r.vm_id == self.vm.vm_id and r.root_id == self.root_id]

    def start(self) -> None:
        """Create the root context, run ``on_vm_start`` and ``on_configure``; raise on failure."""
        vm, root = self.vm, self.root_context_id
        self.vm.contexts[root].created_in_vm = vm.has_export("proxy_on_context_create")
        self._run("proxy_on_context_create", root, 0, configuring=True)
        ok = self._run("proxy_on_vm_start", root, len(vm.vm_config))
        if ok == 0:
            raise PluginStartError(
                "proxy_on_vm_start",
                "the filter returned false",
                envoy="cpp-host fails the VM (FailState::StartFailed) and Envoy rejects the Wasm configuration",
            )
        ok = self._run("proxy_on_configure", root, len(self.config), configuring=True)
        if ok == 0:
            raise PluginStartError(
                "proxy_on_configure",
                "the filter returned false",
                envoy="cpp-host reports FailState::ConfigureFailed; Envoy rejects the configuration (at boot Envoy does not start, on xDS the update is refused)",
            )
        self.started = True

    def _run(self, callback: str, *args: int, configuring: bool = False) -> int | None:
        saved = self.vm.configuring
        if configuring:
            self.vm.configuring = self
        try:
            return self.vm.call(callback, *args, context_id=self.root_context_id)
        except CallbackError as err:
            raise PluginStartError(callback, str(err), envoy=_ENVOY_TRAP, cause=err) from None
        finally:
            self.vm.configuring = saved

    def set_tick_period(self, period_ms: int) -> None:
        """``proxy_set_tick_period_milliseconds`` for this root context (0 disables the timer)."""
        self.tick_period_ms = period_ms
        now = self.vm.host.clock.now_ms
        self.next_tick_ms = now + period_ms if period_ms else None

    def tick(self) -> None:
        """Deliver one ``proxy_on_tick`` to the root context."""
        self.vm.call("proxy_on_tick", self.root_context_id, context_id=self.root_context_id)

    def __repr__(self) -> str:
        return f"<Plugin root_id={self.root_id!r} vm_id={self.vm.vm_id!r} context={self.root_context_id} started={self.started}>"
