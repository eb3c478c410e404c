"""Plain data describing HTTP traffic through a stream: what went where, and what the filter did.

What goes in (:class:`Request`, :class:`Response`, :func:`as_body`, :func:`chunked`) is defined in
:mod:`emulator.messages` and re-exported here; what came out is :class:`HttpMessage`,
:class:`LocalResponse` and :class:`CallbackRecord`.
"""

from __future__ import annotations

from typing import Any

from abi.records import field, fields_eq, fields_repr, record

from .headers import HeadersLike, normalize_headers
from .messages import Request, Response, as_body, chunked

__all__ = ["CallbackRecord", "HttpMessage", "LocalResponse", "Request", "Response", "as_body", "begun_record", "chunked"]

# the fields of the two records below, in their constructors' order (their repr and == follow it)
_MESSAGE_FIELDS = ("headers", "body", "trailers", "end_stream", "reset", "body_chunks")
_RECORD_FIELDS = ("name", "args", "raw", "action", "notes", "seq", "cost")


class HttpMessage:
    """What reached one side of the filter: upstream (the request) or downstream (the response).

    ``headers`` and ``trailers`` are ``None`` until they arrive; ``body`` is every byte forwarded,
    ``body_chunks`` the frames as they went; ``end_stream`` and ``reset`` say how the side ended.
    """

    # a plain class, not a dataclass: every stream makes two (its type is compiled, see types.pxd)
    __slots__ = _MESSAGE_FIELDS

    def __init__(
        self,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytearray | None = None,
        trailers: list[tuple[bytes, bytes]] | None = None,
        end_stream: bool = False,
        reset: bool = False,
        body_chunks: list[bytes] | None = None,
    ) -> None:
        self.headers = headers
        self.body = bytearray() if body is None else body
        self.trailers = trailers
        self.end_stream = end_stream
        self.reset = reset
        self.body_chunks = [] if body_chunks is None else body_chunks

    def __repr__(self) -> str:
        return fields_repr(self, _MESSAGE_FIELDS)

    def __eq__(self, other: object) -> bool:
        return fields_eq(self, other, _MESSAGE_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def header(self, name: str | bytes) -> bytes | None:
        """First value of a header (``None`` if absent or if no headers arrived)."""
        key = name.encode().lower() if isinstance(name, str) else name.lower()
        return next((v for k, v in self.headers or () if k == key), None)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: headers as ``[[name, value], ...]`` strings, body as text or ``{"base64"}``."""
        return {
            "headers": _pairs_json(self.headers),
            "body": _body_json(bytes(self.body)),
            "trailers": _pairs_json(self.trailers),
            "end_stream": self.end_stream,
            "reset": self.reset,
        }


@record
class LocalResponse:
    """A ``proxy_send_local_response`` as the filter sent it, and the headers Envoy shaped from it."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    details: str
    grpc_status: int | None
    callback: str
    sent_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (``headers`` are the filter's own pairs)."""
        return {
            "status": self.status,
            "headers": _pairs_json(self.headers),
            "body": _body_json(self.body),
            "details": self.details,
            "grpc_status": self.grpc_status,
            "callback": self.callback,
        }


class CallbackRecord:
    """One callback the emulator made into the filter, with the filter's raw answer and its meaning.

    ``name`` and ``args`` are the export called and its arguments, ``raw`` what it returned
    (``None``: it trapped or is not exported), ``action`` the meaning the stream gave it, and
    ``notes`` what else happened. ``seq`` is the host-wide order of the call (callbacks of chained
    filters interleave); ``cost`` the callback's :class:`~emulator.costs.Cost` when the host
    meters costs.
    """

    # a plain class, not a dataclass: every callback makes one (its type is compiled, see types.pxd)
    __slots__ = ("_notes", "action", "args", "cost", "name", "raw", "seq")

    def __init__(
        self, name: str, args: tuple[int, ...], raw: int | None, action: str | None, notes: list[str] | None = None, seq: int = 0, cost: Any = None
    ) -> None:
        self.name = name
        self.args = args
        self.raw = raw
        self.action = action
        self._notes = notes  # the list is made when first read: most callbacks have no notes
        self.seq = seq
        self.cost = cost

    @property
    def notes(self) -> list[str]:
        """What else happened, in order (a list a caller may append to)."""
        if self._notes is None:
            self._notes = []
        return self._notes

    @notes.setter
    def notes(self, value: list[str]) -> None:
        self._notes = value

    def __repr__(self) -> str:
        return fields_repr(self, _RECORD_FIELDS)

    def __eq__(self, other: object) -> bool:
        return fields_eq(self, other, _RECORD_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {"name": self.name, "args": list(self.args), "raw": self.raw, "action": self.action, "notes": self.notes}
        if self.cost is not None:
            out["cost"] = self.cost.to_json()
        return out


def begun_record(name: str, args: tuple[int, ...], seq: int) -> CallbackRecord:
    """``CallbackRecord(name, args, None, None, seq=seq)``: the record of a callback about to run,
    which every callback makes, without ``__init__``'s argument parsing (a C call where compiled)."""
    record = CallbackRecord.__new__(CallbackRecord)
    record.name, record.args, record.raw, record.action, record._notes, record.seq, record.cost = name, args, None, None, None, seq, None
    return record


def _text(b: bytes) -> str:
    return b.decode(errors="surrogateescape")


def _pairs_json(pairs: list[tuple[bytes, bytes]] | None) -> list[list[str]] | None:
    if pairs is None:
        return None
    return [[_text(k), _text(v)] for k, v in pairs]


def _body_json(body: bytes) -> Any:
    """Text when the body is UTF-8 without control characters (other than tab, CR, LF), else base64."""
    try:
        text = body.decode()
        if all(c >= " " or c in "\t\r\n" for c in text):
            return text
    except UnicodeDecodeError:
        pass
    import base64

    return {"base64": base64.b64encode(body).decode()}


def pairs(headers: HeadersLike) -> list[tuple[bytes, bytes]]:
    """Normalized header pairs (re-exported for callers of this module)."""
    return normalize_headers(headers)
