"""HTTP and gRPC callouts (abi-spec.md §1.8)."""

from __future__ import annotations

from abi import Status, decode_pairs

from .base import Glue

__all__ = ["CalloutCalls"]


class CalloutCalls(Glue):
    """``proxy_http_call``, ``proxy_grpc_call``/``_stream``/``_send``/``_cancel``/``_close``."""

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
        self.vm.memory.put_u32(ret_token, 0)  # cpp-host validates the out-pointer first
        cluster = self.read(upstream_ptr, upstream_size).decode(errors="replace")
        headers = decode_pairs(self.read(headers_ptr, headers_size))
        body = self.read(body_ptr, body_size)
        trailers = decode_pairs(self.read(trailers_ptr, trailers_size))
        status, token = self.context().http_call(cluster, headers, body, trailers, timeout_ms)
        if status == Status.Ok:
            self.vm.memory.put_u32(ret_token, token)
        return status

    def _grpc_start(
        self, kind: str, upstream: bytes, service: bytes, method: bytes, metadata: bytes, ret_token: int, message: bytes = b"", timeout_ms: int = 0
    ) -> int:
        self.vm.memory.put_u32(ret_token, 0)
        status, token = self.context().grpc_call(kind, upstream, service, method, decode_pairs(metadata), message, timeout_ms)
        if status == Status.Ok:
            self.vm.memory.put_u32(ret_token, token)
        return status

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

    def proxy_grpc_send(self, token: int, msg_ptr: int, msg_size: int, end_stream: int) -> int:
        message = self.read(msg_ptr, msg_size)
        return self.context().grpc_send(token, message, bool(end_stream))

    def proxy_grpc_cancel(self, token: int) -> int:
        return self.context().grpc_cancel(token)

    def proxy_grpc_close(self, token: int) -> int:
        return self.context().grpc_close(token)
