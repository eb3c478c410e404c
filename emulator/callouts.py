"""HTTP and gRPC callouts: recorded when the filter makes them, answered by the test (abi-spec.md §1.8, §5.5).

Every call belongs to the root context of the plugin that made it, and its answer arrives later,
never inline, as Envoy delivers it: ``proxy_on_http_call_response(root, token, ...)`` or the
``proxy_on_grpc_*`` callbacks. A test answers a pending call directly::

    call = host.http_calls.pending()[0]
    call.respond(200, headers={"x": "1"}, body=b"ok")      # or .fail(), .timeout(), .connect_failure()

or declares responders in advance (``host.http_calls.add_responder(cluster="auth", ...)``); a
matching responder answers right after the VM call that made the request. A timeout fires when
the virtual clock passes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from abi import BufferType, GrpcStatus, MapType, Status
from abi.leb128 import decode_uleb
from abi.records import field, record

from .buffer import Buffer
from .contexts import CallInputs
from .errors import EmulatorError
from .http.headers import HeaderMap, HeadersLike, normalize_headers

if TYPE_CHECKING:
    from .contexts import ContextBase
    from .host import Host
    from .plugin import Plugin

__all__ = [
    "CalloutStateError",
    "GrpcCall",
    "GrpcCalls",
    "GrpcStream",
    "HttpCall",
    "HttpCalls",
    "Responder",
    "grpc_cancel",
    "grpc_close",
    "grpc_send",
    "start_grpc_call",
    "start_http_call",
]

TIMEOUT_BODY = b"upstream request timeout"
CONNECT_FAILURE_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"


class CalloutStateError(EmulatorError):
    """Answering a call that is no longer pending (already answered, timed out or cancelled)."""


def _encode_message(message: Any) -> bytes:
    if isinstance(message, bytes | bytearray | memoryview):
        return bytes(message)
    if isinstance(message, str):
        return message.encode()
    serialize = getattr(message, "SerializeToString", None)
    if serialize is None:
        raise TypeError(f"a gRPC message must be bytes or a protobuf message, not {type(message).__name__}")
    return serialize()


@record
class _Call:
    token: int
    cluster: str
    plugin: Plugin
    context_id: int
    stream: Any
    timeout_ms: int
    issued_ms: float
    state: str = "pending"

    @property
    def deadline_ms(self) -> float | None:
        """Virtual time at which Envoy gives up on the call (``None``: no timeout)."""
        return self.issued_ms + self.timeout_ms if self.timeout_ms else None

    @property
    def pending(self) -> bool:
        """Whether the call still waits for an answer."""
        return self.state == "pending"

    def _check(self) -> None:
        if not self.pending:
            raise CalloutStateError(f"call {self.token} to {self.cluster!r} is {self.state}, not pending")

    def _deliver(self, callback: str, *args: int, maps: dict[MapType, HeaderMap | None] | None = None, buffer: tuple[BufferType, Buffer] | None = None) -> None:
        """Run a callout callback on the owning root context with its maps and buffer in scope."""
        plugin = self.plugin
        inputs = CallInputs(buffers=dict([buffer]) if buffer is not None else {}, maps=dict(maps or {}))
        plugin.run(callback, *args, inputs=inputs)


@record
class HttpCall(_Call):
    """One ``proxy_http_call``: what the filter sent, and how to answer it."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response: dict[str, Any] | None = None

    def header(self, name: str | bytes) -> bytes | None:
        """First value of a request header of the call."""
        return HeaderMap(self.headers).get(name)

    @property
    def path(self) -> bytes | None:
        """The call's ``:path``."""
        return self.header(":path")

    @property
    def method(self) -> bytes | None:
        """The call's ``:method``."""
        return self.header(":method")

    def respond(self, status: int = 200, headers: HeadersLike = None, body: bytes | str = b"", trailers: HeadersLike = None) -> None:
        """Deliver a response: ``proxy_on_http_call_response(root, token, n_headers, body_size, n_trailers)``."""
        self._check()
        h = HeaderMap([(b":status", str(status).encode()), *normalize_headers(headers)])
        raw_body = body.encode() if isinstance(body, str) else bytes(body)
        t = HeaderMap(trailers) if trailers else None
        self.state = "answered"
        self.response = {"status": status, "headers": h.pairs(), "body": raw_body, "trailers": t.pairs() if t else None}
        self._deliver(
            "proxy_on_http_call_response",
            self.plugin.root_context_id,
            self.token,
            len(h),
            len(raw_body),
            len(t) if t else 0,
            maps={MapType.HTTP_CALL_RESPONSE_HEADERS: h, MapType.HTTP_CALL_RESPONSE_TRAILERS: t},
            buffer=(BufferType.HTTP_CALL_RESPONSE_BODY, Buffer(raw_body, mutable=False)),
        )

    def fail(self) -> None:
        """Envoy's ``onFailure`` (reset after headers, body over the limit): ``(0, 0, 0)``, status (11, "reset")."""
        self._check()
        self.state = "failed"
        plugin = self.plugin
        plugin.status = (11, b"reset")
        self._deliver("proxy_on_http_call_response", plugin.root_context_id, self.token, 0, 0, 0)
        plugin.status = (11, b"")  # Envoy clears the message after the call, never the code

    def timeout(self) -> None:
        """What Envoy reports on a timeout: a *successful* 504 from the async client's router."""
        self._check()
        self.respond(504, {"content-length": str(len(TIMEOUT_BODY)), "content-type": "text/plain"}, TIMEOUT_BODY)
        self.state = "timed_out"

    def connect_failure(self) -> None:
        """What Envoy reports when the cluster cannot be reached: a successful 503."""
        self._check()
        self.respond(503, {"content-length": str(len(CONNECT_FAILURE_BODY)), "content-type": "text/plain"}, CONNECT_FAILURE_BODY)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description of the call (and its answer)."""
        from .http.types import _body_json, _pairs_json

        return {
            "token": self.token,
            "cluster": self.cluster,
            "headers": _pairs_json(self.headers),
            "body": _body_json(self.body),
            "trailers": _pairs_json(self.trailers) if self.trailers else None,
            "timeout_ms": self.timeout_ms,
            "state": self.state,
            "response_status": self.response["status"] if self.response else None,
        }


@record
class Responder:
    """Answers matching calls: by cluster, and optionally path and method."""

    cluster: str
    path: str | None = None
    method: str | None = None
    response: dict[str, Any] | str | Callable[[HttpCall], None] = field(default_factory=lambda: {"status": 200})
    times: int | None = None
    used: int = 0

    def matches(self, call: HttpCall) -> bool:
        """Whether this responder answers ``call``."""
        if self.times is not None and self.used >= self.times:
            return False
        if call.cluster != self.cluster:
            return False
        if self.path is not None and (call.path or b"").decode(errors="replace") != self.path:
            return False
        return self.method is None or (call.method or b"").decode(errors="replace").upper() == self.method.upper()

    def answer(self, call: HttpCall) -> None:
        """Answer ``call`` as declared."""
        self.used += 1
        r = self.response
        if callable(r):
            r(call)
        elif r == "fail":
            call.fail()
        elif r == "timeout":
            call.timeout()
        elif r == "connect_failure":
            call.connect_failure()
        elif isinstance(r, dict):
            call.respond(int(r.get("status", 200)), r.get("headers"), r.get("body", b""), r.get("trailers"))
        else:
            raise ValueError(f"responder for {self.cluster!r}: unknown response {r!r}")


class HttpCalls:
    """Every HTTP callout of a host, and the responders that answer them."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.calls: list[HttpCall] = []
        self.responders: list[Responder] = []

    def add_responder(
        self,
        cluster: str,
        *,
        path: str | None = None,
        method: str | None = None,
        status: int = 200,
        headers: HeadersLike = None,
        body: bytes | str = b"",
        trailers: HeadersLike = None,
        response: str | Callable[[HttpCall], None] | None = None,
        times: int | None = None,
    ) -> Responder:
        """Declare an answer for future calls; ``response`` may be ``"fail"``, ``"timeout"``,
        ``"connect_failure"`` or a callable taking the call. The first matching responder answers."""
        spec: Any = response if response is not None else {"status": status, "headers": headers, "body": body, "trailers": trailers}
        responder = Responder(cluster, path, method, spec, times)
        self.responders.append(responder)
        return responder

    def pending(self, cluster: str | None = None) -> list[HttpCall]:
        """Calls that wait for an answer, in the order they were made."""
        return [c for c in self.calls if c.pending and (cluster is None or c.cluster == cluster)]

    def record(self, call: HttpCall) -> None:
        """A new call from the filter: answered after the VM call if a responder matches."""
        self.calls.append(call)
        for responder in self.responders:
            if responder.matches(call):
                self.host.defer(lambda r=responder, c=call: c.pending and r.answer(c))
                break

    def start(
        self, ctx: ContextBase, cluster: str, headers: list[tuple[bytes, bytes]], body: bytes, trailers: list[tuple[bytes, bytes]], timeout_ms: int
    ) -> tuple[Status, int]:
        """``proxy_http_call`` from ``ctx``: Envoy's checks, then the call is recorded."""
        return start_http_call(ctx, cluster, headers, body, trailers, timeout_ms)

    def expire(self, now_ms: float) -> None:
        """Time out every pending call whose deadline has passed."""
        for call in self.calls:
            if call.pending and call.deadline_ms is not None and call.deadline_ms <= now_ms:
                call.timeout()


