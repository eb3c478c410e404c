"""The request path makes none of Python's slow lookups.

In Python 3.11 a member read as an Enum class attribute (``Status.Ok``) costs about 50 ns,
ten times a module global: ``EnumType.__getattr__`` sends every lookup on an enum class
through the slow hook. Calling an enum class (``Status(0)``) and ``isinstance`` against an ABC
are slow in the same way. A request runs a few dozen host calls and callbacks, so the hot
modules bind the members they read once (``_OK = Status.Ok``). This test counts those lookups
during a request on each SDK fixture, with the trace on and off, so that one added in the
hot path fails here instead of showing up later as a slower benchmark.

Counting patches ``EnumType`` and ``ABCMeta`` for the request only, which works in the
compiled mode too: its attribute reads go through the same type slots.
"""

from __future__ import annotations

import abc
import enum
import gc
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emulator import Host

_ENUM_TYPE = getattr(enum, "EnumType", None) or enum.EnumMeta  # EnumMeta before Python 3.11

REQUEST = [(":method", "GET"), (":path", "/items?page=2"), (":authority", "shop.example"), (":scheme", "http"), ("user-agent", "t")]
RESPONSE = [(":status", "200"), ("content-type", "text/plain")]


def _caller() -> str:
    frame = sys._getframe(2)
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


@contextmanager
def counting_slow_lookups() -> Iterator[Counter[str]]:
    """Count enum member reads as class attributes, enum calls and ABC ``isinstance`` checks,
    each named with what was looked up and the Python line that did it (the test's own line
    when compiled code did). Only this thread's are counted: an xdist worker's own thread reads
    its enums meanwhile."""
    seen: Counter[str] = Counter()
    enum_call, abc_check = _ENUM_TYPE.__call__, abc.ABCMeta.__instancecheck__
    mine = threading.get_ident()

    def member_read(cls: type, name: str) -> object:
        if not name.startswith("_") and threading.get_ident() == mine:
            seen[f"{cls.__name__}.{name} at {_caller()}"] += 1
        return type.__getattribute__(cls, name)

    def call(cls: type, *args: object, **kwargs: object) -> object:
        if threading.get_ident() == mine:
            seen[f"{cls.__name__}(...) at {_caller()}"] += 1
        return enum_call(cls, *args, **kwargs)

    def check(cls: type, instance: object) -> bool:
        if threading.get_ident() == mine:
            seen[f"isinstance(..., {cls.__name__}) at {_caller()}"] += 1
        return abc_check(cls, instance)

    _ENUM_TYPE.__getattribute__ = member_read  # type: ignore[method-assign,assignment]
    _ENUM_TYPE.__call__ = call  # type: ignore[method-assign,assignment]
    abc.ABCMeta.__instancecheck__ = check  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        del _ENUM_TYPE.__getattribute__
        _ENUM_TYPE.__call__ = enum_call  # type: ignore[method-assign]
        abc.ABCMeta.__instancecheck__ = abc_check  # type: ignore[method-assign]


def _headers_only(plugin):
    """The peer benchmark's request."""
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    stream.send_response_headers(RESPONSE, end_of_stream=True)
    return stream


def _with_bodies(plugin):
    """A request body in two chunks, then a response body and trailers."""
    stream = plugin.http_stream()
    stream.send_request_headers([*REQUEST, ("content-length", "8")])
    stream.send_request_body(b"abcd")
    stream.send_request_body(b"efgh", end_of_stream=True)
    stream.send_response_headers(RESPONSE)
    stream.send_response_body(b"hello")
    stream.send_response_trailers([("grpc-status", "0")])
    return stream


def test_the_counter_sees_each_kind_of_slow_lookup() -> None:
    from abi import Status

    with counting_slow_lookups() as seen:
        Status.Ok  # noqa: B018 - the lookup is the point
        Status(0)
        isinstance({}, abc.ABC)
    assert sorted(k.split(" at ")[0] for k in seen) == ["Status(...)", "Status.Ok", "isinstance(..., ABC)"]
    assert "__getattribute__" not in vars(_ENUM_TYPE)  # restored
    assert _ENUM_TYPE.__call__ is not None and Status(0) is Status.Ok


@pytest.mark.parametrize("request_", [_headers_only, _with_bodies], ids=["headers", "bodies"])
@pytest.mark.parametrize("trace", [False, True], ids=["lean", "trace"])
def test_a_request_makes_no_slow_lookup(sdk_fixture: tuple[Path, str, str], trace: bool, request_) -> None:
    path, _tag, _abi = sdk_fixture
    host = Host(trace=trace)
    plugin = host.load(path)
    request_(plugin)  # the first request may set things up
    gc.collect()  # and no finalizer of an earlier test's garbage may run inside the count
    gc.disable()
    try:
        with counting_slow_lookups() as seen:
            stream = request_(plugin)
    finally:
        gc.enable()
    assert [c.name for c in stream.callbacks][-1] == "proxy_on_delete"
    assert dict(seen) == {}
