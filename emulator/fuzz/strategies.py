"""Hypothesis strategies for proxy-wasm traffic, callouts, properties, configurations and host faults.

Every strategy is a plain hypothesis strategy, so it composes with your own::

    from hypothesis import given, strategies as st
    from emulator import strategies as pst

    @given(pst.exchanges(vocabulary=["x-tenant"]), pst.property_values())
    def test_never_traps(exchange, value):
        plugin = Host(seed=0).load("filter.wasm", properties={"tenant": value})
        stream = plugin.http_exchange(exchange.request, exchange.response)
        assert stream.error is None

The families:

* header names and values (:func:`header_names`, :func:`header_values`), whole maps
  (:func:`header_maps`, :func:`request_headers`, :func:`response_headers`, :func:`trailers`) and
  maps at cpp-host's pair limits (:func:`header_maps_near_limits`). ``adversarial=True`` adds case
  variants, duplicates, stray pseudo-headers, empty, non-ASCII, control-byte and very long values;
  ``vocabulary`` mixes in names (and values) you know the filter looks at.
* bodies cut at arbitrary frame boundaries (:func:`bodies`, :func:`chunkings`), whole messages
  (:func:`messages` gives an :class:`emulator.Request` or :class:`emulator.Response`, the model the
  API and scenario files use) and whole exchanges (:func:`exchanges` gives an :class:`Exchange`).
* callout answers (:func:`callout_responses`, :func:`grpc_responses`): success, failure, timeout,
  connect failure, odd statuses, or no answer at all.
* property values that :func:`abi.encode_value` serializes (:func:`property_values`).
* plugin configurations (:func:`plugin_configs`, :func:`plugin_configs_from_schema` through
  the built-in JSON Schema generator of :mod:`emulator.fuzz.schema`).
* host fault plans (:func:`fault_plans`): which host calls return which error status, and when;
  apply one with :class:`emulator.fuzz.FaultInjectingObserver`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from abi import PAIRS_MAX_BYTES, PAIRS_MAX_COUNT
from abi.properties import UInt64

from ..http.messages import Request, Response, scenario_bytes, scenario_headers
from ..session import default_session
from . import drawn
from .schema import from_schema
from .values import FAULT_STATUSES, CalloutResponse, Exchange, FaultPlan, FaultRule, GrpcResponse, Pairs
from .words import COMMON_HEADER_NAMES, COMMON_QUERY_PARAMETERS

__all__ = [
    "COMMON_HEADER_NAMES",
    "FAULT_STATUSES",
    "CalloutResponse",
    "Exchange",
    "FaultPlan",
    "FaultRule",
    "GrpcResponse",
    "bodies",
    "callout_responses",
    "chunkings",
    "exchanges",
    "fault_plans",
    "fault_rules",
    "grpc_responses",
    "header_maps",
    "header_maps_near_limits",
    "header_names",
    "header_values",
    "json_values",
    "messages",
    "plugin_configs",
    "plugin_configs_from_schema",
    "property_trees",
    "property_values",
    "request_headers",
    "response_headers",
    "scenario_bytes",
    "scenario_headers",
    "trailers",
]


_REQUEST_PSEUDO = (":method", ":path", ":authority", ":scheme", ":protocol")
_STRAY_PSEUDO = (":method", ":path", ":authority", ":scheme", ":status", ":protocol", ":foo", ":")
_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
_TOKEN = "abcdefghijklmnopqrstuvwxyz0123456789-"
_TOKEN_EXTRA = "!#$%&'*+.^_`|~"
_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
_STATUSES = (200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503, 504)
_ODD_STATUSES = (100, 103, 299, 418, 599, 600, 999)
_LONG_SIZES = (256, 4096, 8192, 60 * 1024, 64 * 1024 + 1)
_NAME_MAX = 24  # header_names' longest random name, and a map entry's
_VALUE_MAX = 40  # header_values' longest plain value, and a map entry's
_TRAILERS_MAX = 4  # trailers' largest map, and a message's

# -- names and values ------------------------------------------------------------------------------


def _freeze(v: Any) -> Any:
    if isinstance(v, str | bytes | int | float | bool | None):
        return v
    if isinstance(v, set | frozenset):
        return frozenset(_freeze(x) for x in v)
    if isinstance(v, dict):
        return v
    if isinstance(v, Iterable):
        return tuple(_freeze(x) for x in v)
    return v


def _cached(fn: Any) -> Any:
    """Build each strategy once per distinct arguments: hypothesis validates a new strategy on first
    use, which costs more than drawing from it, and these are rebuilt inside other strategies."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        fargs = tuple(_freeze(a) for a in args)
        fkw = {k: _freeze(v) for k, v in kwargs.items()}
        key = (fn.__qualname__, fargs, tuple(sorted(fkw.items())))
        cache = default_session().cache("fuzz.strategies")
        try:
            hit = cache.get(key)
        except TypeError:  # an unhashable argument (a dict schema...): no caching
            return fn(*fargs, **fkw)
        if hit is None:
            if len(cache) > 512:
                cache.clear()
            hit = cache[key] = fn(*fargs, **fkw)
        return hit

    return wrapper


