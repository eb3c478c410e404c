"""HTTP stream control: local replies, continue, close, route cache (abi-spec.md §1.7)."""

from __future__ import annotations

import re

from abi import Status, StreamType, decode_pairs

from ..http_types import LocalResponse
from ._glue import Glue

__all__ = ["StreamControlCalls"]

_WS = re.compile(rb"\s")


class StreamControlCalls(Glue):
    """``proxy_send_local_response``, ``proxy_continue_stream``/``_request``/``_response``,
    ``proxy_close_stream`` and ``proxy_clear_route_cache``."""

    def proxy_send_local_response(
        self, status_code: int, details_ptr: int, details_size: int, body_ptr: int, body_size: int, headers_ptr: int, headers_size: int, grpc_status: int
    ) -> int:
        details = _WS.sub(b"_", self.read(details_ptr, details_size)).decode(errors="replace")
        body = self.read(body_ptr, body_size)
        headers = [(k.lower(), v) for k, v in decode_pairs(self.read(headers_ptr, headers_size))]
        stream = self.vm.current_stream()
        if stream is None or not stream.is_http:
            self.vm.note("send_local_response outside an HTTP stream is a no-op in Envoy (envoy#39797)")
            return Status.Ok
        grpc = grpc_status if grpc_status <= 16 else None
        callback = self.vm.current_callback or "?"
        stream.prepare_local_response(LocalResponse(status_code, body, headers, details, grpc, callback))
        return Status.Ok

    def _continue(self, stream_type: int) -> int:
        if stream_type > StreamType.UPSTREAM:
            return Status.BadArgument
        if stream_type == StreamType.UPSTREAM:
            return Status.Unimplemented
        stream = self.vm.current_stream()
        if stream is None:
            return Status.Ok
        if stream_type == StreamType.DOWNSTREAM:
            return stream.continue_downstream() if not stream.is_http else Status.Ok
        if stream.is_http:
            stream.continue_side("request" if stream_type == StreamType.HTTP_REQUEST else "response")
        return Status.Ok

    def proxy_continue_stream(self, stream_type: int) -> int:
        return self._continue(stream_type)

    def proxy_continue_request(self) -> int:
        return self._continue(StreamType.HTTP_REQUEST)

    def proxy_continue_response(self) -> int:
        return self._continue(StreamType.HTTP_RESPONSE)

    def proxy_close_stream(self, stream_type: int) -> int:
        if stream_type > StreamType.UPSTREAM:
            return Status.BadArgument
        stream = self.vm.current_stream()
        if stream is None:
            return Status.Ok
        if stream_type in (StreamType.HTTP_REQUEST, StreamType.HTTP_RESPONSE):
            if stream.is_http:
                stream.close()
        elif not stream.is_http:
            stream.close_connection(stream_type)
        return Status.Ok

    def proxy_clear_route_cache(self) -> int:
        stream = self.vm.current_stream()
        if stream is not None:
            stream.route_cache_cleared += 1
        return Status.Ok