@record
class GrpcCall(_Call):
    """One unary ``proxy_grpc_call``."""

    service: str = ""
    method: str = ""
    initial_metadata: list[tuple[bytes, bytes]] = field(default_factory=list)
    message: bytes = b""

    def message_as(self, message_class: Any) -> Any:
        """Decode the request message with a protobuf class (``FromString``)."""
        return message_class.FromString(self.message)

    def respond(self, message: Any = b"") -> None:
        """Success: ``proxy_on_grpc_receive(root, token, size)`` with the message in buffer 5 (no close follows)."""
        self._check()
        raw = _encode_message(message)
        self.state = "answered"
        self._deliver("proxy_on_grpc_receive", self.plugin.root_context_id, self.token, len(raw), buffer=(BufferType.GRPC_RECEIVE_BUFFER, Buffer(raw)))

    def fail(self, status: int = GrpcStatus.UNAVAILABLE, message: str = "") -> None:
        """Failure: ``proxy_on_grpc_close(root, token, status)``; ``proxy_get_status`` gives (status, message)."""
        self._check()
        self.state = "failed"
        self.plugin.status = (int(status), message.encode())
        self._deliver("proxy_on_grpc_close", self.plugin.root_context_id, self.token, int(status))
        self.plugin.status = (int(status), b"")

    def timeout(self) -> None:
        """A deadline: closed with DEADLINE_EXCEEDED."""
        self.fail(GrpcStatus.DEADLINE_EXCEEDED, "timeout")
        self.state = "timed_out"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready description."""
        import base64

        return {
            "token": self.token,
            "cluster": self.cluster,
            "service": self.service,
            "method": self.method,
            "message": base64.b64encode(self.message).decode(),
            "timeout_ms": self.timeout_ms,
            "state": self.state,
        }


@record
class GrpcStream(_Call):
    """One ``proxy_grpc_stream``: messages both ways, metadata, and a close."""

    service: str = ""
    method: str = ""
    initial_metadata: list[tuple[bytes, bytes]] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    local_closed: bool = False

    def send_initial_metadata(self, metadata: HeadersLike) -> None:
        """``proxy_on_grpc_receive_initial_metadata`` with map 4."""
        self._check()
        m = HeaderMap(metadata)
        self._deliver(
            "proxy_on_grpc_receive_initial_metadata", self.plugin.root_context_id, self.token, len(m), maps={MapType.GRPC_RECEIVE_INITIAL_METADATA: m}
        )

    def send_message(self, message: Any) -> None:
        """``proxy_on_grpc_receive`` with the message in buffer 5."""
        self._check()
        raw = _encode_message(message)
        self._deliver("proxy_on_grpc_receive", self.plugin.root_context_id, self.token, len(raw), buffer=(BufferType.GRPC_RECEIVE_BUFFER, Buffer(raw)))

    def send_trailing_metadata(self, metadata: HeadersLike) -> None:
        """``proxy_on_grpc_receive_trailing_metadata`` with map 5."""
        self._check()
        m = HeaderMap(metadata)
        self._deliver(
            "proxy_on_grpc_receive_trailing_metadata", self.plugin.root_context_id, self.token, len(m), maps={MapType.GRPC_RECEIVE_TRAILING_METADATA: m}
        )

    def close(self, status: int = GrpcStatus.OK, message: str = "") -> None:
        """The remote closes the stream: ``proxy_on_grpc_close(root, token, status)``."""
        self._check()
        self.state = "closed"
        self.plugin.status = (int(status), message.encode())
        self._deliver("proxy_on_grpc_close", self.plugin.root_context_id, self.token, int(status))
        self.plugin.status = (int(status), b"")

    def timeout(self) -> None:
        """Streams have no timeout in the ABI; kept for the common interface."""


class GrpcCalls:
    """Every gRPC call and stream of a host, and responders for unary calls."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.calls: list[GrpcCall | GrpcStream] = []
        self.responders: list[dict[str, Any]] = []

    def add_responder(
        self,
        cluster: str,
        *,
        service: str | None = None,
        method: str | None = None,
        message: Any = None,
        status: int | None = None,
        text: str = "",
    ) -> None:
        """Answer future unary calls: with ``message`` (success) or by closing with ``status``."""
        self.responders.append({"cluster": cluster, "service": service, "method": method, "message": message, "status": status, "text": text})

    def record(self, call: GrpcCall | GrpcStream) -> None:
        """A new call or stream from the filter; a matching responder answers unary calls after the VM call."""
        self.calls.append(call)
        if not isinstance(call, GrpcCall):
            return
        for r in self.responders:
            if r["cluster"] == call.cluster and r["service"] in (None, call.service) and r["method"] in (None, call.method):
                if r["status"] is not None:
                    self.host.defer(lambda c=call, r=r: c.pending and c.fail(r["status"], r["text"]))
                else:
                    self.host.defer(lambda c=call, r=r: c.pending and c.respond(r["message"] or b""))
                break

    def pending(self) -> list[GrpcCall | GrpcStream]:
        """Calls and streams still open, in order."""
        return [c for c in self.calls if c.pending]

    def streams(self) -> list[GrpcStream]:
        """Every gRPC stream."""
        return [c for c in self.calls if isinstance(c, GrpcStream)]

    def start(
        self, ctx: ContextBase, kind: str, upstream: bytes, service: bytes, method: bytes, metadata: list[tuple[bytes, bytes]], message: bytes, timeout_ms: int
    ) -> tuple[Status, int]:
        """``proxy_grpc_call`` (``kind`` ``grpc_call``) or ``proxy_grpc_stream`` (``grpc_stream``) from ``ctx``."""
        return start_grpc_call(ctx, kind, upstream, service, method, metadata, message, timeout_ms)

    def send(self, ctx: ContextBase, token: int, message: bytes, end_stream: bool) -> Status:
        """``proxy_grpc_send``."""
        return grpc_send(ctx, token, message, end_stream)

    def cancel(self, ctx: ContextBase, token: int) -> Status:
        """``proxy_grpc_cancel``."""
        return grpc_cancel(ctx, token)

    def close(self, ctx: ContextBase, token: int) -> Status:
        """``proxy_grpc_close``."""
        return grpc_close(ctx, token)

    def by_token(self, vm: Any, token: int) -> GrpcCall | GrpcStream | None:
        """The call or stream with ``token`` on ``vm``."""
        return next((c for c in self.calls if c.token == token and c.plugin.vm is vm), None)

    def expire(self, now_ms: float) -> None:
        """Time out unary calls whose deadline passed."""
        for call in self.calls:
            if isinstance(call, GrpcCall) and call.pending and call.deadline_ms is not None and call.deadline_ms <= now_ms:
                call.timeout()


