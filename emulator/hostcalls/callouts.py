"""HTTP and gRPC callouts (abi-spec.md §1.8)."""

from __future__ import annotations

from abi import Status, decode_pairs

from ..callouts import GrpcCall, GrpcStream, HttpCall
from ..leb128 import decode_uleb
from ._glue import Glue

__all__ = ["CalloutCalls"]

_REQUIRED = (b":path", b":method", b":authority")


def _grpc_cluster(upstream: bytes) -> str:
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


class CalloutCalls(Glue):
    """``proxy_http_call``, ``proxy_grpc_call``/``_stream``/``_send``/``_cancel``/``_close``."""

    def _known_cluster(self, cluster: str) -> bool:
        clusters = self.vm.host.clusters
        return clusters is None or cluster in clusters

    def _owner(self) -> tuple[object, int, object]:
        plugin = self.vm.current_plugin()
        ctx = self.vm.current_context_info()
        return plugin, ctx.id, self.vm.current_stream()

    def proxy_http_call(
        self,
        upstream_ptr: int,
        upstream_size: int,
        headers_ptr: int,
        headers_size: int,
        body_ptr: int,
        body_size: int,
        trailers_ptr: int,
        trailers_size: int,
        timeout_ms: int,
        ret_token: int,
    ) -> int:
        mem = self.vm.memory
        mem.put_u32(ret_token, 0)  # cpp-host validates the out-pointer first
        cluster = self.read(upstream_ptr, upstream_size).decode(errors="replace")
        headers = [(k.lower(), v) for k, v in decode_pairs(self.read(headers_ptr, headers_size))]
        body = self.read(body_ptr, body_size)
        trailers = [(k.lower(), v) for k, v in decode_pairs(self.read(trailers_ptr, trailers_size))]
        if timeout_ms >= 1 << 31:
            return Status.BadArgument
        if not self._known_cluster(cluster):
            return Status.BadArgument
        keys = {b":authority" if k == b"host" else k for k, _ in headers}
        if not all(k in keys for k in _REQUIRED):
            return Status.BadArgument
        plugin, ctx_id, stream = self._owner()
        if plugin is None:
            return Status.BadArgument
        if body:
            headers = [(k, v) for k, v in headers if k != b"content-length"] + [(b"content-length", str(len(body)).encode())]
        host = self.vm.host
        call = HttpCall(
            self.vm.next_token("http"), cluster, plugin, ctx_id, stream, timeout_ms, host.clock.now_ms, headers=headers, body=body, trailers=trailers
        )
        if stream is not None and hasattr(stream, "http_calls"):
            stream.http_calls.append(call)
        host.http_calls.record(call)
        mem.put_u32(ret_token, call.token)
        return Status.Ok

    def _grpc_start(
        self, kind: str, upstream: bytes, service: bytes, method: bytes, metadata: bytes, ret_token: int, message: bytes = b"", timeout_ms: int = 0
    ) -> int:
        self.vm.memory.put_u32(ret_token, 0)
        cluster = _grpc_cluster(upstream)
        if not self._known_cluster(cluster):
            return Status.ParseFailure  # kept for 0.1.x compatibility
        plugin, ctx_id, stream = self._owner()
        if plugin is None:
            return Status.BadArgument
        md = [(k.lower(), v) for k, v in decode_pairs(metadata)]
        host = self.vm.host
        cls = GrpcCall if kind == "grpc_call" else GrpcStream
        call = cls(
            self.vm.next_token(kind),
            cluster,
            plugin,
            ctx_id,
            stream,
            timeout_ms,
            host.clock.now_ms,
            service=service.decode(errors="replace"),
            method=method.decode(errors="replace"),
            initial_metadata=md,
        )
        if isinstance(call, GrpcCall):
            call.message = message
        if stream is not None and hasattr(stream, "grpc_calls"):
            stream.grpc_calls.append(call)
        host.grpc_calls.record(call)
        self.vm.memory.put_u32(ret_token, call.token)
        return Status.Ok

    def proxy_grpc_call(
        self,
        upstream_ptr: int,
        upstream_size: int,
        service_ptr: int,
        service_size: int,
        method_ptr: int,
        method_size: int,
        initial_md_ptr: int,
        initial_md_size: int,
        msg_ptr: int,
        msg_size: int,
        timeout_ms: int,
        ret_token: int,
    ) -> int:
        return self._grpc_start(
            "grpc_call",
            self.read(upstream_ptr, upstream_size),
            self.read(service_ptr, service_size),
            self.read(method_ptr, method_size),
            self.read(initial_md_ptr, initial_md_size),
            ret_token,
            self.read(msg_ptr, msg_size),
            timeout_ms,
        )

    def proxy_grpc_stream(
        self,
        upstream_ptr: int,
        upstream_size: int,
        service_ptr: int,
        service_size: int,
        method_ptr: int,
        method_size: int,
        initial_md_ptr: int,
        initial_md_size: int,
        ret_token: int,
    ) -> int:
        return self._grpc_start(
            "grpc_stream",
            self.read(upstream_ptr, upstream_size),
            self.read(service_ptr, service_size),
            self.read(method_ptr, method_size),
            self.read(initial_md_ptr, initial_md_size),
            ret_token,
        )

    def _grpc_lookup(self, token: int) -> GrpcCall | GrpcStream | int:
        if token & 3 not in (1, 2):
            return Status.BadArgument
        call = self.vm.host.grpc_calls.by_token(self.vm, token)
        if call is None or not call.pending:
            return Status.NotFound
        return call

    def proxy_grpc_send(self, token: int, msg_ptr: int, msg_size: int, end_stream: int) -> int:
        message = self.read(msg_ptr, msg_size)
        if token & 3 != 2:
            return Status.BadArgument
        call = self._grpc_lookup(token)
        if isinstance(call, int):
            return call
        assert isinstance(call, GrpcStream)
        call.sent.append(message)
        if end_stream:
            call.local_closed = True
        return Status.Ok

    def proxy_grpc_cancel(self, token: int) -> int:
        call = self._grpc_lookup(token)
        if isinstance(call, int):
            return call
        call.state = "cancelled"  # a call is cancelled, a stream reset: no further callbacks
        return Status.Ok

    def proxy_grpc_close(self, token: int) -> int:
        call = self._grpc_lookup(token)
        if isinstance(call, int):
            return call
        if isinstance(call, GrpcCall):
            call.state = "cancelled"
        else:
            call.local_closed = True  # half-close: the peer may still send
        return Status.Ok
