"""Several Wasm filters on one HTTP stream, chained the way Envoy chains them.

The request goes through the filters in configuration order, the response in reverse order. A
filter that stops holds everything behind it; a local reply from filter *i* goes back through
filters *i* .. 0; at the end every filter's ``on_log`` runs, then every filter is destroyed
(``on_done``, ``on_delete``), as in Envoy's ``completeRequest`` then ``onDestroy``::

    chain = FilterChain([auth_plugin, headers_plugin])
    stream = chain.http_exchange(Request({...}), Response({":status": "200"}))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..plugin import Plugin
from .headers import HeadersLike
from .messages import feed
from .stream import HttpStream
from .types import HttpMessage, LocalResponse, Request, Response

__all__ = ["ChainedStream", "FilterChain"]


class FilterChain:
    """An ordered list of plugins (possibly from different modules and VMs of one host)."""

    def __init__(self, plugins: Sequence[Plugin]) -> None:
        if not plugins:
            raise ValueError("a filter chain needs at least one plugin")
        self.plugins = list(plugins)

    def http_stream(self) -> ChainedStream:
        """A new stream through every filter."""
        return ChainedStream(self)

    def http_exchange(self, request: Request | HeadersLike = None, response: Response | HeadersLike = None) -> ChainedStream:
        """One whole exchange through the chain (see :meth:`Plugin.http_exchange`)."""
        stream = self.http_stream()
        feed(stream, "request", request)
        if response is not None and not stream.completed and stream.upstream_request.headers is not None:
            feed(stream, "response", response)
        stream.complete()
        return stream


class ChainedStream:
    """One stream through a :class:`FilterChain`; the same step API as :class:`HttpStream`."""

    def __init__(self, chain: FilterChain) -> None:
        self.chain = chain
        self.streams: list[HttpStream] = [p.http_stream() for p in chain.plugins]
        for i, s in enumerate(self.streams):
            s.chain = self
            s.prev_hop = self.streams[i - 1] if i else None
            s.next_hop = self.streams[i + 1] if i + 1 < len(self.streams) else None
        self._completed = False

    # the two ends
    def send_request_headers(self, headers: HeadersLike, end_of_stream: bool = False) -> Any:
        """Request headers from downstream, into the first filter."""
        return self.streams[0].send_request_headers(headers, end_of_stream)

    def send_request_body(self, data: bytes | str, end_of_stream: bool = False) -> Any:
        """A request data frame, into the first filter."""
        return self.streams[0].send_request_body(data, end_of_stream)

    def send_request_trailers(self, trailers: HeadersLike) -> Any:
        """Request trailers, into the first filter."""
        return self.streams[0].send_request_trailers(trailers)

    def send_response_headers(self, headers: HeadersLike, end_of_stream: bool = False) -> Any:
        """Response headers from upstream, into the last filter."""
        return self.streams[-1].send_response_headers(headers, end_of_stream)

    def send_response_body(self, data: bytes | str, end_of_stream: bool = False) -> Any:
        """A response data frame, into the last filter."""
        return self.streams[-1].send_response_body(data, end_of_stream)

    def send_response_trailers(self, trailers: HeadersLike) -> Any:
        """Response trailers, into the last filter."""
        return self.streams[-1].send_response_trailers(trailers)

    @property
    def upstream_request(self) -> HttpMessage:
        """What the router received (from the last filter)."""
        return self.streams[-1].upstream_request

    @property
    def downstream_response(self) -> HttpMessage:
        """What the client received (from the first filter)."""
        return self.streams[0].downstream_response

    @property
    def local_response(self) -> LocalResponse | None:
        """The local reply of whichever filter sent one."""
        return next((s.local_response for s in self.streams if s.local_response is not None), None)

    @property
    def completed(self) -> bool:
        """Whether the stream has ended."""
        return self._completed

    @property
    def actions(self) -> list[tuple[int, str, str | None]]:
        """``(filter index, callback, action)`` for every callback, in the order they ran."""
        records = sorted(((c.seq, i, c) for i, s in enumerate(self.streams) for c in s.callbacks), key=lambda t: t[0])
        return [(i, c.name, c.action) for _, i, c in records]

    def complete(self) -> None:
        """Every filter's ``on_log``, then every filter's ``on_done`` and ``on_delete``."""
        if self._completed:
            return
        self._completed = True
        for s in self.streams:
            s.finish_phase("log")
        for s in self.streams:
            s.finish_phase("destroy")
