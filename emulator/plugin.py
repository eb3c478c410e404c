"""A plugin: one root context on a VM, with its configuration, started the way Envoy starts it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from abi import FailurePolicy, Status

from .buffer import Buffer
from .contexts import CallInputs, RootContext
from .errors import CallbackError, PluginStartError
from .http.headers import HeadersLike
from .http.messages import Request, Response, feed
from .http.stream import DEFAULT_BUFFER_LIMIT, HttpStream
from .logs import LogRecord
from .stream_info import ConnectionInfo

if TYPE_CHECKING:
    from .tcp import TcpConnection
    from .vm.instance import Vm

__all__ = ["Plugin"]

_ENVOY_TRAP = "cpp-host marks the VM failed (FailState::RuntimeError) and Envoy rejects the Wasm configuration; the failed VM never runs again"


class Plugin(RootContext):
    """One plugin (``root_id``) on a VM: ``on_context_create`` -> ``on_vm_start`` -> ``on_configure``.

    It is the root context: the receiver of the host calls its root callbacks make (see
    :mod:`emulator.contexts`).
    """

    def __init__(
        self,
        vm: Vm,
        *,
        root_id: str = "",
        name: str = "",
        config: bytes = b"",
        properties: Mapping[str, Any] | None = None,
        fail_policy: FailurePolicy | str = FailurePolicy.FAIL_CLOSED,
        allow_on_headers_stop_iteration: bool = False,
        connection: ConnectionInfo | None = None,
        reload_backoff_ms: float = 1000.0,
    ) -> None:
        self.vm = vm
        self.host = vm.host
        """The host this plugin lives in."""
        self.fail_policy = _policy(fail_policy)
        self.allow_on_headers_stop_iteration = allow_on_headers_stop_iteration
        self.connection = connection
        self.reload_backoff_ms = reload_backoff_ms
        self.streams: list[HttpStream] = []
        self.failures: list[CallbackError] = []
        self.reloads = 0
        self._failed_at_ms: float | None = None
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
        self.deleted = False
        self.connections: list[Any] = []
        self.started = False
        vm.contexts[self.root_context_id] = self
        vm.plugins.append(self)

    @property
    def logs(self) -> list[LogRecord]:
        """Every log line of this plugin (root and stream contexts), oldest first."""
        return [r for r in self.vm.host.logs if r.vm_id == self.vm.vm_id and r.root_id == self.root_id]

    def start(self) -> None:
        """Create the root context, run ``on_vm_start`` and ``on_configure``; raise on failure."""
        vm, root = self.vm, self.root_context_id
        self.created_in_vm = vm.has_export("proxy_on_context_create")
        self._run("proxy_on_context_create", root, 0, configuring=True)
        ok = self._run("proxy_on_vm_start", root, len(vm.vm_config))
        if ok == 0:
            raise PluginStartError(
                "proxy_on_vm_start",
                "the filter returned false",
                envoy="cpp-host fails the VM (FailState::StartFailed) and Envoy rejects the Wasm configuration",
            )
        # cpp-host ContextBase::onConfigure: "If no on_context_create function is registered the
        # in-VM SDK is responsible for managing any required in-VM state": the root context counts
        # as created from here on, so proxy_on_delete reaches it at shutdown.
        self.created_in_vm = True
        ok = self._run("proxy_on_configure", root, len(self.config), configuring=True)
        if ok == 0:
            raise PluginStartError(
                "proxy_on_configure",
                "the filter returned false",
                envoy="cpp-host reports FailState::ConfigureFailed; Envoy rejects the configuration (at boot Envoy does not start, on xDS the update is refused)",
            )
        self.started = True

    def _run(self, callback: str, *args: int, configuring: bool = False) -> int | None:
        try:
            with self.scope(CallInputs(configuring=True) if configuring else None):
                return self.vm.call(callback, *args, context_id=self.root_context_id)
        except CallbackError as err:
            raise PluginStartError(callback, str(err), envoy=_ENVOY_TRAP, cause=err) from None

    def set_tick_period(self, period_ms: int) -> Status:
        """``proxy_set_tick_period_milliseconds`` for this root context (0 disables the timer)."""
        self.tick_period_ms = period_ms
        now = self.vm.host.clock.now_ms
        self.next_tick_ms = now + period_ms if period_ms else None
        return Status.Ok

    def tick(self) -> None:
        """Deliver one ``proxy_on_tick`` to the root context (a trap is recorded, logged and raised)."""
        self.run("proxy_on_tick", self.root_context_id, reraise=True)

    # -- HTTP ----------------------------------------------------------------------------------
    def http_stream(self, *, connection: ConnectionInfo | None = None, buffer_limit: int | None = None) -> HttpStream:
        """A new HTTP stream context (``proxy_on_context_create(stream, root)``).

        On a failed VM the fail policy decides: FAIL_CLOSED streams answer 503 without entering the
        VM, FAIL_OPEN streams skip the filter, FAIL_RELOAD streams get a fresh VM once the reload
        backoff has passed on the virtual clock.
        """
        if self.vm.failed is not None:  # the reload check, only where it can apply: every stream starts here
            self._reload_if_due()
        return HttpStream(self, connection=connection, buffer_limit=buffer_limit or DEFAULT_BUFFER_LIMIT)

    def http_exchange(
        self,
        request: Request | HeadersLike = None,
        response: Response | HeadersLike = None,
        *,
        connection: ConnectionInfo | None = None,
    ) -> HttpStream:
        """One whole exchange: the request, then (if it reached upstream) the response, then the end.

        ``request``/``response`` are :class:`Request`/:class:`Response` or just headers. Bodies are
        split by their ``chunks`` setting; ``end_of_stream`` is set where Envoy would set it.
        """
        stream = self.http_stream(connection=connection)
        feed(stream, "request", request)
        if response is not None and not stream.completed and stream.upstream_request.headers is not None:
            feed(stream, "response", response)
        stream.complete()
        return stream

    def tcp_connection(self, *, connection: ConnectionInfo | None = None) -> TcpConnection:
        """A new network-filter connection (``on_context_create``, ``on_new_connection``)."""
        from .tcp import TcpConnection

        self._reload_if_due()
        conn = TcpConnection(self, connection=connection)
        self.connections.append(conn)
        return conn

    def shutdown(self) -> None:
        """Remove the plugin as Envoy does: open streams end, then ``proxy_on_done(root)``.

        ``true`` deletes the root context at once (``proxy_on_delete``); ``false`` leaves it
        pending until the filter calls ``proxy_done()``. ``on_log`` is not called for roots.
        """
        for stream in list(self.streams):
            stream.complete()
        for conn in list(self.connections):
            conn.close()
        if self.vm.failed is not None or self.deleted:
            return
        self.next_tick_ms = None
        root = self.root_context_id
        try:
            done = self.vm.call("proxy_on_done", root, context_id=root)
        except CallbackError as err:
            self.on_failure(err)
            return
        if done is None or done:
            self.finish_delete()
        else:
            self.pending_done = True
        self.host.drain()

    def finish_delete(self) -> None:
        """``proxy_on_delete(root)``: the end of the root context."""
        if self.deleted or self.vm.failed is not None:
            return
        self.pending_done = False
        self.deleted = True
        root = self.root_context_id
        try:
            if self.vm.contexts.get(root) is self and self.created_in_vm:
                self.vm.call("proxy_on_delete", root, context_id=root)
        except CallbackError as err:
            self.on_failure(err)
        self.vm.contexts.pop(root, None)
        self._cancel_callouts()

    def _cancel_callouts(self) -> None:
        """The root context is gone: Envoy's ~Context cancels its pending HTTP and gRPC requests
        (source/extensions/common/wasm/context.cc ``Context::~Context``/``onDestroy``: ``request_->cancel()``
        for every ``http_request_``, ``grpc_call_request_`` and ``grpc_stream_`` entry). The calls
        belong to the root context (cpp-host exports.cc: ``contextOrEffectiveContext()->root_context()``)."""
        host = self.host
        for call in [*host.http_calls.calls, *host.grpc_calls.calls]:
            if call.plugin is self and call.pending:
                call.state = "cancelled"

    def on_failure(self, err: CallbackError) -> None:
        """Remember a VM failure (for fail policies and reporting)."""
        self.failures.append(err)
        self._failed_at_ms = self.vm.host.clock.now_ms

    def _reload_if_due(self) -> None:
        """FAIL_RELOAD after its backoff; a callback stopped by its deadline or fuel budget always gets a fresh VM."""
        failed = self.vm.failed
        if failed is None:
            return
        if failed.trap.kind in ("interrupt", "fuel"):
            self._maybe_reload(force=True)
        elif self.fail_policy == FailurePolicy.FAIL_RELOAD:
            self._maybe_reload()

    def _maybe_reload(self, force: bool = False) -> None:
        now = self.vm.host.clock.now_ms
        if not force and self._failed_at_ms is not None and now - self._failed_at_ms < self.reload_backoff_ms:
            return
        old = self.vm
        vm = old.host.create_vm(old.program, vm_id=old.vm_id, vm_config=old.vm_config, environment=old.environment)
        self.vm = vm
        self.root_context_id = vm.new_context_id()
        vm.contexts[self.root_context_id] = self
        vm.plugins.append(self)
        self.streams.clear()
        self.reloads += 1
        self.tick_period_ms, self.next_tick_ms = 0, None
        self.start()

    def __repr__(self) -> str:
        return f"<Plugin root_id={self.root_id!r} vm_id={self.vm.vm_id!r} context={self.root_context_id} started={self.started}>"


def _policy(value: FailurePolicy | str) -> FailurePolicy:
    if isinstance(value, FailurePolicy):
        return FailurePolicy.FAIL_CLOSED if value == FailurePolicy.UNSPECIFIED else value
    name = str(value).upper().replace("-", "_")
    if not name.startswith("FAIL_"):
        name = "FAIL_" + name
    try:
        return FailurePolicy[name]
    except KeyError:
        raise ValueError(f"unknown fail policy {value!r}: use FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD") from None
