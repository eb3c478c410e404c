"""A header map with Envoy's rules (abi-spec.md §1.6).

Keys are lower-cased; repeated keys and pseudo-headers are kept, pseudo-headers stay in front;
values are binary-safe. ``add`` comma-joins into an existing *inline* header (Envoy's O(1)
headers) instead of adding a second entry; ``replace`` removes every entry and adds one at the end;
``host`` is an alias of ``:authority`` in request headers, on input too (a test's ``Host: x``
arrives as ``:authority: x``, as Envoy's codec delivers it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Union

__all__ = ["HeaderMap", "HeadersLike", "normalize_headers"]

HeadersLike = Union[Mapping[str | bytes, str | bytes], Iterable[tuple[str | bytes, str | bytes]], "HeaderMap", None]

_BOTH = {
    b"connection", b"content-type", b"content-length", b"keep-alive", b"proxy-connection", b"proxy-status",
    b"transfer-encoding", b"upgrade", b"via", b"x-request-id", b"x-envoy-attempt-count", b"x-envoy-decorator-operation",
}  # fmt: skip
INLINE_REQUEST = _BOTH | {
    b":authority", b":path", b":method", b":scheme", b":protocol", b"user-agent", b"expect", b"te", b"grpc-timeout",
    b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-client-cert",
    b"x-client-trace-id", b"x-envoy-retry-on", b"x-envoy-retry-grpc-on", b"x-envoy-max-retries",
    b"x-envoy-upstream-rq-timeout-ms", b"x-envoy-upstream-rq-per-try-timeout-ms", b"x-envoy-expected-rq-timeout-ms",
    b"x-envoy-original-path", b"x-envoy-downstream-service-cluster", b"x-envoy-downstream-service-node",
    b"x-envoy-external-address", b"x-envoy-internal", b"x-envoy-hedge-on-per-try-timeout", b"referer",
}  # fmt: skip
INLINE_RESPONSE = _BOTH | {
    b":status", b"date", b"location", b"server", b"x-envoy-upstream-service-time", b"x-envoy-degraded",
    b"x-envoy-upstream-healthchecked-cluster", b"x-envoy-immediate-health-check-fail", b"grpc-status", b"grpc-message",
}  # fmt: skip
INLINE_TRAILERS = {b"grpc-status", b"grpc-message"}
INLINE = {"request": INLINE_REQUEST, "response": INLINE_RESPONSE, "trailers": INLINE_TRAILERS, "plain": set()}


def _b(x: str | bytes) -> bytes:
    if type(x) is bytes:
        return x  # what bytes(x) gives: the same object, without calling the type
    return x.encode() if isinstance(x, str) else bytes(x)


def normalize_headers(headers: HeadersLike) -> list[tuple[bytes, bytes]]:
    """Pairs of bytes with lower-cased keys, from a mapping, a list of pairs or a HeaderMap."""
    if headers is None:
        return []
    if isinstance(headers, HeaderMap):
        return headers.pairs()
    # a list of pairs first: isinstance against the Mapping ABC costs more than the rest of a pair
    items = headers if type(headers) is list else headers.items() if isinstance(headers, Mapping) else headers
    out = []
    names = _NAMES  # typed dict where compiled, as text below is str: their methods are C calls
    for item in items:
        if (type(item) is not tuple and not isinstance(item, tuple | list)) or len(item) != 2:
            raise ValueError(f"a header must be a (name, value) pair, got {item!r}")
        k, v = item
        if type(k) is str:
            key = names.get(k)
            if key is None:
                key = _name(k)
        else:
            key = bytes(k).lower()
        if type(v) is str:
            text = v
            out.append((key, text.encode()))
        else:
            out.append((key, bytes(v)))
    return out


_NAMES: dict[str, bytes] = {}
"""Header names given as text -> their lower-cased bytes. Tests and fuzzers send the same few names
on every request, and finding one here costs less than encoding and lower-casing it again. Bounded
by :data:`_NAMES_MAX` (cleared when full: a fuzzer's random names cannot grow it without end)."""
_NAMES_MAX = 4096


def _name(k: str) -> bytes:
    """``k`` encoded and lower-cased, remembered in :data:`_NAMES`."""
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    key = _NAMES[k] = k.encode().lower()
    return key


_AS_IS, _REORDER, _MERGE = 0, 1, 2


def _layout(pairs: list[tuple[bytes, bytes]], request: bool) -> int:
    """How input pairs become entries, in one pass: ``_MERGE`` when request input has a ``host``
    key or several ``:authority`` ones (they merge into one), else ``_REORDER`` when a
    pseudo-header follows a regular one (pseudo-headers go first), else ``_AS_IS``."""
    seen_authority = seen_regular = False
    layout = _AS_IS
    for k, _ in pairs:
        if k.startswith(b":"):
            if seen_regular:
                layout = _REORDER
            if request and k == b":authority":
                if seen_authority:
                    return _MERGE
                seen_authority = True
        else:
            seen_regular = True
            if request and k == b"host":
                return _MERGE
    return layout


class HeaderMap:
    """Ordered header entries with Envoy's add/replace/remove semantics.

    ``kind`` is ``request`` (request headers: ``host`` aliases ``:authority``), ``response``,
    ``trailers`` or ``plain`` (no inline headers, e.g. gRPC metadata and callout responses).
    """

    __slots__ = ("entries", "kind")

    def __init__(self, headers: HeadersLike = None, *, kind: str = "plain") -> None:
        self.kind = kind
        pairs = normalize_headers(headers)
        layout = _layout(pairs, kind == "request")
        if layout == _AS_IS:
            self.entries: list[tuple[bytes, bytes]] = pairs
        elif layout == _REORDER:  # pseudo-headers first, each group in input order: what _append one by one gives
            self.entries = [p for p in pairs if p[0].startswith(b":")] + [p for p in pairs if not p[0].startswith(b":")]
        else:
            self.entries = []
            for k, v in pairs:
                if k == b"host" or k == b":authority":
                    self._authority(v)
                else:
                    self._append(k, v)

    def _authority(self, value: bytes) -> None:
        """A request's ``Host``/``:authority`` on input: Envoy's request header map has one inline
        ``:authority`` slot and maps the legacy ``host`` key onto it (header_map_impl.cc,
        ``StaticLookupTable<RequestHeaderMap>``); the codec's insert appends a second value to the
        occupied slot with a comma (``HeaderMapImpl::insertByKey`` -> ``appendToHeader``)."""
        for i, (ek, ev) in enumerate(self.entries):
            if ek == b":authority":
                if value:
                    self.entries[i] = (ek, ev + b"," + value if ev else value)
                return
        self._append(b":authority", value)

    def _key(self, key: bytes | str) -> bytes:
        raw = key if type(key) is bytes else _b(key)  # typed bytes where compiled: its lower() is a C call
        k = raw if raw.islower() else raw.lower()  # most keys are lower case already: no new bytes
        return b":authority" if k == b"host" and self.kind == "request" else k

    def _append(self, key: bytes, value: bytes) -> None:
        if key.startswith(b":"):
            pos = 0
            while pos < len(self.entries) and self.entries[pos][0].startswith(b":"):
                pos += 1
            self.entries.insert(pos, (key, value))
        else:
            self.entries.append((key, value))

    # -- reads --------------------------------------------------------------------------------
    def get(self, key: bytes | str) -> bytes | None:
        """Value of the first entry with ``key`` (not comma-joined), ``None`` if absent."""
        k = self._key(key)
        for pair in self.entries:  # a typed tuple where compiled: no unpacking of every entry
            if pair[0] == k:
                return pair[1]
        return None

    def get_all(self, key: bytes | str) -> list[bytes]:
        """Every value of ``key``, in order."""
        k = self._key(key)
        return [v for ek, v in self.entries if ek == k]

    def joined(self, key: bytes | str) -> bytes | None:
        """All values of ``key`` comma-joined, as CEL ``request.headers[k]`` reads them."""
        values = self.get_all(key)
        return b",".join(values) if values else None

    def pairs(self) -> list[tuple[bytes, bytes]]:
        """A copy of every entry in order."""
        return list(self.entries)

    def byte_size(self) -> int:
        """Envoy's ``HeaderMap::byteSize()``: total key and value bytes (``get_header_map_size``)."""
        return sum(len(k) + len(v) for k, v in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self.entries))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str | bytes) and self.get(key) is not None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HeaderMap):
            return self.entries == other.entries
        try:
            return self.entries == normalize_headers(other)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return NotImplemented

    def __repr__(self) -> str:
        return f"HeaderMap({[(k.decode(errors='replace'), v.decode(errors='replace')) for k, v in self.entries]})"

    def to_dict(self) -> dict[str, str]:
        """Lossy view for display: last value wins, decoded as UTF-8 with replacement."""
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in self.entries}

    # -- writes -------------------------------------------------------------------------------
    def add(self, key: bytes | str, value: bytes | str) -> None:
        """``addCopy``: a second entry, or comma-join into an existing inline header."""
        k, v = self._key(key), _b(value)
        if k in INLINE[self.kind]:
            for i, (ek, ev) in enumerate(self.entries):
                if ek == k:
                    if v:
                        self.entries[i] = (ek, ev + b"," + v if ev else v)
                    return
        self._append(k, v)

    def replace(self, key: bytes | str, value: bytes | str) -> None:
        """``setCopy``: remove every entry with ``key`` and add one (moves it to the end)."""
        k = self._key(key)
        self.entries = [(ek, ev) for ek, ev in self.entries if ek != k]
        self._append(k, _b(value))

    def remove(self, key: bytes | str) -> None:
        """Remove every entry with ``key`` (absent keys are fine)."""
        k = self._key(key)
        self.entries = [(ek, ev) for ek, ev in self.entries if ek != k]

    def set_pairs(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """``set_header_map_pairs``: drop every entry, then ``add`` each pair."""
        self.entries = []
        for k, v in pairs:
            self.add(k, v)

    def copy(self) -> HeaderMap:
        """An independent copy."""
        other = HeaderMap.__new__(HeaderMap)
        other.kind = self.kind
        other.entries = list(self.entries)
        return other