def _vocab(vocabulary: Iterable[str | bytes]) -> list[str]:
    out: list[str] = []
    for v in vocabulary:
        s = v.decode(errors="replace") if isinstance(v, bytes | bytearray) else str(v)
        if s and s not in out:
            out.append(s)
    return out


def _caseless_char(c: str) -> bool:
    # names must lower-case the same way in Python (scenario files) and in Envoy (ASCII only)
    return c.lower() == c and c not in "\r\n\0"


def _name_branches(vocab: list[str], pseudo: bool, *, adversarial: bool, max_size: int) -> list[drawn.Branch[str]]:
    """How a header name is decoded from drawn bytes (see :mod:`emulator.fuzz.drawn`)."""
    custom = [v for v in vocab if v.startswith(("x-", ":"))]  # the names filters usually look for get a branch of their own
    others = [v for v in vocab if not v.startswith(("x-", ":"))]
    token = drawn.text(_TOKEN, min_size=1, max_size=max_size)
    branches: list[drawn.Branch[str]] = [drawn.word(words) for words in (custom, others) if words]
    branches += [lambda p: token(p).decode(), drawn.word(COMMON_HEADER_NAMES)]
    if adversarial:
        known = [*vocab, *COMMON_HEADER_NAMES]
        punctuated = drawn.text(_TOKEN + _TOKEN_EXTRA, min_size=1, max_size=max_size)
        control = drawn.text("\x01\x07\t\x1b\x7f abc-", min_size=1, max_size=8)
        branches += [
            lambda p: drawn.case_variant(known[drawn.number(p, len(known))], p[2:]),
            *([drawn.word(_STRAY_PSEUDO)] if pseudo else []),
            lambda p: punctuated(p).decode(),
            lambda p: "x-" + drawn.codepoints(p, lo=0x80, hi=0x2FFFF, most=8, keep=_caseless_char),
            lambda p: control(p).decode(),
        ]
    return branches


