"""Contexts are the receivers of host calls: one small semantic interface per host-call family.

This is cpp-host's ``ContextBase`` (include/proxy-wasm/context_interface.h): the glue in
:mod:`emulator.glue` finds the active context, checks enums, reads its arguments from guest
memory, calls *one* method here and writes the results back. Everything Envoy decides lives on
this side. :class:`ContextBase` gives every call the answer Envoy gives where a context does not
support it, in one place; the root context (:class:`~emulator.plugin.Plugin`), the HTTP stream
(:class:`~emulator.http.stream.HttpStream`), the TCP connection
(:class:`~emulator.tcp.TcpConnection`) and the VM context (:class:`VmContext`) override
what Envoy gives them. No method here sees guest memory or the running instance.

Per-callback inputs (an HTTP callout's response, a gRPC message, foreign-call data, the plugin
configuration while configuring) travel with the callback as a :class:`CallInputs` scope, set on
the receiving context for the duration of that one callback by :meth:`ContextBase.run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from abi import BufferType, LogLevel, MapType, Status, StreamType
from abi.records import field, record

from .buffer import Buffer
from .errors import CallbackError
from .logs import LogRecord, log_line
from .properties import resolve_property

if TYPE_CHECKING:
    from .host import Host
    from .http.headers import HeaderMap
    from .http.types import LocalResponse
    from .plugin import Plugin
    from .vm.instance import Vm

__all__ = [
    "Buffers",
    "CallInputs",
    "ContextBase",
    "HeaderMaps",
    "HttpCalls",
    "Logging",
    "Metrics",
    "Properties",
    "RootContext",
    "SharedData",
    "SharedQueues",
    "StreamContext",
    "StreamControl",
    "Timers",
    "VmContext",
]

_EMPTY = Buffer(b"", mutable=False)
# enum members the request path reads, bound once (why: tests/unit/test_hot_lookups.py)
_OK, _NOT_FOUND = Status.Ok, Status.NotFound
Pairs = list[tuple[bytes, bytes]]


# -- the interfaces (each a small Protocol, as cpp-host's context_interface.h) -------------------------


class HeaderMaps(Protocol):
    """Header, trailer and metadata maps (abi-spec.md §1.6)."""

    def get_header_map_pairs(self, map_type: MapType) -> tuple[Status, Pairs]: ...
    def set_header_map_pairs(self, map_type: MapType, pairs: Pairs) -> Status: ...
    def get_header_map_value(self, map_type: MapType, key: bytes) -> tuple[Status, bytes | None]: ...
    def add_header_map_value(self, map_type: MapType, key: bytes, value: bytes) -> Status: ...
    def replace_header_map_value(self, map_type: MapType, key: bytes, value: bytes) -> Status: ...
    def remove_header_map_value(self, map_type: MapType, key: bytes) -> Status: ...
    def get_header_map_size(self, map_type: MapType) -> tuple[Status, int]: ...


class Buffers(Protocol):
    """Bodies, configurations and callout payloads (abi-spec.md §1.4, §1.5)."""

    def get_buffer(self, kind: BufferType) -> Buffer | None: ...


class Properties(Protocol):
    """Envoy attributes and filter state (abi-spec.md §1.13, §7)."""

    def get_property(self, path: tuple[bytes, ...]) -> tuple[Status, bytes]: ...
    def set_property(self, path: bytes, value: bytes) -> Status: ...


class HttpCalls(Protocol):
    """HTTP and gRPC callouts (abi-spec.md §1.8)."""

    def http_call(self, cluster: str, headers: Pairs, body: bytes, trailers: Pairs, timeout_ms: int) -> tuple[Status, int]: ...
    def grpc_call(self, kind: str, upstream: bytes, service: bytes, method: bytes, metadata: Pairs, message: bytes, timeout_ms: int) -> tuple[Status, int]: ...
    def grpc_send(self, token: int, message: bytes, end_stream: bool) -> Status: ...
    def grpc_cancel(self, token: int) -> Status: ...
    def grpc_close(self, token: int) -> Status: ...


class Metrics(Protocol):
    """Counters, gauges and histograms (abi-spec.md §1.12)."""

    def define_metric(self, metric_type: int, name: bytes) -> tuple[Status, int]: ...
    def increment_metric(self, metric_id: int, offset: int) -> Status: ...
    def record_metric(self, metric_id: int, value: int) -> Status: ...
    def get_metric(self, metric_id: int) -> tuple[Status, int]: ...


class SharedData(Protocol):
    """Shared key-value data with compare-and-swap (abi-spec.md §1.10)."""

    def get_shared_data(self, key: bytes) -> tuple[bytes, int] | None: ...
    def set_shared_data(self, key: bytes, value: bytes, cas: int) -> Status: ...


class SharedQueues(Protocol):
    """Shared queues (abi-spec.md §1.11)."""

    def register_shared_queue(self, name: bytes) -> int: ...
    def resolve_shared_queue(self, vm_id: bytes, name: bytes) -> int | None: ...
    def enqueue_shared_queue(self, token: int, data: bytes) -> Status: ...
    def dequeue_shared_queue(self, token: int) -> tuple[Status, bytes]: ...


class Timers(Protocol):
    """The root context's tick (abi-spec.md §1.3)."""

    def set_tick_period(self, period_ms: int) -> Status: ...


