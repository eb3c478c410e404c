"""HTTP stream control: local replies, continue, close, route cache (abi-spec.md §1.7)."""

from __future__ import annotations

import re

from abi import Status, StreamType, decode_pairs

from ..http.types import LocalResponse
from .base import Glue

__all__ = ["StreamControlCalls"]

_WS = re.compile(rb"\s")
_MAX_GRPC_STATUS = 16


class StreamControlCalls(Glue):
    """``proxy_send_local_response``, ``proxy_continue_stream``/``_request``/``_response``,
    ``proxy_close_stream`` and ``proxy_clear_route_cache``."""

    def proxy_send_local_response(
        self, status_code: int, details_ptr: int, details_size: int, body_ptr: int, body_size: int, headers_ptr: int, headers_size: int, grpc_status: int
    ) -> int:
        details = _WS.sub(b"_", self.read(details_ptr, details_size)).decode(errors="replace")
        body = self.read(body_ptr, body_size)
        headers = [(k.lower(), v) for k, v in decode_pairs(self.read(headers_ptr, headers_size))]
        grpc = grpc_status if grpc_status <= _MAX_GRPC_STATUS else None  # larger values mean "not gRPC" (-1 as u32)
        reply = LocalResponse(status_code, body, headers, details, grpc, self.vm.current_callback or "?")
        return self.context().send_local_response(reply)

    def proxy_continue_stream(self, stream_type: int) -> int:
        if stream_type > StreamType.UPSTREAM:
            return Status.BadArgument
        return self.context().continue_stream(StreamType(stream_type))

    def proxy_continue_request(self) -> int:
        return self.context().continue_stream(StreamType.HTTP_REQUEST)

    def proxy_continue_response(self) -> int:
        return self.context().continue_stream(StreamType.HTTP_RESPONSE)

    def proxy_close_stream(self, stream_type: int) -> int:
        if stream_type > StreamType.UPSTREAM:
            return Status.BadArgument
        return self.context().close_stream(StreamType(stream_type))

    def proxy_clear_route_cache(self) -> int:
        return self.context().clear_route_cache()