# -- what a context does when the filter makes a call (the glue only reads and writes memory) ----------

_REQUIRED = (b":path", b":method", b":authority")


def _known_cluster(host: Host, cluster: str) -> bool:
    return host.clusters is None or cluster in host.clusters


def start_http_call(
    ctx: ContextBase, cluster: str, headers: list[tuple[bytes, bytes]], body: bytes, trailers: list[tuple[bytes, bytes]], timeout_ms: int
) -> tuple[Status, int]:
    """``proxy_http_call`` with Envoy's checks; the call belongs to the context's root context."""
    headers = [(k.lower(), v) for k, v in headers]
    trailers = [(k.lower(), v) for k, v in trailers]
    host = ctx.host
    if timeout_ms >= 1 << 31 or not _known_cluster(host, cluster):
        return Status.BadArgument, 0
    keys = {b":authority" if k == b"host" else k for k, _ in headers}
    if not all(k in keys for k in _REQUIRED):
        return Status.BadArgument, 0
    plugin = ctx.root
    if plugin is None:
        return Status.BadArgument, 0
    if body:  # Envoy's async client sets content-length from the body
        headers = [(k, v) for k, v in headers if k != b"content-length"] + [(b"content-length", str(len(body)).encode())]
    stream = ctx.stream
    call = HttpCall(ctx.vm.next_token("http"), cluster, plugin, ctx.id, stream, timeout_ms, host.clock.now_ms, headers=headers, body=body, trailers=trailers)
    if stream is not None:
        stream.http_calls.append(call)
    host.http_calls.record(call)
    return Status.Ok, call.token