class Logging(Protocol):
    """Guest log lines (abi-spec.md §1.3)."""

    def log(self, level: LogLevel, message: str, *, source: str = "proxy_log") -> None: ...


class StreamControl(Protocol):
    """Local replies, continue, close and the route cache (abi-spec.md §1.7)."""

    def send_local_response(self, reply: LocalResponse) -> Status: ...
    def continue_stream(self, stream_type: StreamType) -> Status: ...
    def close_stream(self, stream_type: StreamType) -> Status: ...
    def clear_route_cache(self) -> Status: ...


# -- the scope of one callback -----------------------------------------------------------------------


@record
class CallInputs:
    """What one callback may read besides its context's own state (cpp-host sets these on the
    receiving context for the callback: ``http_call_response_``, ``grpc_receive_buffer_``, ...)."""

    buffers: dict[BufferType, Buffer] = field(default_factory=dict)
    maps: dict[MapType, HeaderMap | None] = field(default_factory=dict)
    configuring: bool = False


# -- the base: Envoy's answer wherever a context does not support a call ------------------------------


class ContextBase:
    """One context id of a VM, and the default (unsupported) answer of every host call.

    Subclasses set :attr:`root` (the plugin, or ``None`` for the VM context) and override the
    hooks :meth:`header_map` and :meth:`buffer`, and whichever calls Envoy gives them.
    """

    id: int = 0
    parent_id: int = 0
    created_in_vm: bool = False
    in_log: bool = False
    is_http: bool = False
    inputs: CallInputs | None = None
    root: Plugin | None = None

    host: Host
    vm: Vm

    # -- what every context shares ---------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        """Whether this is a plugin (root) context."""
        return self.id != 0 and self.parent_id == 0

    @property
    def stream(self) -> Any:
        """The stream (HTTP or TCP) this context is, if it is one."""
        return None

    @contextmanager
    def scope(self, inputs: CallInputs | None) -> Iterator[None]:
        """Make ``inputs`` readable by host calls on this context while the block runs."""
        saved = self.inputs
        self.inputs = inputs
        try:
            yield
        finally:
            self.inputs = saved

    def run(self, callback: str, *args: int, inputs: CallInputs | None = None, reraise: bool = False) -> int | None:
        """Run a callback on this root context with Envoy's trap policy, the one copy of it.

        A trap marks the VM failed (the VM does that), is remembered by the plugin for its fail
        policy and is logged as Envoy logs it (``wasm trap in <callback>: ...``); deferred host
        work then runs. Returns the callback's result, or ``None`` if it trapped (``reraise``: the
        :class:`CallbackError` is raised after the policy) or is missing.
        """
        plugin = self.root
        assert plugin is not None, "callbacks run on plugin contexts"
        vm = plugin.vm
        if vm.failed is not None:
            return None
        try:
            with self.scope(inputs):
                return vm.call(callback, *args, context_id=self.id)
        except CallbackError as err:
            self.on_trap(err)
            if reraise:
                raise
            return None
        finally:
            self.host.drain()

    def on_trap(self, err: CallbackError) -> None:
        """Envoy's policy for a trap in one of this context's callbacks: remember it, log it."""
        plugin = self.root
        if plugin is not None:
            plugin.on_failure(err)
        self.host.record_log_host(LogLevel.ERROR, f"wasm trap in {err.callback}: {err.reason}", plugin)

    # -- header maps ----------------------------------------------------------------------------------
    def callback_inputs(self) -> CallInputs | None:
        """The inputs of the root callback now running: Envoy keeps them on the root context
        (``rootContext()->http_call_response_``), so a stream made effective reads them too."""
        root = self.root
        return root.inputs if root is not None else self.inputs

    def header_map(self, map_type: MapType, write: bool) -> HeaderMap | None:
        """The map a host call may use now (``None``: unavailable); callout maps come from the scope."""
        inputs = self.callback_inputs()
        if not write and inputs is not None:
            return inputs.maps.get(map_type)
        return None

    def on_headers_modified(self, map_type: MapType) -> None:
        """A host call changed a map (Envoy: ``onHeadersModified``); only HTTP streams react."""

    def _missing_map(self) -> Status:
        return Status.NotFound if self.in_log else Status.BadArgument

    def get_header_map_pairs(self, map_type: MapType) -> tuple[Status, Pairs]:
        m = self.header_map(map_type, write=False)
        return _OK, (m.pairs() if m is not None else [])

    def set_header_map_pairs(self, map_type: MapType, pairs: Pairs) -> Status:
        m = self.header_map(map_type, write=True)
        if m is None:
            return Status.BadArgument
        m.set_pairs(pairs)
        self.on_headers_modified(map_type)
        return _OK

    def get_header_map_value(self, map_type: MapType, key: bytes) -> tuple[Status, bytes | None]:
        m = self.header_map(map_type, write=False)
        if m is None:
            return self._missing_map(), None
        value = m.get(key)
        return (_OK, value) if value is not None else (_NOT_FOUND, None)

    def add_header_map_value(self, map_type: MapType, key: bytes, value: bytes) -> Status:
        m = self.header_map(map_type, write=True)
        if m is None:
            return Status.BadArgument
        m.add(key, value)
        self.on_headers_modified(map_type)
        return _OK

    def replace_header_map_value(self, map_type: MapType, key: bytes, value: bytes) -> Status:
        m = self.header_map(map_type, write=True)
        if m is None:
            return Status.BadArgument
        m.replace(key, value)
        self.on_headers_modified(map_type)
        return _OK

    def remove_header_map_value(self, map_type: MapType, key: bytes) -> Status:
        m = self.header_map(map_type, write=True)
        if m is None:
            return Status.BadArgument
        m.remove(key)
        self.on_headers_modified(map_type)
        return _OK

    def get_header_map_size(self, map_type: MapType) -> tuple[Status, int]:
        m = self.header_map(map_type, write=map_type <= MapType.HTTP_RESPONSE_TRAILERS)
        return (_OK, m.byte_size()) if m is not None else (Status.BadArgument, 0)

    # -- buffers --------------------------------------------------------------------------------------
    def buffer(self, kind: BufferType) -> Buffer | None:
        """This context's own buffers (bodies, connection data); the base has none."""
        return _EMPTY

    def get_buffer(self, kind: BufferType) -> Buffer | None:
        """The buffer of ``kind`` as Envoy exposes it now; ``None`` means NotFound."""
        if kind == BufferType.VM_CONFIGURATION:
            return Buffer(self.vm.vm_config, mutable=False)
        inputs = self.callback_inputs()
        if kind == BufferType.PLUGIN_CONFIGURATION:
            root = self.root
            return root.config_buffer if inputs is not None and inputs.configuring and root is not None else None
        if kind == BufferType.HTTP_CALL_RESPONSE_BODY:
            return inputs.buffers.get(kind) if inputs is not None else None
        if kind in (BufferType.GRPC_RECEIVE_BUFFER, BufferType.CALL_DATA):
            return inputs.buffers.get(kind, _EMPTY) if inputs is not None else _EMPTY
        return self.buffer(kind)

    def get_configuration(self) -> bytes:
        """ABI 0.1.0 ``proxy_get_configuration``: the plugin configuration while configuring, else the VM's."""
        cfg = self.get_buffer(BufferType.PLUGIN_CONFIGURATION)
        if cfg is None:
            cfg = self.get_buffer(BufferType.VM_CONFIGURATION)
        return cfg.get(0, 0xFFFFFFFF) if cfg is not None else b""

    # -- properties -----------------------------------------------------------------------------------
    def get_property(self, path: tuple[bytes, ...]) -> tuple[Status, bytes]:
        return resolve_property(self, path)

    def set_property(self, path: bytes, value: bytes) -> Status:
        """Envoy writes filter state; outside a stream it answers NotFound."""
        return Status.NotFound

    # -- callouts ---------------------------------------------------------------------------------
    def http_call(self, cluster: str, headers: Pairs, body: bytes, trailers: Pairs, timeout_ms: int) -> tuple[Status, int]:
        return self.host.http_calls.start(self, cluster, headers, body, trailers, timeout_ms)

    def grpc_call(self, kind: str, upstream: bytes, service: bytes, method: bytes, metadata: Pairs, message: bytes, timeout_ms: int) -> tuple[Status, int]:
        return self.host.grpc_calls.start(self, kind, upstream, service, method, metadata, message, timeout_ms)

    def grpc_send(self, token: int, message: bytes, end_stream: bool) -> Status:
        return self.host.grpc_calls.send(self, token, message, end_stream)

    def grpc_cancel(self, token: int) -> Status:
        return self.host.grpc_calls.cancel(self, token)

    def grpc_close(self, token: int) -> Status:
        return self.host.grpc_calls.close(self, token)

    # -- metrics ------------------------------------------------------------------------------------
    def define_metric(self, metric_type: int, name: bytes) -> tuple[Status, int]:
        return self.host.metrics.define(self.vm, metric_type, name)

    def increment_metric(self, metric_id: int, offset: int) -> Status:
        return self.host.metrics.increment(self.vm, metric_id, offset)

    def record_metric(self, metric_id: int, value: int) -> Status:
        return self.host.metrics.record(self.vm, metric_id, value)

    def get_metric(self, metric_id: int) -> tuple[Status, int]:
        return self.host.metrics.read(self.vm, metric_id)

    # -- shared data and queues ---------------------------------------------------------------------
    def get_shared_data(self, key: bytes) -> tuple[bytes, int] | None:
        return self.host.shared_data.get(key, self.vm.vm_id)

    def set_shared_data(self, key: bytes, value: bytes, cas: int) -> Status:
        return self.host.shared_data.set(key, value, self.vm.vm_id, cas)

    def register_shared_queue(self, name: bytes) -> int:
        """A queue whose ``on_queue_ready`` goes to this context's root context."""
        root = self.id if self.is_root else self.parent_id
        return self.host.queues.register(self.vm, root, name)

    def resolve_shared_queue(self, vm_id: bytes, name: bytes) -> int | None:
        if self.vm.failed is not None:
            return None
        return self.host.queues.resolve(vm_id or self.vm.vm_id, name)

    def enqueue_shared_queue(self, token: int, data: bytes) -> Status:
        return self.host.queues.push(token, data)

    def dequeue_shared_queue(self, token: int) -> tuple[Status, bytes]:
        return self.host.queues.pop(token)

    # -- timers, time, logging ------------------------------------------------------------------------
    def set_tick_period(self, period_ms: int) -> Status:
        root = self.root
        if root is not None:
            root.set_tick_period(period_ms)
        return Status.Ok

    def current_time_ns(self, *, monotonic: bool = False) -> int:
        """The virtual clock: wall-clock time, or (``monotonic``) time since the host started."""
        clock = self.host.clock
        return clock.monotonic_ns if monotonic else clock.realtime_ns

    def random_bytes(self, n: int) -> bytes:
        """``n`` bytes of the host's seeded randomness (WASI ``random_get``)."""
        return self.host.random.randbytes(n)

    def log_level(self) -> int:
        return int(self.host.log_level)

    def log(self, level: LogLevel, message: str, *, source: str = "proxy_log") -> None:
        """A guest log line attributed to this context and its plugin."""
        if level < self.host.log_level:
            return
        self.host.record_log(self.log_record(level, message, source))

    def log_record(self, level: LogLevel, message: str, source: str = "proxy_log") -> LogRecord:
        """A log record attributed to this context and its plugin (not recorded)."""
        root = self.root
        if root is None:
            return log_line(level, message, self.id, "", self.vm.vm_id, "", source)
        return log_line(level, message, self.id, root.root_id, self.vm.vm_id, root.name, source)  # every log line

    # -- stream control -------------------------------------------------------------------------------
    def send_local_response(self, reply: LocalResponse) -> Status:
        self.vm.note("send_local_response outside an HTTP stream is a no-op in Envoy (envoy#39797)")
        return Status.Ok

    def continue_stream(self, stream_type: StreamType) -> Status:
        return Status.Unimplemented if stream_type == StreamType.UPSTREAM else Status.Ok

    def close_stream(self, stream_type: StreamType) -> Status:
        return Status.Ok

    def clear_route_cache(self) -> Status:
        return Status.Ok

    # -- foreign functions, done, status --------------------------------------------------------------
    def call_foreign_function(self, name: bytes, args: bytes) -> tuple[Status, bytes | None, bool]:
        """``(status, result, known)`` of a host-registered foreign function."""
        registry = self.host.foreign_functions
        known = name.decode("utf-8", "surrogateescape") in registry
        status, result = registry.call(name, args, self.vm)
        return status, result, known

    def done(self) -> Status:
        """``proxy_done``: finish a root context whose ``on_done`` returned false."""
        root = self.root
        if root is None or not root.pending_done:
            return Status.NotFound
        self.host.defer(root.finish_delete)  # on_delete runs after the current VM call
        return Status.Ok

    def get_status(self) -> tuple[int, bytes]:
        root = self.root
        return root.status if root is not None else (0, b"")


