"""One HTTP message model, and one way to feed a message into a stream.

:class:`Request` and :class:`Response` (both a :class:`Message`) describe one side of an exchange
as a client or an upstream sends it: headers, a body cut into data frames, optional trailers.
Every part of the emulator speaks them:

* the API: ``Plugin.http_exchange(Request(...), Response(...))``;
* scenario files: each stream's ``request`` and ``response`` parse into them
  (:func:`emulator.scenario.parse_scenario`), and :meth:`Message.to_scenario` writes one back;
* the fuzzing strategies generate them (:func:`emulator.fuzz.strategies.messages`,
  :func:`emulator.fuzz.strategies.exchanges`);
* the hardening campaigns replay them.

:func:`feed` sends a message into a stream with ``end_of_stream`` where Envoy puts it.
(:class:`emulator.http.types.HttpMessage` is the other direction: what reached one side of the
filter after it ran.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from abi.records import record

from .headers import HeaderMap, HeadersLike, normalize_headers

__all__ = ["Message", "Request", "Response", "as_body", "chunked", "feed", "scenario_bytes", "scenario_headers"]

Pairs = list[tuple[bytes, bytes]]
_M = TypeVar("_M", bound="Message")


def as_body(body: bytes | str | None) -> bytes:
    """Body bytes from ``bytes``, UTF-8 ``str`` or ``None``."""
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else bytes(body)


def chunked(body: bytes, chunks: int | list[int] | None) -> list[bytes]:
    """Split a body into data frames.

    ``None``: one frame (none for an empty body). An int: frames of that size (none for an empty
    body). A list: one frame per size, in order (a size of 0 is an empty frame, so ``[0]`` is the
    single empty frame that carries ``end_of_stream``), then whatever the sizes left over.
    """
    if chunks is None or isinstance(chunks, int):
        if not body:
            return []
        if chunks is None:
            return [body]
        if chunks <= 0:
            raise ValueError("chunk size must be positive")
        return [body[i : i + chunks] for i in range(0, len(body), chunks)]
    out, pos = [], 0
    for size in chunks:
        out.append(body[pos : pos + size])
        pos += size
    if pos < len(body):
        out.append(body[pos:])
    return out


@record
class Message:
    """One side of an HTTP exchange: headers, a body split into data frames, optional trailers.

    Use :class:`Request` or :class:`Response`. ``trailers=None`` means no trailers frame at all
    (an empty map still sends one).
    """

    headers: HeadersLike = None
    body: bytes | str | None = None
    trailers: HeadersLike = None
    chunks: int | list[int] | None = None
    """How to split the body into data frames (see :func:`chunked`)."""

    @classmethod
    def from_frames(cls: type[_M], headers: HeadersLike, frames: Sequence[bytes], trailers: HeadersLike = None) -> _M:
        """The message whose body arrives as exactly ``frames`` (empty frames included)."""
        frames = [bytes(f) for f in frames]
        return cls(headers, b"".join(frames), trailers, [len(f) for f in frames] or None)

    def body_bytes(self) -> bytes:
        """The whole body as bytes."""
        return as_body(self.body)

    def frames(self) -> list[bytes]:
        """The data frames :func:`feed` sends (joined, they give the body)."""
        return chunked(as_body(self.body), self.chunks)

    def header_pairs(self) -> Pairs:
        """Headers as ``(name, value)`` bytes pairs, names lower-cased."""
        return normalize_headers(self.headers)

    def trailer_pairs(self) -> Pairs | None:
        """Trailers as bytes pairs, or ``None`` when the message has no trailers frame."""
        return None if self.trailers is None else normalize_headers(self.trailers)

    def to_scenario(self) -> dict[str, Any]:
        """The scenario-file form (``headers``, then ``chunks`` if any frame, then ``trailers``).

        Header names keep their case and order, so a scenario shows what was generated.
        """
        out: dict[str, Any] = {"headers": scenario_headers(_raw_pairs(self.headers))}
        frames = self.frames()
        if frames:
            out["chunks"] = [scenario_bytes(c) for c in frames]
        if self.trailers is not None:
            out["trailers"] = scenario_headers(_raw_pairs(self.trailers))
        return out


@record
class Request(Message):
    """A downstream request to feed through a filter.

    Envoy only hands a filter a request with ``:method`` and ``:path`` (a CONNECT request:
    ``:authority`` instead of ``:path``), and its connection manager answers 400 to one without
    ``:authority``; :meth:`minimal` builds the smallest such request. Headers without ``:method``
    or ``:path`` are run as given with an :class:`~emulator.InputWarning`: nothing is filled in.
    """

    @classmethod
    def minimal(
        cls,
        path: str = "/",
        *,
        method: str = "GET",
        authority: str = "example.com",
        headers: HeadersLike = None,
        body: bytes | str | None = None,
        trailers: HeadersLike = None,
        chunks: int | list[int] | None = None,
    ) -> Request:
        """The smallest request Envoy delivers to a filter: ``:method``, ``:path`` and ``:authority``
        (the pseudo-headers its codecs and connection manager require), then ``headers``.

        ``Request.minimal("/upload", method="POST", headers={"x-token": "t"}, body="hi")``
        """
        pseudo: Pairs = [(b":method", method.encode()), (b":path", path.encode()), (b":authority", authority.encode())]
        return cls([*pseudo, *normalize_headers(headers)], body, trailers, chunks)


@record
class Response(Message):
    """An upstream response to feed back through the filter."""


_SIDES = ("request", "response")


def feed(stream: Any, side: str, message: Message | HeadersLike, *, start: str = "headers", until: str = "end") -> None:
    """Send one side of an exchange into ``stream``: headers, body frames, trailers.

    ``side`` is ``"request"`` or ``"response"``; ``message`` a :class:`Request`/:class:`Response`
    (or just headers). The body is cut into frames by the message's ``chunks``;
    ``end_of_stream`` goes where Envoy puts it: on the headers when there are neither frames nor
    trailers, else on the last frame, else the trailers end the stream. Sending stops as soon as
    the stream has completed (a local reply, a reset, a failure).

    ``until="headers"`` sends only the headers (``end_of_stream`` as if the rest followed);
    ``start="body"`` sends the rest of a message whose headers went that way, so a message can be
    split around something else (a callback, another stream). ``stream`` is anything with
    ``send_{side}_headers``, ``send_{side}_body``, ``send_{side}_trailers`` and ``completed``: an
    :class:`~emulator.HttpStream` or a :class:`~emulator.ChainedStream`.
    """
    if side not in _SIDES:
        raise ValueError(f"side must be 'request' or 'response', not {side!r}")
    if start not in ("headers", "body") or until not in ("headers", "end") or (start, until) == ("body", "headers"):
        raise ValueError(f"feed sends from start='headers' or 'body' until='headers' or 'end' (not both 'body' and 'headers'); got {start!r}, {until!r}")
    if not isinstance(message, Message):
        message = (Request if side == "request" else Response)(headers=message)
    parts = message.frames()
    trailers = message.trailers
    if start == "headers":
        getattr(stream, f"send_{side}_headers")(message.headers, end_of_stream=not parts and trailers is None)
        if until == "headers":
            return
    send_body = getattr(stream, f"send_{side}_body")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if stream.completed:
            return
        send_body(part, end_of_stream=i == last and trailers is None)
    if trailers is not None and not stream.completed:
        getattr(stream, f"send_{side}_trailers")(trailers)


# -- the scenario-file spelling --------------------------------------------------------------------


def scenario_bytes(data: bytes) -> Any:
    """Bytes as a scenario file spells them: text if valid UTF-8, else ``{"base64": ...}``."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        import base64  # here: only a scenario file needs it

        return {"base64": base64.b64encode(data).decode()}


def scenario_headers(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> list[list[Any]]:
    """Header pairs as a scenario file's ``[[name, value], ...]`` (duplicates and order kept)."""
    out = []
    for k, v in pairs:
        name = k.decode(errors="surrogateescape") if isinstance(k, bytes | bytearray) else k
        value = v.encode() if isinstance(v, str) else bytes(v)
        out.append([name, scenario_bytes(value)])
    return out


def _raw_pairs(headers: HeadersLike) -> list[tuple[Any, Any]]:
    """Header pairs as given (names not lower-cased), from a mapping, pairs or a HeaderMap."""
    if headers is None:
        return []
    if isinstance(headers, HeaderMap):
        return headers.pairs()
    if isinstance(headers, Mapping):
        return list(headers.items())
    return [tuple(p) for p in headers]
