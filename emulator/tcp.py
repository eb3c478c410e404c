"""One TCP connection through a Wasm network filter, with Envoy's rules (abi-spec.md §5.7).

    conn = plugin.tcp_connection()            # on_context_create, on_new_connection
    conn.send_downstream(b"hello")            # client -> server bytes: on_downstream_data, buffer 2
    conn.send_upstream(b"hi", end_of_stream=True)   # server -> client: on_upstream_data, buffer 3
    conn.close()                              # on_downstream_connection_close, on_done, on_log, on_delete
    conn.upstream_received, conn.downstream_received

Returning StopIteration from a data callback keeps the bytes in the buffer: the next callback's
size includes them, and ``proxy_continue_stream(DOWNSTREAM)`` forwards them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from abi import FailurePolicy, FilterStatus, PeerType, Status, StreamType

from .buffer import Buffer
from .contexts import StreamContext
from .errors import CallbackError
from .http.types import CallbackRecord, as_body, begun_record
from .properties import set_filter_state
from .stream_info import ConnectionInfo

if TYPE_CHECKING:
    from .plugin import Plugin

__all__ = ["TcpConnection"]


class TcpConnection(StreamContext):
    """A network-filter stream context; see the module docstring."""

    is_http = False

    def __init__(self, plugin: Plugin, *, connection: ConnectionInfo | None = None) -> None:
        self.plugin = plugin
        self.host = plugin.host
        self.connection = connection or plugin.connection or self.host.connection
        self.downstream = Buffer()
        self.upstream = Buffer()
        self.upstream_received = bytearray()
        self.downstream_received = bytearray()
        self.upstream_ended = False
        self.downstream_ended = False
        self.callbacks: list[CallbackRecord] = []
        self.lints: list[str] = []
        self.notes: list[str] = []
        self.filter_state: dict[bytes, bytes] = {}
        self.route_cache_cleared = 0
        self.http_calls: list[Any] = []
        self.grpc_calls: list[Any] = []
        self.in_log = False
        self.error: CallbackError | None = None
        self.closed = False
        self.closed_by: str | None = None
        self.new_connection_action: str | None = None
        self.context_id: int | None = None
        self.mode = "filter"
        self._held = {"downstream": False, "upstream": False}
        vm = plugin.vm
        if vm.failed is not None:
            self.mode = "bypass" if plugin.fail_policy == FailurePolicy.FAIL_OPEN else "failed"
            if self.mode == "failed":
                self.closed, self.closed_by = True, "wasm fail closed"
            return
        self.vm = vm
        self.context_id = vm.new_context_id()
        vm.contexts[self.context_id] = self
        self._call("proxy_on_context_create", self.context_id, plugin.root_context_id)
        self.created_in_vm = True  # cpp-host ContextBase::onCreate, as for HTTP streams
        raw = self._call("proxy_on_new_connection", self.context_id)
        if raw is not _FAILED:
            self.new_connection_action = self.callbacks[-1].action = FilterStatus.Continue.name if not raw else FilterStatus.StopIteration.name
        self.host.drain()

    # -- host calls Envoy gives a network filter (emulator.contexts; it has no HTTP maps) -------------
    def continue_stream(self, stream_type: StreamType) -> Status:
        if stream_type == StreamType.DOWNSTREAM:
            return self.continue_downstream()
        return super().continue_stream(stream_type)

    def close_stream(self, stream_type: StreamType) -> Status:
        if stream_type in (StreamType.DOWNSTREAM, StreamType.UPSTREAM):
            self.close_connection(stream_type)
        return Status.Ok

    def clear_route_cache(self) -> Status:
        self.route_cache_cleared += 1
        return Status.Ok

    def set_property(self, path: bytes, value: bytes) -> Status:
        return set_filter_state(self, path, value)

    def buffer(self, kind: int) -> Buffer:
        """Buffer 2 is the downstream (read) data, 3 the upstream (write) data; others are empty."""
        if kind == 2:
            return self.downstream
        if kind == 3:
            return self.upstream
        return Buffer(b"", mutable=False)

    def continue_downstream(self) -> int:
        """``proxy_continue_stream(DOWNSTREAM)``: Envoy's ``continueReading()`` after the VM call."""
        self.host.defer(lambda: self._release("downstream"))
        return Status.Ok

    def close_connection(self, stream_type: int) -> None:
        """``proxy_close_stream(DOWNSTREAM | UPSTREAM)`` after the VM call."""
        if stream_type == StreamType.DOWNSTREAM:
            self.host.defer(lambda: self.close(PeerType.LOCAL, reason="wasm_downstream_close"))
        else:
            self.host.defer(lambda: self._close_upstream("wasm_upstream_close"))

    # -- steps ---------------------------------------------------------------------------------
    def send_downstream(self, data: bytes | str, end_of_stream: bool = False) -> FilterStatus | None:
        """Bytes from the client: ``proxy_on_downstream_data(ctx, size, eos)`` with buffer 2."""
        return self._data("downstream", as_body(data), end_of_stream)

    def send_upstream(self, data: bytes | str, end_of_stream: bool = False) -> FilterStatus | None:
        """Bytes from the server: ``proxy_on_upstream_data(ctx, size, eos)`` with buffer 3."""
        status = self._data("upstream", as_body(data), end_of_stream)
        if end_of_stream and self.mode == "filter" and not self.closed:
            self._call("proxy_on_upstream_connection_close", self.context_id, PeerType.UNKNOWN)  # synthesized by Envoy
            self.host.drain()
        return status

    def close(self, peer: PeerType = PeerType.REMOTE, *, reason: str | None = None) -> None:
        """The downstream connection closes: close callback, then ``on_done`` -> ``on_log`` -> ``on_delete``."""
        if self.closed:
            return
        self.closed = True
        self.closed_by = reason or ("remote" if peer == PeerType.REMOTE else "local")
        if self.mode != "filter" or self.context_id is None:
            return
        for name, args in (
            ("proxy_on_downstream_connection_close", (self.context_id, int(peer))),
            ("proxy_on_done", (self.context_id,)),
            ("proxy_on_log", (self.context_id,)),
            ("proxy_on_delete", (self.context_id,)),
        ):
            if self.vm.failed is not None:
                break
            if name == "proxy_on_log":
                self.in_log = True
            self._call(name, *args)
            self.in_log = False
        self.vm.contexts.pop(self.context_id, None)
        self.host.drain()

    # -- internals -----------------------------------------------------------------------------
    def _call(self, name: str, *args: int) -> Any:
        record = begun_record(name, args, self.host.next_seq())
        self.callbacks.append(record)
        try:
            raw = self.vm.call_in(self.context_id, name, args)
        except CallbackError as err:
            self._trapped(err, record)
            return _FAILED
        record.raw = raw
        if self.host.costs:
            record.cost = self.vm.last_cost
        return raw

    def _data(self, side: str, data: bytes, end_of_stream: bool) -> FilterStatus | None:
        if self.closed:
            self.notes.append(f"{side} data after the connection closed: not delivered")
            return None
        buf = self.downstream if side == "downstream" else self.upstream
        if side == "downstream":
            self.downstream_ended = self.downstream_ended or end_of_stream
        else:
            self.upstream_ended = self.upstream_ended or end_of_stream
        buf.data += data
        if self.mode == "bypass":
            self._release(side)
            return None
        raw = self._call(f"proxy_on_{side}_data", self.context_id, buf.size, int(end_of_stream))  # type: ignore[arg-type]
        if raw is _FAILED:
            return None
        status = FilterStatus.Continue if not raw else FilterStatus.StopIteration
        self.callbacks[-1].action = status.name
        if status == FilterStatus.Continue:
            self._release(side)
        else:
            self._held[side] = True
        self.host.drain()
        return status

    def _release(self, side: str) -> None:
        buf = self.downstream if side == "downstream" else self.upstream
        target = self.upstream_received if side == "downstream" else self.downstream_received
        target += bytes(buf)
        buf.data = bytearray()
        self._held[side] = False

    def _close_upstream(self, reason: str) -> None:
        self.notes.append(f"upstream connection closed ({reason})")
        self.upstream_ended = True

    def _trapped(self, err: CallbackError, record: CallbackRecord) -> None:
        self.error = err
        record.action = "trap"
        self.on_trap(err)
        if self.plugin.fail_policy == FailurePolicy.FAIL_OPEN:
            self.mode = "bypass"
            for side in ("downstream", "upstream"):
                self._release(side)
        else:
            self.mode = "failed"
            self.closed, self.closed_by = True, "wasm fail closed"


_FAILED = object()
