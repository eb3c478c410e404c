"""Log records cost no garbage-collection time in the speed mode (``emulator.untracked``).

A host keeps every log line. Python's collector untracks a plain tuple of plain values by
itself but never a tuple subclass such as :class:`LogRecord`, so without help a long run's logs
pile up in the oldest generation and every full collection walks them all. The speed mode's C
helper untracks each record as it is made. Pure Python has no way to, and keeps them tracked.
"""

from __future__ import annotations

import gc

import pytest

from emulator import Host, LogRecord
from emulator import logs as logs_module
from emulator.speedups import is_compiled
from tests.conftest import FIXTURES

COMPILED = is_compiled("emulator.logs")


def test_a_record_of_plain_values_is_untracked_in_the_speed_mode() -> None:
    record = LogRecord(2, "hello", 7, "root", "vm", "plugin")
    assert gc.is_tracked(record) is (not COMPILED)
    assert record.message == "hello" and record.context_id == 7 and record == (2, "hello", 7, "root", "vm", "plugin", "proxy_log")


def test_a_record_holding_a_container_stays_tracked() -> None:
    """The collector's own rule: a tuple whose item is tracked could be in a cycle."""
    assert gc.is_tracked(LogRecord(2, ["not", "a", "string"]))


@pytest.mark.skipif(not COMPILED, reason="the helper is part of the speed mode; pure Python keeps records tracked")
def test_the_helper_keeps_anything_but_a_tuple_of_plain_values_as_it_was() -> None:
    untracked = logs_module.untracked
    items = [1]
    assert untracked(items) is items and gc.is_tracked(items)
    nested = (1, (2, [3]))
    assert untracked(nested) is nested and gc.is_tracked(nested)
    plain = tuple([1, "x", b"y", None])  # built at run time: a constant tuple is never tracked
    assert gc.is_tracked(plain)
    assert untracked(plain) is plain and not gc.is_tracked(plain)


def test_a_filters_logs_leave_no_tracked_object_behind() -> None:
    host = Host(trace=False)
    plugin = host.load(FIXTURES / "go/headers_go.wasm")
    before = len(host.logs)
    for _ in range(50):
        stream = plugin.http_stream()
        stream.send_request_headers([(":method", "GET"), (":path", "/a"), (":authority", "h")], end_of_stream=True)
        stream.send_response_headers([(":status", "200")], end_of_stream=True)
    kept = host.logs[before:]
    assert len(kept) == 100  # the fixture logs twice a request
    assert sum(gc.is_tracked(r) for r in kept) == (0 if COMPILED else 100)


def test_a_log_line_is_the_record_its_fields_make() -> None:
    """``log_line`` (one C call in the speed mode) gives what ``LogRecord(...)`` gives."""
    from abi import LogLevel

    for level in LogLevel:
        line = logs_module.log_line(level, "msg", 3, "root", "vm", "plugin", "proxy_log")
        record = LogRecord(level, "msg", 3, "root", "vm", "plugin", "proxy_log")
        assert type(line) is LogRecord and line == record and line.level is level
        assert type(line[0]) is int, "the level is kept as its number"
        assert gc.is_tracked(line) is gc.is_tracked(record)
    held = logs_module.log_line(2, ["a", "list"], None, "", "", "", "stdout")
    assert gc.is_tracked(held) and held.message == ["a", "list"]


@pytest.mark.skipif(not COMPILED, reason="the C maker is part of the speed mode")
def test_the_c_maker_makes_only_tuple_subclasses() -> None:
    with pytest.raises(TypeError, match="tuple subclasses"):
        logs_module.new_record(list, 2, "m", None, "", "", "", "host")
    with pytest.raises(TypeError):
        logs_module.new_record(LogRecord, "not a level", "m", None, "", "", "", "host")
