"""One HTTP stream through one Wasm filter, with Envoy's filter-manager rules (abi-spec.md §5.3).

The filter sits between downstream (the client) and upstream (the router). Each step feeds one
event to the filter, converts its answer the way cpp-host and Envoy do, and moves data on:

    stream = plugin.http_stream()
    stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "x"}, end_of_stream=True)
    stream.send_response_headers({":status": "200"}, end_of_stream=True)
    stream.upstream_request.headers      # what the router received
    stream.downstream_response.headers   # what the client received
    stream.callbacks                     # every callback with the filter's raw answer and its meaning

Pausing, buffering, ``continue_stream``, local replies, the end of the stream (``on_log`` ->
``on_done`` -> ``on_delete``) and fail policies follow Envoy; each deviation a filter author would
want to know about is appended to ``stream.lints``.
"""

from __future__ import annotations

import warnings
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from abi import FailurePolicy, FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, MapType, Status, StreamType

from ..buffer import Buffer
from ..contexts import StreamContext
from ..errors import CallbackError, EmulatorError, InputWarning, VmFailedError
from ..properties import set_filter_state
from ..stream_info import ConnectionInfo
from .headers import HeaderMap, HeadersLike, normalize_headers
from .types import CallbackRecord, HttpMessage, LocalResponse, as_body, begun_record

try:  # the speed mode's C helper (its docstring says why); pure classes have nothing to shed
    from ..untracked import shed_empty_dict
except ImportError:
    shed_empty_dict = None

if TYPE_CHECKING:
    from ..plugin import Plugin

__all__ = ["DEFAULT_BUFFER_LIMIT", "HttpStream", "StreamStateError"]

DEFAULT_BUFFER_LIMIT = 1 << 20
"""Envoy's default per-connection buffer limit (1 MiB): buffering past it gives 413 / 500."""

_FAILED = object()
_NO_LOG_COPY: Any = MappingProxyType({})  # a stream's access-log maps until it completes (shared: never changed)
# enum members the request path reads, bound once (why: tests/unit/test_hot_lookups.py)
_REQUEST_HEADERS = MapType.HTTP_REQUEST_HEADERS
_HEADERS_CONTINUE, _DATA_CONTINUE, _TRAILERS_CONTINUE = FilterHeadersStatus.Continue, FilterDataStatus.Continue, FilterTrailersStatus.Continue
_CONTINUE = _HEADERS_CONTINUE._name_  # the three Continue members' name, a record's usual action
_DATA_STATUSES = {int(s): s for s in FilterDataStatus}  # by value: FilterDataStatus(n) without the enum call
T = TypeVar("T")


class StreamStateError(EmulatorError):
    """A step that cannot happen at this point of the stream (e.g. a response before the request left)."""


class _Side:
    """One direction of the stream: the request (decoding) or the response (encoding)."""

    __slots__ = (
        "body",
        "body_open",
        "buffering",
        "done",
        "ended",
        "headers",
        "headers_held",
        "headers_open",
        "headers_sent",
        "headers_stop",
        "held_body",
        "held_trailers",
        "input_missing",
        "name",
        "out",
        "received_body",
        "received_headers",
        "received_trailers",
        "trailers",
        "trailers_creatable",
        "trailers_created",
        "trailers_held",
        "trailers_open",
    )  # fmt: skip

    def __init__(self, name: str) -> None:
        self.name = name
        self.headers: HeaderMap | None = None
        self.headers_open = False
        self.trailers: HeaderMap | None = None
        self.trailers_open = False
        self.trailers_creatable = False
        self.trailers_created = False
        self.body = Buffer(b"")
        self.body_open = False
        self.buffering: FilterDataStatus | None = None
        self.headers_held: str | None = None  # "all" (StopAll*) or "single" (StopIteration)
        self.headers_stop: FilterHeadersStatus | None = None  # the StopAll* status holding them
        self.trailers_held = False
        self.held_body: bytes | bytearray = b""  # a bytearray from its first held chunk (most bodies are never held)
        self.held_trailers: list[tuple[bytes, bytes]] | None = None
        self.input_missing: tuple[str, ...] = ()  # required pseudo-headers the test input lacked
        self.headers_sent = False
        self.ended = False  # the peer sent end of stream
        self.done = False  # nothing more goes through the filter (local reply, reset)
        self.received_headers: HeaderMap | None = None
        self.received_trailers: HeaderMap | None = None
        self.received_body = 0
        self.out = HttpMessage()

    def hold(self, data: bytes) -> None:
        """Keep a body chunk behind headers stopped with StopAll*: the buffer is made on the first."""
        if not self.held_body:
            self.held_body = bytearray()
        self.held_body += data

    @property
    def paused(self) -> bool:
        return bool(self.headers_held or self.buffering or self.trailers_held)