def _value_branches(vocab: list[bytes], *, adversarial: bool, max_size: int, impossible: bool) -> list[drawn.Branch[bytes]]:
    """How a header value is decoded from drawn bytes (see :mod:`emulator.fuzz.drawn`)."""
    plain = drawn.text(_VISIBLE + " ", min_size=1, max_size=max_size)
    # list-shaped values, as in accept, cache-control or x-forwarded-for: items may be empty or
    # padded. The item table is half generic items, half words, as a choice between the two would
    # be; a byte of 0 (what shrinking reaches) is the empty item.
    generic = [b"", b" ", b"a", b"gzip", b"1", b"no-cache", b"10.0.0.1", b"*/*;q=0.8"]
    words = vocab[:128]
    items = generic * max(1, -(-len(words) // len(generic))) + words
    branches: list[drawn.Branch[bytes]] = [
        lambda p: plain(p).strip(b" ") or b"v",
        lambda p: b",".join(items[x % len(items)] for x in p[:6].ljust(2, b"\0")),
    ]
    if vocab:
        branches.append(drawn.word(vocab))
    if adversarial:
        banned = b"" if impossible else b"\0\r\n"
        control = bytes([*(c for c in [*range(0x00, 0x20), 0x7F] if c not in banned), 0x80, 0xFF, 0x41])
        branches += [
            lambda p: b"",
            lambda p: drawn.codepoints(p, lo=0x80, hi=0x10FFFF, most=8).encode(),
            lambda p: bytes(x for x in p[:max_size] if x not in banned) or b"\x80",
            lambda p: bytes(control[x % len(control)] for x in p[:12].ljust(1, b"\0")),
            lambda p: drawn.fill(p, _LONG_SIZES, [b"a", b"\xff", b"%", b"ab,"]),
        ]
    return branches


@_cached
def header_names(
    vocabulary: Iterable[str | bytes] = (),
    *,
    adversarial: bool = False,
    max_size: int = _NAME_MAX,
    pseudo: bool | None = None,
) -> st.SearchStrategy[str]:
    """Header names: ``vocabulary`` entries, common names, random lower-case tokens.

    ``adversarial`` adds case variants, pseudo-header names, token punctuation, non-ASCII and
    control characters (never NUL, CR or LF, which Envoy's codecs refuse). ``pseudo=False`` never
    yields a name starting with ``:`` (default: only when ``adversarial``). Names are ``str``; a
    header map turns them into bytes. Each name is one draw (:mod:`emulator.fuzz.drawn`).
    """
    branches = _name_branches(*_names_vocab(vocabulary, adversarial, pseudo), adversarial=adversarial, max_size=max_size)
    return st.binary(min_size=3, max_size=max_size + 3).map(functools.partial(drawn.choose, branches))


@_cached
def header_values(
    vocabulary: Iterable[str | bytes] = (),
    *,
    adversarial: bool = False,
    max_size: int = _VALUE_MAX,
    impossible: bool = False,
) -> st.SearchStrategy[bytes]:
    """Header values as bytes: visible ASCII with inner spaces, list-shaped values, plus
    ``vocabulary`` entries.

    ``adversarial`` adds empty values, non-ASCII UTF-8, raw obs-text bytes (0x80-0xFF, not UTF-8),
    control bytes and very long values (up to 64 KiB). ``impossible=True`` also allows NUL, CR and
    LF, which Envoy never delivers to a filter (its codecs reject them). Each value is one draw
    (:mod:`emulator.fuzz.drawn`).
    """
    branches = _value_branches(_bytes_vocab(vocabulary), adversarial=adversarial, max_size=max_size, impossible=impossible)
    return st.binary(min_size=3, max_size=max_size + 3).map(functools.partial(drawn.choose, branches))


def _names_vocab(vocabulary: Iterable[str | bytes], adversarial: bool, pseudo: bool | None) -> tuple[list[str], bool]:
    """The vocabulary's names, and whether pseudo-header names may be drawn (default: when ``adversarial``)."""
    allow_pseudo = adversarial if pseudo is None else pseudo
    return [v for v in _vocab(vocabulary) if allow_pseudo or not v.startswith(":")], allow_pseudo


def _bytes_vocab(vocabulary: Iterable[str | bytes]) -> list[bytes]:
    return [v.encode() if isinstance(v, str) else bytes(v) for v in _vocab(vocabulary)]


class _Entries:
    """Header map entries, each decoded from one drawn byte string: a repeat byte, a cut byte, three
    bytes each for the name's and the value's branch and word (so that every entry draws them),
    then the payload, cut in two for the name and the value (see :mod:`emulator.fuzz.drawn`)."""

    FIXED = 8

    def __init__(self, names: list[drawn.Branch[str]], values: list[drawn.Branch[bytes]], *, adversarial: bool, payload: int) -> None:
        self.names, self.values, self.adversarial = names, values, adversarial
        self.raw = st.binary(min_size=self.FIXED, max_size=self.FIXED + payload)

    def draw(self, draw: st.DrawFn, count: int) -> Pairs:
        out: Pairs = []
        for _ in range(count):
            raw = draw(self.raw)
            rest = raw[self.FIXED :]
            at = raw[1] % (len(rest) + 1)
            name_raw, value_raw = raw[2:5] + rest[:at], raw[5:8] + rest[at:]
            repeat = raw[0]
            if self.adversarial and out and repeat % 4 == 3:  # a duplicate or a case variant of a name already drawn
                prev = out[(repeat >> 2) % len(out)][0].decode()
                name = drawn.case_variant(prev, name_raw) if repeat >= 128 else prev
            else:
                name = drawn.choose(self.names, name_raw)
            out.append((name.encode(), drawn.choose(self.values, value_raw)))
        return out


@_cached
def _entries(vocabulary: Iterable[str | bytes], value_vocabulary: Iterable[str | bytes], adversarial: bool, pseudo: bool | None) -> _Entries:
    names = _name_branches(*_names_vocab(vocabulary, adversarial, pseudo), adversarial=adversarial, max_size=_NAME_MAX)
    values = _value_branches(_bytes_vocab(value_vocabulary), adversarial=adversarial, max_size=_VALUE_MAX, impossible=False)
    return _Entries(names, values, adversarial=adversarial, payload=_NAME_MAX + _VALUE_MAX)


@_cached
def header_maps(
    *,
    vocabulary: Iterable[str | bytes] = (),
    value_vocabulary: Iterable[str | bytes] = (),
    adversarial: bool = False,
    min_size: int = 0,
    max_size: int = 8,
    pseudo: bool | None = None,
) -> st.SearchStrategy[Pairs]:
    """A header map as ``[(name, value), ...]`` bytes pairs, order and repeats kept.

    ``adversarial`` adds duplicates and case variants of names already drawn, and (unless
    ``pseudo=False``) stray pseudo-headers. ``pseudo=False`` never yields names starting with ``:``.
    Each entry is one draw (:mod:`emulator.fuzz.drawn`), plus one for the count.
    """
    entries = _entries(vocabulary, value_vocabulary, adversarial, pseudo)
    count = st.integers(min_size, max_size)

    @st.composite
    def draw_map(draw: st.DrawFn) -> Pairs:
        return entries.draw(draw, draw(count))

    return draw_map()


@_cached
def header_maps_near_limits(*, which: str | None = None, over: bool = True, slack: int = 2) -> st.SearchStrategy[Pairs]:
    """Maps at cpp-host's pairs limits: ``PAIRS_MAX_COUNT`` pairs or ``PAIRS_MAX_BYTES`` encoded bytes.

    ``which`` is ``"count"``, ``"bytes"`` or ``None`` (either). Counts and sizes land within
    ``slack`` of the limit, below it and, with ``over=True``, just above it (cpp-host then parses
    the buffer as empty). The encoded size (:func:`abi.pairs.encoded_size`) is exact.
    """
    hi = slack if over else 0

    def by_count(delta: int) -> Pairs:
        return [(f"x-n{i:04d}".encode(), b"v") for i in range(PAIRS_MAX_COUNT + delta)]

    def by_bytes(args: tuple[int, int, bytes]) -> Pairs:
        delta, k, fill = args
        target = PAIRS_MAX_BYTES + delta
        names = [f"x-b{i}".encode() for i in range(k)]
        room = target - 4 - sum(10 + len(n) for n in names)
        sizes = [room // k] * (k - 1) + [room - (room // k) * (k - 1)]
        return [(n, (fill * s)[:s]) for n, s in zip(names, sizes, strict=True)]

    count = st.integers(-slack, hi).map(by_count)
    size = st.tuples(st.integers(-slack, hi), st.integers(1, 8), st.sampled_from([b"a", b"\xff", b"0123456789"])).map(by_bytes)
    if which == "count":
        return count
    if which == "bytes":
        return size
    if which is not None:
        raise ValueError(f"which must be 'count', 'bytes' or None, not {which!r}")
    return st.one_of(count, size)


_PATHS = (b"/", b"/api/v1/items", b"/index.html", b"/search", b"/a/b/c", b"/admin")
_QUERY_VALUES = (b"", b"=", b"=1", b"=x", b"=true", b"=%2F")
_ODD_PATHS = (b"//", b"/..", b"/%00", b"*", b"/a b", b"/\xc3\xa9", b"/\xff", b"/" + b"a" * 4096)
_AUTHORITIES = (b"example.com", b"a", b"localhost:8080", b"[::1]:443")


def _query(p: bytes) -> bytes:
    """A query string of 1-3 common parameter names, with or without values (two bytes each)."""
    p = p.ljust(1, b"\0")
    params = [p[i : i + 2].ljust(2, b"\0") for i in range(1, 1 + 2 * (p[0] % 3 + 1), 2)]
    return b"?" + b"&".join(COMMON_QUERY_PARAMETERS[k % len(COMMON_QUERY_PARAMETERS)] + _QUERY_VALUES[v % len(_QUERY_VALUES)] for k, v in params)


def _path_branches(adversarial: bool) -> list[drawn.Branch[bytes]]:
    """How a ``:path`` is decoded from drawn bytes: a common path, one with a query, random
    characters; ``adversarial`` adds odd ones (dot segments, NUL, spaces, non-ASCII, 4 KiB)."""
    base = drawn.word(_PATHS)
    chars = drawn.text("abcdefghijklmnopqrstuvwxyz0123456789-._~%/?=&", max_size=32)
    branches: list[drawn.Branch[bytes]] = [base, lambda p: base(p[:1]) + _query(p[1:]), lambda p: b"/" + chars(p)]
    if adversarial:
        branches.append(drawn.word(_ODD_PATHS))
    return branches


@_cached
def request_headers(
    *,
    vocabulary: Iterable[str | bytes] = (),
    value_vocabulary: Iterable[str | bytes] = (),
    adversarial: bool = False,
    max_extra: int = 6,
    near_limits: bool = False,
) -> st.SearchStrategy[Pairs]:
    """Request headers with the pseudo-headers Envoy's router requires (``:method``, ``:path``,
    ``:authority``; sometimes ``:scheme``) plus a drawn map of other headers.

    The required pseudo-headers are always present and valid, so a removal that the emulator
    reports is the filter's doing; ``adversarial`` maps may add duplicates of them after the
    originals. ``near_limits`` sometimes pads the map to cpp-host's pair limits.
    """
    paths = _path_branches(adversarial)
    path = st.binary(min_size=3, max_size=36).map(functools.partial(drawn.choose, paths))
    # method, authority and scheme in one draw (the first of each is where shrinking goes)
    line = st.sampled_from([(m.encode(), a, s) for m in _METHODS for a in _AUTHORITIES for s in (None, b"http", b"https")])
    extra = header_maps(vocabulary=vocabulary, value_vocabulary=value_vocabulary, adversarial=adversarial, max_size=max_extra)
    pad = header_maps_near_limits()

    @st.composite
    def draw_headers(draw: st.DrawFn) -> Pairs:
        method, authority, sch = draw(line)
        out: Pairs = [(b":method", method), (b":path", draw(path)), (b":authority", authority)]
        if sch is not None:
            out.append((b":scheme", sch))
        out += draw(extra)
        if near_limits and draw(st.integers(0, 9)) == 0:
            out += draw(pad)
        return out

    return draw_headers()


@_cached
def response_headers(
    *,
    vocabulary: Iterable[str | bytes] = (),
    value_vocabulary: Iterable[str | bytes] = (),
    adversarial: bool = False,
    max_extra: int = 6,
) -> st.SearchStrategy[Pairs]:
    """Response headers: a numeric ``:status`` (odd codes too when ``adversarial``) plus a drawn map."""
    codes = st.sampled_from([str(c).encode() for c in _STATUSES + (_ODD_STATUSES if adversarial else ())])
    extra = header_maps(vocabulary=vocabulary, value_vocabulary=value_vocabulary, adversarial=adversarial, max_size=max_extra)
    return st.tuples(codes, extra).map(lambda t: [(b":status", t[0]), *t[1]])


@_cached
def trailers(*, vocabulary: Iterable[str | bytes] = (), adversarial: bool = False, max_size: int = _TRAILERS_MAX) -> st.SearchStrategy[Pairs]:
    """Trailers: a small header map, without pseudo-headers unless ``adversarial``."""
    return header_maps(vocabulary=vocabulary, adversarial=adversarial, min_size=0, max_size=max_size)


# -- bodies and messages ---------------------------------------------------------------------------


def _picks(p: bytes, most: int) -> bytes:
    """Between 1 and ``most`` bytes (the first byte says how many), each picking an item."""
    p = p.ljust(1, b"\0")
    n = 1 + p[0] % most
    return p[1 : 1 + n].ljust(n, b"\0")


def _body_branches(vocab: list[bytes], *, adversarial: bool, max_size: int) -> list[drawn.Branch[bytes]]:
    """How a body is decoded from drawn bytes: empty, text, binary, vocabulary words, very long."""
    ascii_text = drawn.text(_VISIBLE + " \n", max_size=max_size)
    branches: list[drawn.Branch[bytes]] = [lambda p: b"", ascii_text, lambda p: p[:max_size]]
    if vocab:
        branches.append(lambda p: b"".join(vocab[x % len(vocab)] for x in _picks(p, 4)))
    if adversarial:
        branches.append(lambda p: drawn.fill(p, [64 * 1024, (1 << 20) + 1], [b"z"]))
    return branches


@_cached
def bodies(*, max_size: int = 128, adversarial: bool = False, vocabulary: Iterable[str | bytes] = ()) -> st.SearchStrategy[bytes]:
    """Body bytes: empty, text, binary, ``vocabulary`` words; ``adversarial`` adds bodies of 64 KiB
    to 1 MiB + 1. Each body is one draw (:mod:`emulator.fuzz.drawn`)."""
    branches = _body_branches(_bytes_vocab(vocabulary), adversarial=adversarial, max_size=max_size)
    return st.binary(max_size=max_size + 1).map(functools.partial(drawn.choose, branches))


def _cut(draw: st.DrawFn, body: bytes, max_chunks: int, empty_chunks: bool) -> list[bytes]:
    """:func:`chunkings`, in one draw: two bytes per cut."""
    raw = draw(st.binary(max_size=2 * (max_chunks - 1)))
    if not body:
        return [b""] if empty_chunks and raw else []
    lo, hi = (0, len(body)) if empty_chunks else (1, len(body) - 1)
    if hi < lo:
        return [body]
    cuts = sorted(lo + drawn.number(raw[i : i + 2], hi - lo + 1) for i in range(0, len(raw), 2))
    if not empty_chunks:
        cuts = sorted(set(cuts))
    points = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(points)]


@st.composite
def chunkings(draw: st.DrawFn, body: bytes, *, max_chunks: int = 6, empty_chunks: bool = True) -> list[bytes]:
    """``body`` cut into data frames at arbitrary boundaries (one draw).

    With ``empty_chunks`` a frame may be empty (an empty frame carrying only ``end_of_stream`` is
    common in Envoy). The frames joined give ``body`` back.
    """
    return _cut(draw, body, max_chunks, empty_chunks)


@_cached
def messages(
    kind: str = "request",
    *,
    vocabulary: Iterable[str | bytes] = (),
    value_vocabulary: Iterable[str | bytes] = (),
    adversarial: bool = False,
    max_body: int = 128,
    max_chunks: int = 6,
) -> st.SearchStrategy[Request | Response]:
    """A :class:`emulator.Request` (``kind="request"``) or :class:`emulator.Response` with body
    frames cut at arbitrary boundaries (empty ones too) and, half the time, trailers (a map of up to
    4 entries, as :func:`trailers` draws by default)."""
    heads = request_headers if kind == "request" else response_headers
    headers = heads(vocabulary=vocabulary, value_vocabulary=value_vocabulary, adversarial=adversarial)
    body = bodies(max_size=max_body, adversarial=adversarial, vocabulary=value_vocabulary)
    trailer_entries = _entries(vocabulary, (), adversarial, None)
    # one draw for "trailers or not, and how many": the lower half (where shrinking goes) means none
    trailer_count = st.integers(0, 2 * _TRAILERS_MAX + 1)
    cls = Request if kind == "request" else Response

    @st.composite
    def draw_message(draw: st.DrawFn) -> Request | Response:
        h = draw(headers)
        frames = _cut(draw, draw(body), max_chunks, True)
        n = draw(trailer_count)
        return cls.from_frames(h, frames, trailer_entries.draw(draw, n - _TRAILERS_MAX - 1) if n > _TRAILERS_MAX else None)

    return draw_message()


@_cached
def exchanges(
    *,
    vocabulary: Iterable[str | bytes] = (),
    value_vocabulary: Iterable[str | bytes] = (),
    adversarial: bool = False,
    max_body: int = 128,
    advance: Sequence[float] = (0, 0, 50, 1000, 5000),
) -> st.SearchStrategy[Exchange]:
    """A whole exchange: request, usually a response, and sometimes time passing in between."""
    req = messages("request", vocabulary=vocabulary, value_vocabulary=value_vocabulary, adversarial=adversarial, max_body=max_body)
    resp = st.one_of(st.none(), messages("response", vocabulary=vocabulary, value_vocabulary=value_vocabulary, adversarial=adversarial, max_body=max_body))
    return st.builds(Exchange, req, resp, st.sampled_from([float(a) for a in advance]))


# -- callouts --------------------------------------------------------------------------------------


@_cached
def callout_responses(*, adversarial: bool = True, pending: bool = True) -> st.SearchStrategy[CalloutResponse]:
    """Answers to HTTP callouts: success, ``fail``, ``timeout``, connect failure, odd statuses and
    (with ``pending``) no answer at all."""
    codes = _STATUSES + ((*_ODD_STATUSES, 0) if adversarial else ())
    respond = st.builds(
        CalloutResponse,
        kind=st.just("respond"),
        status=st.sampled_from(codes),
        headers=header_maps(adversarial=adversarial, max_size=4, pseudo=False),
        body=bodies(max_size=128),
        trailers=st.one_of(st.none(), trailers(max_size=2)),
    )
    kinds = [respond, st.sampled_from([CalloutResponse("fail"), CalloutResponse("timeout"), CalloutResponse("connect_failure")])]
    if pending:
        kinds.append(st.just(CalloutResponse("none")))
    return st.one_of(kinds)


@_cached
def grpc_responses(*, adversarial: bool = True, pending: bool = True) -> st.SearchStrategy[GrpcResponse]:
    """Answers to unary gRPC calls: messages (protobuf-ish or garbage bytes), closes with every
    gRPC status (and odd ones when ``adversarial``), timeouts, and no answer."""
    statuses = list(range(17)) + ([17, 99, 2**31 - 1] if adversarial else [])
    branches = [
        st.builds(GrpcResponse, kind=st.just("message"), message=st.binary(max_size=64)),
        st.builds(GrpcResponse, kind=st.just("close"), status=st.sampled_from(statuses), text=st.text(alphabet=_VISIBLE + " ", max_size=20)),
        st.just(GrpcResponse("timeout")),
    ]
    if pending:
        branches.append(st.just(GrpcResponse("none")))
    return st.one_of(branches)


# -- properties and configurations -----------------------------------------------------------------

_UTC = _dt.timezone.utc


@_cached
def property_values(*, max_leaves: int = 8, scenario_safe: bool = False) -> st.SearchStrategy[Any]:
    """Values :func:`abi.encode_value` serializes: strings, bytes, bools, int64, :class:`UInt64`,
    doubles, durations, aware timestamps, and maps and lists of them.

    ``scenario_safe=True`` keeps to what a scenario file's ``properties`` can spell (strings,
    bytes, integers, booleans, doubles, mappings, lists).
    """
    leaves: list[st.SearchStrategy[Any]] = [
        st.text(max_size=24),
        st.binary(max_size=24),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    ]
    if not scenario_safe:
        leaves += [
            st.integers(0, 2**64 - 1).map(UInt64),
            st.floats(),
            st.timedeltas(min_value=_dt.timedelta(days=-100_000), max_value=_dt.timedelta(days=100_000)),
            st.datetimes(min_value=_dt.datetime(1700, 1, 1), max_value=_dt.datetime(2250, 1, 1), timezones=st.just(_UTC)),
        ]
    base = st.one_of(leaves)
    return st.recursive(
        base,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=4)),
        max_leaves=max_leaves,
    )