class RootContext(ContextBase):
    """A plugin's root context (:class:`emulator.plugin.Plugin` is the one kind): its own root, with
    the fields its stream contexts read of it on every request (C struct members where compiled, so
    that a stream reads them in C): ``root_id``, ``name``, ``root_context_id``, ``streams``,
    ``connection``, ``fail_policy`` and ``allow_on_headers_stop_iteration``, set by the plugin."""

    parent_id = 0

    @property
    def id(self) -> int:  # type: ignore[override]
        """The root context id on the current VM."""
        return self.root_context_id  # type: ignore[attr-defined,no-any-return]

    @property
    def root(self) -> Plugin:  # type: ignore[override]
        """A root context is its own root."""
        return self  # type: ignore[return-value]


class StreamContext(ContextBase):
    """A per-stream context, an HTTP stream or a TCP connection: a child of its plugin's root context."""

    plugin: Plugin
    context_id: int | None

    @property
    def id(self) -> int:  # type: ignore[override]
        """This context's id (0 once the filter no longer runs on it)."""
        return self.context_id or 0

    @property
    def parent_id(self) -> int:  # type: ignore[override]
        return self.plugin.root_context_id

    @property
    def root(self) -> Plugin:  # type: ignore[override]
        return self.plugin

    @property
    def stream(self) -> Any:
        return self

    def log_record(self, level: LogLevel, message: str, source: str = "proxy_log") -> LogRecord:
        """:meth:`ContextBase.log_record` with the root read as the plugin field (in C where compiled)."""
        return log_line(level, message, self.id, self.plugin.root_id, self.vm.vm_id, self.plugin.name, source)


class VmContext(ContextBase):
    """Context 0: the VM itself (``_initialize``, ``on_vm_start`` before any root exists)."""

    def __init__(self, vm: Vm) -> None:
        self.vm = vm
        self.host = vm.host
