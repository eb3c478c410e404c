"""The one-frame recorders and the lazily read trace give the same entries as the generic observer."""

from __future__ import annotations

import gc

import pytest

from emulator import Host
from emulator.observer import HostCallObserver
from emulator.trace import Trace, TraceEntry
from tests.conftest import FIXTURES

REQUEST = [(":method", "GET"), (":path", "/items?page=2"), (":authority", "shop.example"), ("x-deny", "no")]
RESPONSE = [(":status", "200"), ("content-type", "text/plain")]


class _Generic(HostCallObserver):
    """Any subclass takes the generic path (decode, run, record) instead of the recorders."""


def _exchange(host: Host, module: str) -> None:
    plugin = host.load(FIXTURES / module)
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    stream.send_response_headers(RESPONSE, end_of_stream=True)


@pytest.mark.parametrize("module", ["go/headers_go.wasm", "rust/headers_rust.wasm", "c/headers_c.wasm", "assemblyscript/headers_assemblyscript.wasm"])
def test_recorded_entries_equal_the_generic_paths(module):
    fast, slow = Host(), Host()
    slow.observer = _Generic(slow)
    _exchange(fast, module)
    _exchange(slow, module)
    assert fast.trace.pending, "the recorders left their records pending until the trace is read"
    assert len(fast.trace) == len(slow.trace) > 5
    assert list(fast.trace) == list(slow.trace)
    assert fast.trace.to_json() == slow.trace.to_json()
    assert all(type(e) is TraceEntry for e in fast.trace) and not fast.trace.pending
    assert [type(e.status) for e in fast.trace] == [type(e.status) for e in slow.trace]  # a Status stays a Status


def test_pending_records_are_plain_values_the_collector_stops_tracking():
    """A record holding an object (an enum member) would stay tracked, and every collection would
    traverse the whole pending trace: 4 µs a request at 10 host calls."""
    host = Host()
    _exchange(host, "go/headers_go.wasm")
    gc.collect()
    assert host.trace.pending and not any(gc.is_tracked(record) for record in host.trace.pending)


def test_pending_records_keep_their_place_among_appended_entries():
    host = Host()
    _exchange(host, "c/headers_c.wasm")
    before = len(host.trace)
    marker = TraceEntry(0, "marker", {}, 0)
    host.trace.append(marker)  # what the generic path and fault injection do
    _exchange(host, "c/headers_c.wasm")
    entries = list(host.trace)
    assert entries[before] is marker and len(entries) > before + 1
    seqs = [e.seq for e in entries if e is not marker]
    assert seqs == sorted(seqs)


def test_the_limit_keeps_the_most_recent_calls_read_or_not():
    host = Host(trace_limit=4)
    for _ in range(3):
        _exchange(host, "c/headers_c.wasm")
    assert len(host.trace) <= 8
    seqs = [e.seq for e in host.trace]
    assert seqs == sorted(seqs) and seqs[-1] == max(seqs)
    trace = Trace([TraceEntry(i, "f", {}, 0) for i in range(6)])
    trace.pending.extend((i, "proxy_done", 0, 1, None) for i in range(6, 9))
    trace.trim(4)
    assert [e.seq for e in trace] == [5, 6, 7, 8]


def test_clear_and_snapshot_restore_see_pending_records():
    host = Host()
    plugin = host.load(FIXTURES / "c/headers_c.wasm")
    snap = host.snapshot()
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    assert len(host.trace) > 0
    host.restore(snap)
    assert len(host.trace) == snap.lengths[1]  # the calls after the snapshot are gone, pending or not
    host.trace.clear()
    assert len(host.trace) == 0 and not host.trace and host.trace == []


def test_a_trace_with_pending_records_pickles_and_copies_as_its_entries():
    import copy
    import pickle

    host = Host()
    _exchange(host, "c/headers_c.wasm")
    trace = host.trace
    assert trace.pending
    for other in (pickle.loads(pickle.dumps(trace)), copy.copy(trace), copy.deepcopy(trace)):
        assert type(other) is Trace and other == trace and other.pending == [] and len(other) == len(trace)


def test_a_plain_list_in_host_trace_still_gets_whole_entries():
    host = Host()
    host.trace = []  # someone's own list: the recorders append entries to it directly
    _exchange(host, "c/headers_c.wasm")
    assert host.trace and all(type(e) is TraceEntry for e in host.trace)
    assert "proxy_get_header_map_value" in {e.function for e in host.trace} and host.trace[0].args