@_cached
def property_trees(*, max_size: int = 4, scenario_safe: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """A ``properties=`` tree: top-level names (some of Envoy's own) to :func:`property_values`."""
    names = st.one_of(st.sampled_from(["node", "metadata", "filter_state", "tenant", "x"]), st.text(alphabet=_TOKEN + "_", min_size=1, max_size=12))
    return st.dictionaries(names, property_values(scenario_safe=scenario_safe), max_size=max_size)


@_cached
def json_values(*, max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """JSON documents (finite numbers, string keys)."""
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
    return st.recursive(leaves, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)), max_leaves=max_leaves)


@_cached
def plugin_configs(*, vocabulary: Iterable[str | bytes] = (), base: bytes | str | None = None) -> st.SearchStrategy[bytes]:
    """Plugin configuration bytes: empty, JSON objects and documents, text, binary, vocabulary words,
    and (given ``base``) ``base`` itself and truncations of it."""
    vocab = [v.encode() if isinstance(v, str) else bytes(v) for v in _vocab(vocabulary)]
    branches: list[st.SearchStrategy[bytes]] = []
    if base is not None:
        b = base.encode() if isinstance(base, str) else bytes(base)
        branches += [st.just(b), st.integers(0, len(b)).map(lambda n: b[:n])]
    branches += [
        st.just(b""),
        st.dictionaries(st.text(max_size=10), json_values(max_leaves=4), max_size=4).map(lambda d: json.dumps(d).encode()),
        json_values().map(lambda v: json.dumps(v).encode()),
        st.text(max_size=40).map(str.encode),
        st.binary(max_size=40),
    ]
    if vocab:
        branches.insert(0, st.sampled_from(vocab))
    return st.one_of(branches)