def grpc_cluster(upstream: bytes) -> str:
    """A plain cluster name, or the cluster of a serialized ``GrpcService{envoy_grpc{cluster_name}}``."""
    if upstream[:1] == b"\x0a":
        try:
            outer_len, pos = decode_uleb(upstream, 1)
            inner = upstream[pos : pos + outer_len]
            if inner[:1] == b"\x0a":
                name_len, npos = decode_uleb(inner, 1)
                return inner[npos : npos + name_len].decode()
        except (IndexError, UnicodeDecodeError):
            pass
    return upstream.decode(errors="replace")


def start_grpc_call(
    ctx: ContextBase, kind: str, upstream: bytes, service: bytes, method: bytes, metadata: list[tuple[bytes, bytes]], message: bytes, timeout_ms: int
) -> tuple[Status, int]:
    """``proxy_grpc_call`` (``kind`` ``grpc_call``) or ``proxy_grpc_stream`` (``grpc_stream``)."""
    host = ctx.host
    cluster = grpc_cluster(upstream)
    if not _known_cluster(host, cluster):
        return Status.ParseFailure, 0  # kept for 0.1.x compatibility
    plugin = ctx.root
    if plugin is None:
        return Status.BadArgument, 0
    md = [(k.lower(), v) for k, v in metadata]
    stream = ctx.stream
    cls = GrpcCall if kind == "grpc_call" else GrpcStream
    call = cls(
        ctx.vm.next_token(kind),
        cluster,
        plugin,
        ctx.id,
        stream,
        timeout_ms,
        host.clock.now_ms,
        service=service.decode(errors="replace"),
        method=method.decode(errors="replace"),
        initial_metadata=md,
    )
    if isinstance(call, GrpcCall):
        call.message = message
    if stream is not None:
        stream.grpc_calls.append(call)
    host.grpc_calls.record(call)
    return Status.Ok, call.token