class HttpStream(StreamContext):
    """An HTTP stream context of a plugin; see the module docstring.

    It is the receiver of the host calls its callbacks make (see :mod:`emulator.contexts`).
    """

    is_http = True
    # what most streams never change: class-level defaults, assigned on the instance when they do
    reset_reason: str | None = None
    close_details: str | None = None
    next_hop: HttpStream | None = None  # toward upstream, in a filter chain
    prev_hop: HttpStream | None = None  # toward downstream, in a filter chain
    chain: Any = None

    def __init__(self, plugin: Plugin, *, connection: ConnectionInfo | None = None, buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> None:
        if shed_empty_dict is not None:
            shed_empty_dict(self)
        self.plugin = plugin
        self.context_id: int | None = None  # none until the filter runs on it: a failed VM's stream never gets one
        self._in_filter_callback: str | None = None  # the callback running, while one of this stream's runs
        # read or set by every stream (fields of the compiled type: see stream.pxd)
        self.mode = "filter"  # "filter", "bypass" (fail open) or "failed" (fail closed)
        self.pending_local: LocalResponse | None = None
        self.local_response: LocalResponse | None = None
        self.error: CallbackError | None = None
        self.route_cache_cleared = 0
        self.completed = False
        self.in_log = False
        self.end_ns: int | None = None
        self._destroyed = False
        self.created_in_vm = False
        # self.host, and self.vm once the VM is known to run, not locals: where compiled they are
        # typed fields, read in C
        self.host = self.plugin.host  # the plugin read as the typed field: in C where compiled
        self.connection = connection or self.plugin.connection or self.host.connection
        self.buffer_limit = buffer_limit
        self.request = _Side("request")
        self.response = _Side("response")
        self.callbacks: list[CallbackRecord] = []
        # made when first read (most streams never have any): the properties of the same names
        self._lints: list[str] | None = None
        self._notes: list[str] | None = None
        self._filter_state: dict[bytes, bytes] | None = None
        self._http_calls: list[Any] | None = None
        self._grpc_calls: list[Any] | None = None
        self.start_ns = self.host.clock.realtime_ns
        self._log_copy: Any = _NO_LOG_COPY
        vm = self.plugin.vm
        if vm.failed is not None:
            self.mode = "bypass" if self.plugin.fail_policy == FailurePolicy.FAIL_OPEN else "failed"
            return
        self.vm = vm
        self.context_id = self.vm.new_context_id()
        self.vm.contexts[self.context_id] = self
        self.plugin.streams.append(self)
        self._call("proxy_on_context_create", (self.context_id, self.plugin.root_context_id))
        # cpp-host ContextBase::onCreate sets in_vm_context_created_ whether or not the module
        # exports proxy_on_context_create ("the in-VM SDK is responsible for managing any required
        # in-VM state"), so on_delete follows for every context created.
        self.created_in_vm = True
        self.host.drain()

    # -- views ---------------------------------------------------------------------------------
    @property
    def lints(self) -> list[str]:
        """What the filter did that Envoy accepts but warns about, or that a test should know, in order."""
        if self._lints is None:
            self._lints = []
        return self._lints

    @property
    def notes(self) -> list[str]:
        """What else happened to the stream, in order."""
        if self._notes is None:
            self._notes = []
        return self._notes

    @property
    def filter_state(self) -> dict[bytes, bytes]:
        """The stream's filter state (``set_property`` of ``wasm.*`` paths, foreign functions)."""
        if self._filter_state is None:
            self._filter_state = {}
        return self._filter_state

    @property
    def http_calls(self) -> list[Any]:
        """The HTTP callouts this stream's filter dispatched, in order."""
        if self._http_calls is None:
            self._http_calls = []
        return self._http_calls

    @property
    def grpc_calls(self) -> list[Any]:
        """The gRPC calls this stream's filter opened, in order."""
        if self._grpc_calls is None:
            self._grpc_calls = []
        return self._grpc_calls

    @property
    def upstream_request(self) -> HttpMessage:
        """What the upstream (router) has received so far."""
        return self.request.out

    @property
    def downstream_response(self) -> HttpMessage:
        """What the client has received so far."""
        return self.response.out

    @property
    def request_headers(self) -> HeaderMap | None:
        """The request headers as the filter left them (live map)."""
        return self.request.headers

    @property
    def response_headers(self) -> HeaderMap | None:
        """The response headers as the filter left them (live map)."""
        return self.response.headers

    @property
    def actions(self) -> list[tuple[str, str | None]]:
        """``(callback, action)`` for every callback made, in order."""
        return [(c.name, c.action) for c in self.callbacks]

    def cost(self) -> Any:
        """The summed :class:`~emulator.costs.Cost` of every callback of this stream (costs on)."""
        from ..costs import total

        return total([c.cost for c in self.callbacks])

    def response_code(self) -> int | None:
        """The response status code once known (upstream or local reply)."""
        h = self.response.out.headers or (self.response.received_headers.pairs() if self.response.received_headers is not None else None)
        if not h:
            return None
        status = next((v for k, v in h if k == b":status"), None)
        return int(status) if status and status.isdigit() else None

    def response_code_details(self) -> str | None:
        """``via_upstream``, the local reply's details, or None before a response."""
        if self.local_response is not None:
            return self.local_response.details
        if self.response.received_headers is not None:
            return "via_upstream"
        return self.close_details

    def visible_headers(self, side: str) -> HeaderMap | None:
        """The headers map Envoy would hand to CEL now (live map, or the access-log copy)."""
        s = self.request if side == "request" else self.response
        if self.in_log:
            return self._log_copy.get(f"{side}_headers")
        return s.headers if s.headers_open else None

    def visible_trailers(self, side: str) -> HeaderMap | None:
        """The trailers map Envoy would hand to CEL now."""
        s = self.request if side == "request" else self.response
        if self.in_log:
            return self._log_copy.get(f"{side}_trailers")
        return s.trailers if s.trailers_open else None

    # -- host-call support ---------------------------------------------------------------------
    def header_map(self, map_type: int, write: bool) -> HeaderMap | None:
        """The map a host call may use now (``None``: unavailable), following Envoy's getMap/getConstMap."""
        if map_type == 0 or map_type == 2:  # HTTP_REQUEST_HEADERS, HTTP_RESPONSE_HEADERS: the hot case
            side = self.request if map_type == 0 else self.response
            if not self.in_log and side.headers_open and not write:
                return side.headers
            if self.in_log and not write:
                return self._log_copy.get(f"{side.name}_headers")
            if side.headers_open and side.headers is not None:
                if write and side.headers_sent:
                    self.lint(f"{side.name} headers changed after they were sent on: the change has no effect")
                return side.headers
            return None
        if map_type in (MapType.HTTP_REQUEST_TRAILERS, MapType.HTTP_RESPONSE_TRAILERS):
            side = self.request if map_type == MapType.HTTP_REQUEST_TRAILERS else self.response
            if self.in_log and not write:
                return self._log_copy.get(f"{side.name}_trailers") if side is self.response else None
            if side.trailers_open and side.trailers is not None:
                return side.trailers
            if write and side.trailers_creatable:
                side.trailers = HeaderMap(kind="trailers")
                side.trailers_open = True
                side.trailers_created = True
                return side.trailers
            return None
        return StreamContext.header_map(self, map_type, write)  # not super(): a cpdef method has no __class__ cell when compiled

    def buffer(self, kind: int) -> Buffer | None:
        """Buffers 0/1: the current chunk, or the accumulated body while buffering; else empty."""
        if kind in (0, 1):
            side = self.request if kind == 0 else self.response
            if side.body_open:
                return side.body
        return Buffer(b"", mutable=False)

    def lint(self, message: str) -> None:
        """Record something Envoy would crash on, reject, or silently do differently."""
        if message not in self.lints:
            self.lints.append(message)

    def prepare_local_response(self, reply: LocalResponse) -> None:
        """``proxy_send_local_response``: the first prepared reply wins, sent after the VM call."""
        if self.completed or (self.local_response is not None and self.response.headers_sent):
            self.notes.append("send_local_response after the response went downstream: the stream is reset")
            if not self.completed:
                self.host.defer(lambda: self._reset("local reply after response headers were sent"))
            return
        if self.pending_local is not None:
            self.notes.append("a second send_local_response in the same callback is ignored (the first prepared reply wins)")
            return
        self.pending_local = reply
        self.host.defer(self.flush_local_response)

    def continue_side(self, side_name: str) -> None:
        """``proxy_continue_stream``: clear the request-side pointers now, resume after the VM call."""
        req = self.request
        req.headers_open = req.trailers_open = False
        if not req.buffering:
            req.body_open = False
        side = self.request if side_name == "request" else self.response
        self.host.defer(lambda: self._resume(side))

    def close(self) -> None:
        """``proxy_close_stream``: reset the stream after the VM call.

        Envoy first sets the response code details to ``wasm_close_stream`` unless the stream has
        some already (context.cc ``Context::closeStream``, ``CloseStreamResponseDetails``).
        """
        if self.response_code_details() is None:
            self.close_details = "wasm_close_stream"
        self.host.defer(lambda: self._reset("wasm_close_stream"))

    # -- host calls Envoy gives an HTTP stream (emulator.contexts) ---------------------------------
    def send_local_response(self, reply: LocalResponse) -> Status:
        self.prepare_local_response(reply)
        return Status.Ok

    def continue_stream(self, stream_type: StreamType) -> Status:
        if stream_type in (StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE):
            self.continue_side("request" if stream_type == StreamType.HTTP_REQUEST else "response")
        return super().continue_stream(stream_type)

    def close_stream(self, stream_type: StreamType) -> Status:
        if stream_type in (StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE):
            self.close()
        return Status.Ok

    def clear_route_cache(self) -> Status:
        self.route_cache_cleared += 1
        return Status.Ok

    def on_headers_modified(self, map_type: MapType) -> None:
        """Envoy's wasm context clears the route cache whenever a filter changes the request headers
        (source/extensions/common/wasm/context.cc: add/replace/remove/setHeaderMapPairs call
        ``onHeadersModified(type)``, which clears it for RequestHeaders)."""
        if map_type == _REQUEST_HEADERS:
            self.route_cache_cleared += 1

    def set_property(self, path: bytes, value: bytes) -> Status:
        return set_filter_state(self, path, value)

    # -- request steps -------------------------------------------------------------------------
    def send_request_headers(self, headers: HeadersLike, end_of_stream: bool = False) -> FilterHeadersStatus | None:
        """Request headers arrive from downstream; returns the filter's (converted) status."""
        side = self.request
        if side.received_headers is not None:
            raise StreamStateError("request headers were already sent on this stream")
        side.received_headers = HeaderMap(headers, kind="request")
        side.headers = side.received_headers.copy()
        side.ended = end_of_stream
        side.input_missing = _missing_pseudo_headers(side.received_headers)
        if side.input_missing:
            self._warn_input(side.input_missing)
        if self.mode != "filter":
            return self._unfiltered_headers(side, end_of_stream)
        return self._deliver_headers(side, end_of_stream)

    def _warn_input(self, missing: tuple[str, ...]) -> None:
        """Request headers Envoy would never hand to a filter: a test-input problem, said once.

        Nothing is filled in, and the router's 503 is kept for headers the *filter* removes.
        """
        names = " and ".join(missing)
        message = (
            f"the test's request headers have no {names}: Envoy never delivers such a request to a filter "
            "(its HTTP codecs reject a request without :method, and the connection manager answers 404 "
            "missing_path to one without :path before any filter runs: conn_manager_impl.cc "
            "ActiveStream::decodeHeaders). The filter runs on the headers as given, nothing is filled in; "
            "Request.minimal() builds the smallest request Envoy delivers."
        )
        self.notes.append(message)
        warned = self.host.warned_inputs
        if message not in warned:
            warned.add(message)
            warnings.warn(message, InputWarning, stacklevel=3)

    def send_request_body(self, data: bytes | str, end_of_stream: bool = False) -> FilterDataStatus | None:
        """A request data frame arrives from downstream."""
        return self._body_step(self.request, as_body(data), end_of_stream)

    def send_request_trailers(self, trailers: HeadersLike) -> FilterTrailersStatus | None:
        """Request trailers arrive (they end the request)."""
        return self._trailers_step(self.request, trailers)

    def send_request_metadata(self, metadata: HeadersLike) -> int | None:
        """HTTP/2 METADATA on the request (``proxy_on_request_metadata``; always Continue)."""
        return self._metadata_step(self.request, metadata)

    # -- response steps ------------------------------------------------------------------------
    def send_response_headers(self, headers: HeadersLike, end_of_stream: bool = False) -> FilterHeadersStatus | None:
        """Response headers arrive from upstream."""
        side = self.response
        if self.completed or side.done:
            self.notes.append("response headers after the stream ended: not delivered")
            return None
        if not self.request.headers_sent and self.mode == "filter":
            raise StreamStateError("the upstream has not received the request headers (the filter holds them, or replied locally): it cannot respond yet")
        if side.received_headers is not None:
            raise StreamStateError("response headers were already sent on this stream")
        side.received_headers = HeaderMap(headers, kind="response")
        side.headers = side.received_headers.copy()
        side.ended = end_of_stream
        if self.mode != "filter":
            return self._unfiltered_headers(side, end_of_stream)
        return self._deliver_headers(side, end_of_stream)

    def send_response_body(self, data: bytes | str, end_of_stream: bool = False) -> FilterDataStatus | None:
        """A response data frame arrives from upstream."""
        return self._body_step(self.response, as_body(data), end_of_stream)

    def send_response_trailers(self, trailers: HeadersLike) -> FilterTrailersStatus | None:
        """Response trailers arrive (they end the response)."""
        return self._trailers_step(self.response, trailers)

    def send_response_metadata(self, metadata: HeadersLike) -> int | None:
        """HTTP/2 METADATA on the response."""
        return self._metadata_step(self.response, metadata)

    # -- the end -------------------------------------------------------------------------------
    def complete(self) -> None:
        """End the stream as Envoy does: ``on_log`` -> ``on_done`` -> ``on_delete`` (once).

        In a filter chain every filter's ``on_log`` runs first, then each filter's destruction.
        """
        if self.chain is not None:
            self.chain.complete()
            return
        self.finish_phase("log")
        self.finish_phase("destroy")

    def finish_phase(self, phase: str) -> None:
        """Run the access-log phase (``on_log``) or the destruction (``on_done``, ``on_delete``)."""
        if phase == "log":
            if self.completed:
                return
            self.completed = True
            self.end_ns = self.host.clock.realtime_ns
            self.request.done = self.response.done = True
            if self.mode != "filter" or self.context_id is None:
                return
            # the stream is over: the maps cannot change any more, so the access-log "copies" are the maps
            self._log_copy = {"request_headers": self.request.headers, "response_headers": self.response.headers, "response_trailers": self.response.trailers}
            self.in_log = True
            if self.vm.failed is None:
                self._call("proxy_on_log", (self.context_id,))
            return
        if self._destroyed or not self.completed:
            return
        self._destroyed = True
        if self.mode != "filter" or self.context_id is None:
            return
        self.in_log = True
        try:
            for name in ("proxy_on_done", "proxy_on_delete"):
                if self.vm.failed is not None:
                    break
                self._call(name, (self.context_id,))
        finally:
            self.in_log = False
            self.vm.contexts.pop(self.context_id, None)
            if self in self.plugin.streams:
                self.plugin.streams.remove(self)
        self.host.drain()

    # -- internals: delivering events to the filter ---------------------------------------------
    def _call(self, name: str, args: tuple[int, ...]) -> Any:
        record = begun_record(name, args, self.host.next_seq())  # every callback: a C call where compiled
        self.callbacks.append(record)
        self._in_filter_callback = name
        try:
            raw = self.vm.call_in(self.context_id, name, args)
        except CallbackError as err:
            self._trapped(err, record)
            return _FAILED
        except VmFailedError:  # another context failed the VM after this stream began: cpp-host's CHECK_FAIL
            record.action = "vm failed"
            record.notes.append("the VM failed in another context since this stream began")
            self._apply_fail_policy(record)
            return _FAILED
        finally:
            self._in_filter_callback = None
        record.raw = raw
        if self.host.costs:
            record.cost = self.vm.last_cost
        if raw is None and not self.vm.has_export(name):
            record.action = "not exported"
        return raw

    def _failed_status(self, fail_open: T, fail_closed: T) -> T:
        """What Envoy's filter returns from a callback that trapped: cpp-host's
        ``CHECK_FAIL_HTTP(continue, stop)`` (src/context.cc) gives ``continue`` when the plugin fails
        open and ``stop`` (after failing the stream) when it fails closed."""
        return fail_open if self.mode == "bypass" else fail_closed

    def _cb(self, side: _Side, what: str) -> str:
        return _CALLBACKS[side.name, what]

    def _deliver_headers(self, side: _Side, end_of_stream: bool) -> FilterHeadersStatus | None:
        side.headers_open = True
        assert side.headers is not None
        n = len(side.headers)
        args = (self.context_id, n) if self.vm.headers_arity == 2 else (self.context_id, n, int(end_of_stream))
        raw = self._call(self._cb(side, "headers"), args)
        if raw is _FAILED:
            return self._failed_status(FilterHeadersStatus.Continue, FilterHeadersStatus.StopAllIterationAndWatermark)
        record = self.callbacks[-1]
        status = self._headers_status(raw, record)
        if self._after_callback(side):
            return status
        # identity, not ==: the statuses are members, and compiled code calls their str-aware __eq__ for ==
        if status is _HEADERS_CONTINUE or status is FilterHeadersStatus.ContinueAndEndStream:
            self._forward_headers(side)
        elif status is FilterHeadersStatus.StopIteration:
            side.headers_held = "single"
        else:
            side.headers_held = "all"
            side.headers_stop = status
        self.host.drain()
        return status

    def _body_step(self, side: _Side, data: bytes, end_of_stream: bool) -> FilterDataStatus | None:
        if self.completed or side.done:
            self.notes.append(f"{side.name} body after the stream ended: not delivered, as in Envoy")
            return None
        if side.received_headers is None:
            raise StreamStateError(f"{side.name} body before {side.name} headers")
        if side.ended:
            raise StreamStateError(f"{side.name} body after end of stream")
        side.received_body += len(data)
        side.ended = end_of_stream
        if self.mode != "filter":
            self._emit_body(side, data)
            self._maybe_finish(side)
            return None
        if side.headers_held == "all":
            side.hold(data)
            if len(side.held_body) > self.buffer_limit:
                # Envoy buffers the body behind headers stopped with StopAll*
                # (filter_manager.cc FilterManager::handleDataIfStopAll): the buffer is streaming
                # (watermarks) only for StopAllIterationAndWatermark; for StopAllIterationAndBuffer
                # the overflow is requestDataTooLarge (413) / responseDataTooLarge (500).
                self._over_limit(side, len(side.held_body), buffering=side.headers_stop == FilterHeadersStatus.StopAllIterationAndBuffer)
            return None
        status = self._deliver_body(side, data, end_of_stream)
        self.host.drain()
        return status

    def _deliver_body(self, side: _Side, data: bytes, end_of_stream: bool) -> FilterDataStatus | None:
        if side.buffering is not None:
            side.body.data += data
        else:
            side.body = Buffer(data)
        side.body_open = True
        side.trailers_creatable = end_of_stream
        raw = self._call(self._cb(side, "body"), (self.context_id, side.body.size, int(end_of_stream)))
        side.trailers_creatable = False
        if raw is _FAILED:
            return self._failed_status(FilterDataStatus.Continue, FilterDataStatus.StopIterationNoBuffer)
        status = self._data_status(raw, self.callbacks[-1])
        if self._after_callback(side):
            return status
        if status is _DATA_CONTINUE:
            if side.headers_held == "single":
                side.headers_held = None
                self._forward_headers(side)
            self._release_body(side)
            if side.trailers_created:
                self._forward_trailers(side, side.trailers)
        elif status is FilterDataStatus.StopIterationNoBuffer:
            self.notes.append(f"{side.name} chunk of {side.body.size} bytes stopped without buffering (StopIterationNoBuffer): it goes no further")
            side.body = Buffer(b"")
            side.body_open = False
            side.buffering = None
        else:
            side.buffering = status
            if side.body.size > self.buffer_limit:
                self._over_limit(side, side.body.size, buffering=status is FilterDataStatus.StopIterationAndBuffer)
        return status

    def _over_limit(self, side: _Side, size: int, *, buffering: bool) -> None:
        """A buffered body passed the buffer limit: Envoy's ``requestDataTooLarge`` /
        ``responseDataTooLarge`` (filter_manager.cc) answer 413 / 500 when the filter buffers, and
        apply back-pressure (watermarks) when it streams."""
        if not buffering:
            self.notes.append(f"{side.name} body over the buffer limit while watermarking: Envoy applies back-pressure")
            return
        code = 413 if side is self.request else 500
        self.lint(f"buffered {side.name} body of {size} bytes exceeds the buffer limit of {self.buffer_limit}: Envoy answers {code}")
        self._envoy_local_reply(
            code,
            "request_payload_too_large" if code == 413 else "response_payload_too_large",
            b"Payload Too Large" if code == 413 else b"Internal Server Error",
        )

    def _release_body(self, side: _Side) -> None:
        data = bytes(side.body)
        side.body = Buffer(b"")
        side.body_open = False
        side.buffering = None
        self._emit_body(side, data, end=side.ended and side.held_trailers is None and side.trailers is None)

    def _trailers_step(self, side: _Side, trailers: HeadersLike) -> FilterTrailersStatus | None:
        if self.completed or side.done:
            self.notes.append(f"{side.name} trailers after the stream ended: not delivered, as in Envoy")
            return None
        if side.received_headers is None or side.ended:
            raise StreamStateError(f"{side.name} trailers need headers first and no end of stream before them")
        side.received_trailers = HeaderMap(trailers, kind="trailers")
        side.ended = True
        if self.mode != "filter":
            self._forward_trailers(side, side.received_trailers)
            return None
        if side.headers_held == "all":
            side.held_trailers = side.received_trailers.pairs()
            return None
        status = self._deliver_trailers(side, side.received_trailers.pairs())
        self.host.drain()
        return status

    def _deliver_trailers(self, side: _Side, trailers: list[tuple[bytes, bytes]]) -> FilterTrailersStatus | None:
        side.trailers = HeaderMap(trailers, kind="trailers")
        side.trailers_open = True
        raw = self._call(self._cb(side, "trailers"), (self.context_id, len(side.trailers)))
        if raw is _FAILED:
            return self._failed_status(FilterTrailersStatus.Continue, FilterTrailersStatus.StopIteration)
        status = self._trailers_status(raw, self.callbacks[-1])
        if self._after_callback(side):
            return status
        if status is _TRAILERS_CONTINUE:
            self._release_with_trailers(side)
        else:
            side.trailers_held = True
        return status

    def _release_with_trailers(self, side: _Side) -> None:
        if side.headers_held:
            side.headers_held = None
            self._forward_headers(side)
        if side.buffering is not None or side.body.size:
            data = bytes(side.body)
            side.body = Buffer(b"")
            side.body_open = False
            side.buffering = None
            self._emit_body(side, data)
        side.trailers_held = False
        self._forward_trailers(side, side.trailers)

    def _metadata_step(self, side: _Side, metadata: HeadersLike) -> int | None:
        if self.completed or self.mode != "filter":
            return None
        n = len(normalize_headers(metadata))
        raw = self._call(self._cb(side, "metadata"), (self.context_id, n))
        if raw is _FAILED:
            return None
        self.callbacks[-1].action = "Continue"
        self.host.drain()
        return 0

    # -- internals: moving data on -------------------------------------------------------------
    def _forward_headers(self, side: _Side) -> None:
        assert side.headers is not None
        missing = self._missing_required(side)
        side.headers_open = False
        if missing in side.input_missing:
            missing = None  # the test's input lacked it (warned at input): not the filter's doing
        if missing:
            if side is self.request:
                self.lint(f"the filter removed the required request header {missing}: Envoy's router answers 503")
                side.done = True
                self._envoy_local_reply(
                    503, f"filter_removed_required_request_headers{{missing_required_header:_{missing}}}", f"missing required header: {missing}".encode()
                )
            else:
                self.lint(f"the filter removed the required response header {missing}: Envoy answers 502")
                self._direct_reply(
                    502, f"filter_removed_required_response_headers{{missing_required_header:_{missing}}}", f"missing required header: {missing}".encode()
                )
            return
        side.headers_sent = True
        end = (
            side.ended
            and not side.held_body
            and side.held_trailers is None
            and side.body.size == 0
            and side.received_body == 0
            and side.received_trailers is None
        )
        self._out(side, side.headers.pairs(), None, None, end)  # positional (headers, body, trailers, end): a C call

    def _missing_required(self, side: _Side) -> str | None:
        h = side.headers
        assert h is not None
        if side is self.response:
            status = h.get(b":status")
            return ":status" if status is None or not status.isdigit() else None
        missing = _missing_pseudo_headers(h)
        return missing[0] if missing else None

    def _emit_body(self, side: _Side, data: bytes, *, end: bool | None = None) -> None:
        if end is None:
            end = side.ended and side.received_trailers is None
        if data or end:
            self._out(side, body=data, end=end)

    def _forward_trailers(self, side: _Side, trailers: HeaderMap | None) -> None:
        side.trailers_open = False
        self._out(side, trailers=trailers.pairs() if trailers is not None else [], end=True)

    def _out(
        self,
        side: _Side,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
        trailers: list[tuple[bytes, bytes]] | None = None,
        end: bool = False,
        bypass: bool = False,
    ) -> None:
        """Data leaves the filter: record it, and hand it to the next filter of a chain.

        ``bypass`` (direct local replies) skips the remaining filters' callbacks, as Envoy's
        ``sendDirectLocalReply`` writes straight to the codec.
        """
        out = side.out
        if headers is not None:
            out.headers = headers
        if body:
            out.body += body
            out.body_chunks.append(body)
        if trailers is not None:
            out.trailers = trailers
        if end:
            out.end_stream = True
        neighbor = self.next_hop if side is self.request else self.prev_hop
        if neighbor is not None and not neighbor.completed:
            nside = neighbor.request if side is self.request else neighbor.response
            if bypass:
                if headers is not None:
                    nside.out = HttpMessage()
                    nside.headers_sent = True
                neighbor._out(nside, headers=headers, body=body, trailers=trailers, end=end, bypass=True)
                return
            name = nside.name
            if headers is not None:
                getattr(neighbor, f"send_{name}_headers")(headers, end_of_stream=end and not body and trailers is None)
            if (body or (end and headers is None and trailers is None)) and not neighbor.completed:
                getattr(neighbor, f"send_{name}_body")(body or b"", end_of_stream=end and trailers is None)
            if trailers is not None and not neighbor.completed:
                getattr(neighbor, f"send_{name}_trailers")(trailers)
        if end:
            self._maybe_finish(side)

    def _maybe_finish(self, side: _Side) -> None:
        if side is not self.response or not side.out.end_stream:
            return
        if self.chain is None or self.prev_hop is None:
            self.complete()

    def _unfiltered_headers(self, side: _Side, end_of_stream: bool) -> None:
        """Fail-open pass-through, or fail-closed 503 without entering the VM."""
        if self.mode == "failed":
            if side is self.request:
                self._fail_reply()
            return None
        side.headers_sent = True
        self._out(side, headers=side.received_headers.pairs() if side.received_headers is not None else [], end=end_of_stream)
        return None

    # -- internals: statuses, local replies, failures ------------------------------------------
    def _headers_status(self, raw: int | None, record: CallbackRecord) -> FilterHeadersStatus:
        local = self.pending_local is not None
        if local:
            if raw == 0:
                self.lint(
                    "send_local_response followed by Continue: cpp-host coerces it to StopAllIterationAndWatermark (Envoy <= 1.17 aborted with 'Filters should return StopIteration after sending a local reply')"
                )
                record.notes.append("local reply then Continue")
            status = FilterHeadersStatus.StopAllIterationAndWatermark
        elif raw is None or raw == 0:
            status = _HEADERS_CONTINUE
        elif raw == 1:
            if self.plugin.allow_on_headers_stop_iteration:
                status = FilterHeadersStatus.StopIteration
            else:
                status = FilterHeadersStatus.StopAllIterationAndWatermark
                self.lint(
                    "StopIteration from a headers callback becomes StopAllIterationAndWatermark (set allow_on_headers_stop_iteration to keep body callbacks flowing)"
                )
                record.notes.append("StopIteration coerced to StopAllIterationAndWatermark")
        elif raw == 2:
            status = FilterHeadersStatus.ContinueAndEndStream
            record.notes.append("ContinueAndEndStream is treated as Continue by Envoy")
        elif raw == 3:
            status = FilterHeadersStatus.StopAllIterationAndBuffer
        else:
            status = FilterHeadersStatus.StopAllIterationAndWatermark
            record.notes.append(f"unknown headers status {raw} coerced to StopAllIterationAndWatermark")
        record.action = _CONTINUE if status is _HEADERS_CONTINUE else status._name_  # the member's name (no lookup for Continue)
        return status

    def _data_status(self, raw: int | None, record: CallbackRecord) -> FilterDataStatus:
        if self.pending_local is not None:
            if raw == 0:
                self.lint("send_local_response followed by Continue from a body callback: coerced to StopIterationNoBuffer")
            status = FilterDataStatus.StopIterationNoBuffer
        elif raw is None or raw == 0:
            status = _DATA_CONTINUE
        elif raw in (1, 2, 3):
            status = _DATA_STATUSES[raw]
        else:
            status = FilterDataStatus.StopIterationNoBuffer
            record.notes.append(f"unknown data status {raw} coerced to StopIterationNoBuffer")
        record.action = _CONTINUE if status is _DATA_CONTINUE else status._name_  # the member's name (no lookup for Continue)
        return status

    def _trailers_status(self, raw: int | None, record: CallbackRecord) -> FilterTrailersStatus:
        if self.pending_local is not None:
            if raw == 0:
                self.lint("send_local_response followed by Continue from a trailers callback: coerced to StopIteration")
            status = FilterTrailersStatus.StopIteration
        else:
            status = _TRAILERS_CONTINUE if raw in (None, 0) else FilterTrailersStatus.StopIteration
        record.action = _CONTINUE if status is _TRAILERS_CONTINUE else status._name_  # the member's name (no lookup for Continue)
        return status

    def _after_callback(self, side: _Side) -> bool:
        """Run a local reply prepared in the callback; True if the stream took another path."""
        if self.pending_local is not None:
            self.flush_local_response()
            return True
        return self.completed or side.done

    def flush_local_response(self) -> None:
        """Send the prepared local reply (after the VM call that prepared it)."""
        reply = self.pending_local
        if reply is None or self.completed:
            self.pending_local = None
            return
        self.pending_local = None
        self.local_response = reply
        req = self.request
        req.done = True
        if req.headers_sent and not req.out.end_stream:
            req.out.reset = True  # Envoy resets the upstream request when it replies locally
        req.headers_held = None
        req.buffering = None
        req.trailers_held = False
        req.headers_open = req.body_open = req.trailers_open = False
        if self.response.received_headers is None or not (self.response.headers_sent or self.response.headers_open):
            self._reply_through_filter(reply)
        elif not self.response.headers_sent:
            self._direct_reply(reply.status, reply.details, reply.body, reply.headers, reply.grpc_status)
        else:
            self._reset("local reply after the response headers went downstream")

    def _shape(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]], grpc_status: int | None) -> tuple[HeaderMap, bytes]:
        """Envoy's ``prepareLocalReply``: :status, the filter's headers (addCopy), content headers."""
        h = HeaderMap([(b":status", str(status).encode())], kind="response")
        for k, v in headers:
            h.add(k, v)
        req_ct = self.request.received_headers.get(b"content-type") if self.request.received_headers is not None else None
        if req_ct is not None and req_ct.startswith(b"application/grpc"):
            from urllib.parse import quote

            grpc = h.get(b"grpc-status")
            if grpc is None:
                grpc = str(grpc_status if grpc_status is not None else _http_to_grpc(status)).encode()
            out = HeaderMap([(b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-status", grpc)], kind="response")
            if body:
                out.add(b"grpc-message", quote(body, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode())
            return out, b""
        if body:
            h.replace(b"content-length", str(len(body)).encode())
            if h.get(b"content-type") is None:
                h.add(b"content-type", b"text/plain")
        else:
            h.remove(b"content-length")
            h.remove(b"content-type")
        return h, body

    def _reply_through_filter(self, reply: LocalResponse) -> None:
        """A reply prepared on the request path goes through this filter's encoder callbacks."""
        shaped, body = self._shape(reply.status, reply.body, reply.headers, reply.grpc_status)
        reply.sent_headers = shaped.pairs()
        resp = self.response
        resp.received_headers = shaped.copy()
        resp.headers = shaped
        resp.ended = not body
        resp.done = False
        if self.vm.failed is not None:
            self._direct_reply(reply.status, reply.details, reply.body, reply.headers, reply.grpc_status)
            return
        status = self._deliver_headers(resp, not body)
        if body and not self.completed and status is not None and resp.headers_held is None:
            resp.received_body += len(body)
            resp.ended = True
            self._deliver_body(resp, body, True)
        elif body and resp.headers_held == "all":
            resp.hold(body)
            resp.ended = True

    def _direct_reply(self, status: int, details: str, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, grpc_status: int | None = None) -> None:
        """``sendDirectLocalReply``: replaces the response, bypassing the filter's callbacks."""
        if self.local_response is None or self.local_response.status != status or self.local_response.details != details:
            self.local_response = LocalResponse(status, body, headers or [], details, grpc_status, self._in_filter_callback or "(envoy)")
        shaped, out_body = self._shape(status, body, headers or [], grpc_status)
        self.local_response.sent_headers = shaped.pairs()
        resp = self.response
        resp.done = True
        resp.headers_open = resp.body_open = resp.trailers_open = False
        resp.out = HttpMessage()
        self.request.done = True
        self._out(resp, headers=shaped.pairs(), body=out_body, end=True, bypass=True)
        self.complete()

    def _envoy_local_reply(self, status: int, details: str, body: bytes) -> None:
        """A reply Envoy itself sends from the request path (router, buffer limit): through the filter."""
        self.pending_local = LocalResponse(status, body, [], details, None, "(envoy)")
        self.flush_local_response()

    def _fail_reply(self) -> None:
        """Fail closed: a 503 with an empty body, grpc UNAVAILABLE, details ``wasm_fail_stream``."""
        self.local_response = LocalResponse(503, b"", [], "wasm_fail_stream", 14, self._in_filter_callback or "(failed VM)")
        shaped, _ = self._shape(503, b"", [], 14)
        self.local_response.sent_headers = shaped.pairs()
        self.request.done = True
        self.response.done = True
        if not self.response.headers_sent:
            self.response.out = HttpMessage()
            self._out(self.response, headers=shaped.pairs(), end=True, bypass=True)
        else:
            self.response.out.reset = True
        self.complete()

    def _reset(self, reason: str) -> None:
        if self.completed:
            return
        self.reset_reason = reason
        self.request.done = self.response.done = True
        if not self.request.out.end_stream and self.request.headers_sent:
            self.request.out.reset = True
        self.response.out.reset = True
        self.complete()

    def _resume(self, side: _Side) -> None:
        if self.completed or side.done:
            return
        if not side.paused:
            self.lint(f"continue_stream({side.name.upper()}) on a {side.name} that is not paused: ignored")
            return
        if side.headers_held == "all":
            side.headers_held = None
            self._forward_headers(side)
            if side.done or self.completed:
                return
            if side.held_body or (side.ended and side.received_body and side.held_trailers is None and not side.out.end_stream):
                data = bytes(side.held_body)
                side.held_body = b""
                status = self._deliver_body(side, data, side.ended and side.held_trailers is None)
                if status is not FilterDataStatus.Continue:
                    return
            if side.held_trailers is not None:
                trailers, side.held_trailers = side.held_trailers, None
                self._deliver_trailers(side, trailers)
            return
        if side.headers_held == "single":
            side.headers_held = None
            self._forward_headers(side)
        if side.buffering is not None:
            data = bytes(side.body)
            side.body = Buffer(b"")
            side.body_open = False
            side.buffering = None
            self._emit_body(side, data, end=side.ended and side.received_trailers is None)
        if side.trailers_held:
            side.trailers_held = False
            self._forward_trailers(side, side.trailers)

    def _trapped(self, err: CallbackError, record: CallbackRecord) -> None:
        """A trap in a stream callback: Envoy's fail policy for this stream and the ones after it."""
        self.error = err
        record.action = "trap"
        self.on_trap(err)
        self._apply_fail_policy(record)

    def _apply_fail_policy(self, record: CallbackRecord) -> None:
        """The stream goes on without the filter (fail open) or ends with a 503 local reply (fail closed)."""
        if self.plugin.fail_policy == FailurePolicy.FAIL_OPEN:
            record.notes.append("fail open: the stream continues without the filter")
            self.mode = "bypass"
            for side in (self.request, self.response):
                if side.received_headers is None or side.done or side.out.end_stream:
                    continue
                side.buffering = None
                if not side.headers_sent:
                    side.headers_held = None
                    if side.headers is not None:
                        self._forward_headers(side)
                # what the filter held, and the chunk it was called with, go on without it
                data = bytes(side.body) + bytes(side.held_body)
                side.body, side.held_body = Buffer(b""), b""
                self._emit_body(side, data)
            self.context_id = None
            return
        record.notes.append("fail closed: 503 local reply")
        self.mode = "failed"
        self._fail_reply()


_CALLBACKS = {(side, what): f"proxy_on_{side}_{what}" for side in ("request", "response") for what in ("headers", "body", "trailers", "metadata")}
"""The callback a side's event goes to (built once: every delivery names one)."""


def _missing_pseudo_headers(h: HeaderMap) -> tuple[str, ...]:
    """The pseudo-headers Envoy requires of a request that ``h`` lacks: ``:method``, and ``:path``
    (``:authority`` instead for CONNECT)."""
    method = h.get(b":method")
    if method == b"CONNECT":
        return (":authority",) if h.get(b":authority") is None else ()
    missing = (":method",) if method is None else ()
    return (*missing, ":path") if h.get(b":path") is None else missing


def _http_to_grpc(code: int) -> int:
    return {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}.get(code, 2)
