"""A stream keeps every attribute settable in the speed mode, without paying for an empty dict.

A compiled class with a ``__dict__`` makes a new, empty dict for each instance, and each ``cpdef``
method first checks, by that dict's version, whether the instance overrides it: on a new stream
that check always missed. The speed mode drops a new stream's empty dict
(``emulator.untracked.shed_empty_dict``); Python makes it again when an attribute is set.
"""

from __future__ import annotations

import ctypes

import pytest

from emulator import Host
from emulator.speedups import is_compiled
from tests.conftest import FIXTURES

COMPILED = is_compiled("emulator.http.stream")
REQUEST = [(":method", "GET"), (":path", "/"), (":authority", "example.com")]


def _dict_slot(obj: object) -> object:
    """What the instance's dict slot holds (None when empty), read without making the dict."""
    offset = type(obj).__dictoffset__
    assert offset > 0
    address = ctypes.c_void_p.from_address(id(obj) + offset).value
    return None if address is None else ctypes.cast(address, ctypes.py_object).value


def test_any_attribute_stays_settable_on_a_stream_and_on_its_dict():
    plugin = Host().load(FIXTURES / "go/headers_go.wasm")
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    stream.my_tag = "kept"  # an attribute the class does not declare
    assert stream.my_tag == "kept" and vars(stream)["my_tag"] == "kept"
    fresh = plugin.http_stream()
    assert "my_tag" not in vars(fresh) and not hasattr(fresh, "my_tag")
    fresh.__dict__["other"] = 1
    assert fresh.other == 1


@pytest.mark.skipif(not COMPILED, reason="a pure class's dict is Python's own business")
def test_a_new_stream_has_no_dict_until_one_is_needed():
    plugin = Host().load(FIXTURES / "go/headers_go.wasm")
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    stream.send_response_headers([(":status", "200")], end_of_stream=True)
    assert _dict_slot(stream) is None, "the request ran without making the stream a dict"
    stream.late = 1
    assert _dict_slot(stream) == {"late": 1}


@pytest.mark.skipif(not COMPILED, reason="the helper is part of the speed mode")
def test_the_helper_drops_only_an_empty_dict():
    from emulator.untracked import shed_empty_dict

    plugin = Host().load(FIXTURES / "go/headers_go.wasm")
    stream = plugin.http_stream()
    assert vars(stream) == {} and _dict_slot(stream) == {}  # reading __dict__ made it
    assert shed_empty_dict(stream) is True and _dict_slot(stream) is None
    stream.x = 1
    assert shed_empty_dict(stream) is False and stream.x == 1  # a dict with something in it stays

    class Plain:  # Python's own classes keep their dicts elsewhere: left alone
        pass

    empty = Plain()
    vars(empty)
    assert shed_empty_dict(empty) is False and shed_empty_dict(1) is False and shed_empty_dict(object()) is False


def test_a_streams_lists_are_made_when_first_read_and_then_kept():
    plugin = Host().load(FIXTURES / "go/headers_go.wasm")
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    made = [stream.lints, stream.notes, stream.filter_state, stream.http_calls, stream.grpc_calls]
    assert made == [[], [], {}, [], []]
    stream.lints.append("a lint")
    stream.notes.append("a note")
    stream.filter_state[b"wasm.k"] = b"v"
    stream.http_calls.append("call")
    stream.grpc_calls.append("grpc")
    assert [stream.lints, stream.notes, stream.filter_state, stream.http_calls, stream.grpc_calls] == [
        ["a lint"],
        ["a note"],
        {b"wasm.k": b"v"},
        ["call"],
        ["grpc"],
    ]
    assert all(now is then for now, then in zip([stream.lints, stream.notes, stream.filter_state, stream.http_calls, stream.grpc_calls], made, strict=True))
    assert plugin.http_stream().notes == []  # another stream's are its own