def _grpc_lookup(ctx: ContextBase, token: int) -> GrpcCall | GrpcStream | Status:
    if token & 3 not in (1, 2):
        return Status.BadArgument
    call = ctx.host.grpc_calls.by_token(ctx.vm, token)
    if call is None or not call.pending:
        return Status.NotFound
    return call


def grpc_send(ctx: ContextBase, token: int, message: bytes, end_stream: bool) -> Status:
    """``proxy_grpc_send`` on an open stream."""
    if token & 3 != 2:
        return Status.BadArgument
    call = _grpc_lookup(ctx, token)
    if isinstance(call, Status):
        return call
    assert isinstance(call, GrpcStream)
    call.sent.append(message)
    if end_stream:
        call.local_closed = True
    return Status.Ok


def grpc_cancel(ctx: ContextBase, token: int) -> Status:
    """``proxy_grpc_cancel``: a call is cancelled, a stream reset; no further callbacks."""
    call = _grpc_lookup(ctx, token)
    if isinstance(call, Status):
        return call
    call.state = "cancelled"
    return Status.Ok


def grpc_close(ctx: ContextBase, token: int) -> Status:
    """``proxy_grpc_close``: a unary call is cancelled; a stream is half-closed (the peer may still send)."""
    call = _grpc_lookup(ctx, token)
    if isinstance(call, Status):
        return call
    if isinstance(call, GrpcCall):
        call.state = "cancelled"
    else:
        call.local_closed = True
    return Status.Ok
