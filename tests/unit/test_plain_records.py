"""The records the request path makes (``CallbackRecord``, ``HttpMessage``, ``Cost``) behave as the
dataclasses they were: keyword construction with the same defaults, a field-by-field repr, ``==``
by value and by type, no hash, and pickling. They are plain classes compiled into extension types
in the speed mode; this suite runs in both modes (``make test``, ``make test-pure``)."""

from __future__ import annotations

import copy
import pickle

import pytest

from emulator.costs import Cost, total
from emulator.http.types import CallbackRecord, HttpMessage


def test_a_callback_record_keeps_the_dataclass_constructor_and_defaults() -> None:
    record = CallbackRecord("proxy_on_log", (2,), None, None, seq=7)
    assert (record.name, record.args, record.raw, record.action, record.notes, record.seq, record.cost) == ("proxy_on_log", (2,), None, None, [], 7, None)
    other = CallbackRecord("proxy_on_log", (2,), None, None)
    other.notes.append("x")
    assert record.notes == [], "each record gets its own notes list"
    full = CallbackRecord(name="a", args=(1, 2), raw=0, action="continue", notes=["n"], seq=3, cost="c")
    assert full.cost == "c" and full.notes == ["n"]


def test_a_callback_record_reads_like_its_dataclass() -> None:
    record = CallbackRecord("proxy_on_request_headers", (2, 5, 1), 0, "continue", ["a note"], 4)
    assert repr(record) == "CallbackRecord(name='proxy_on_request_headers', args=(2, 5, 1), raw=0, action='continue', notes=['a note'], seq=4, cost=None)"


def test_records_compare_by_value_and_type_and_have_no_hash() -> None:
    a = CallbackRecord("f", (1,), 0, None, [], 1)
    assert a == CallbackRecord("f", (1,), 0, None, [], 1)
    assert a != CallbackRecord("f", (1,), 0, None, [], 2)
    assert a != ("f", (1,), 0, None, [], 1)
    assert HttpMessage() == HttpMessage() and HttpMessage() != HttpMessage(end_stream=True)
    assert Cost(1) == Cost(1) and Cost(1) != Cost(2) and Cost() != (0, 0, 0, 0, 0, 0)
    for value in (a, HttpMessage(), Cost()):
        with pytest.raises(TypeError, match="unhashable"):
            hash(value)


def test_a_message_starts_empty_with_its_own_body_and_chunks() -> None:
    m, n = HttpMessage(), HttpMessage()
    m.body += b"x"
    m.body_chunks.append(b"x")
    assert n.body == bytearray() and n.body_chunks == []
    assert repr(n) == "HttpMessage(headers=None, body=bytearray(b''), trailers=None, end_stream=False, reset=False, body_chunks=[])"
    assert HttpMessage(headers=[(b"a", b"1")]).header("A") == b"1"


def test_records_survive_pickle_and_deepcopy() -> None:
    record = CallbackRecord("f", (1,), 0, "continue", ["n"], 9)
    message = HttpMessage(headers=[(b":status", b"200")], body=bytearray(b"hi"), end_stream=True)
    for value in (record, message, Cost(5, 1, 2, 3, 4, 5)):
        assert pickle.loads(pickle.dumps(value)) == value
        clone = copy.deepcopy(value)
        assert clone == value and clone is not value


def test_a_cost_adds_up_field_by_field_and_reads_like_its_dataclass() -> None:
    a = Cost(10, 1, 2, 3, 4, 5)
    assert a + Cost(1, 1, 1, 1, 1, 1) == Cost(11, 2, 3, 4, 5, 6)
    assert (a + Cost(instructions=None)).instructions is None, "an engine that cannot count instructions makes the sum unknown"
    assert total([a, None, a]) == Cost(20, 2, 4, 6, 8, 10)
    assert a.to_json() == {"instructions": 10, "host_calls": 1, "bytes_to_guest": 2, "bytes_from_guest": 3, "alloc_calls": 4, "alloc_bytes": 5}
    assert repr(Cost(host_calls=2)) == "Cost(instructions=0, host_calls=2, bytes_to_guest=0, bytes_from_guest=0, alloc_calls=0, alloc_bytes=0)"


def test_equality_compares_fields_as_a_dataclass_does() -> None:
    """A dataclass compares the tuples of its fields: an identical NaN counts as equal."""
    nan = float("nan")
    assert Cost(nan) == Cost(nan) and Cost(nan) != Cost(float("nan"))
    record = CallbackRecord("f", (1,), None, None, [], 1, nan)
    assert record == CallbackRecord("f", (1,), None, None, [], 1, nan)