def plugin_configs_from_schema(schema: dict[str, Any] | bool) -> st.SearchStrategy[bytes]:
    """JSON-encoded configurations valid against a JSON Schema (:func:`emulator.fuzz.schema.from_schema`).

    Raises :class:`~emulator.fuzz.schema.UnsupportedSchema` naming a keyword it cannot honour.
    """
    return from_schema(schema).map(lambda v: json.dumps(v, separators=(",", ":")).encode())


# -- host fault plans ------------------------------------------------------------------------------

_CALLBACKS = (
    None, "proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers", "proxy_on_response_body",
    "proxy_on_configure", "proxy_on_vm_start", "proxy_on_tick", "proxy_on_http_call_response", "proxy_on_log",
)  # fmt: skip


@_cached
def fault_rules(functions: Iterable[str] | None = None, *, callbacks: Sequence[str | None] = _CALLBACKS) -> st.SearchStrategy[FaultRule]:
    """One :class:`FaultRule` over ``functions`` (default: every host function with known error
    statuses; pass the module's imports to aim at what the filter calls)."""
    names = sorted(FAULT_STATUSES) if functions is None else sorted(f for f in set(functions) if f in FAULT_STATUSES)
    if not names:
        raise ValueError("fault_rules: none of the functions has known error statuses")
    return st.sampled_from(names).flatmap(
        lambda fn: st.builds(
            FaultRule,
            function=st.just(fn),
            status=st.sampled_from([int(s) for s in FAULT_STATUSES[fn]]),
            nth=st.integers(1, 4),
            count=st.one_of(st.just(1), st.none(), st.integers(2, 3)),
            callback=st.one_of(st.none(), st.sampled_from([c for c in callbacks if c is not None] or [None])),
        )
    )


@_cached
def fault_plans(functions: Iterable[str] | None = None, *, max_rules: int = 3, min_rules: int = 0) -> st.SearchStrategy[FaultPlan]:
    """Host fault plans: up to ``max_rules`` :class:`FaultRule` (shrinks toward no faults)."""
    fns = list(functions) if functions is not None else None
    return st.lists(fault_rules(fns), min_size=min_rules, max_size=max_rules).map(lambda rules: FaultPlan(tuple(rules)))
