"""The one-frame recorders and the lazily read trace give the same entries as the generic observer."""

from __future__ import annotations

import gc
import itertools
import struct
import sys
from collections import Counter

import pytest

from abi import HOST_FUNCTIONS
from abi.roles import COPY_OUT, IN, OUT, SIZE, SIZE_OUT
from emulator import Host
from emulator.engines import accelerator, wasmtime_engine
from emulator.observer import HostCallObserver
from emulator.trace import PYTHON_RECORDERS, RECORDERS, Trace, TraceEntry, TraceLog, _skip
from tests.conftest import FIXTURES
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness, open_stream

# Where the speed mode's C accelerator is built, RECORDERS are its TraceRecorders; the generated
# Python recorders stay the reference. Every test here runs with each kind the process has; the C
# recorder also on a guest memory it does not know (the ctypes path's, as wasmer's), which it
# reads through the GuestMemory methods.
KINDS = ["c", "c-generic-memory", "python"] if type(RECORDERS["proxy_log"]).__name__ == "TraceRecorder" else ["python"]


@pytest.fixture(autouse=True, params=KINDS)
def recorders(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(HostCallObserver, "recorders", PYTHON_RECORDERS)
    if request.param == "c-generic-memory":
        monkeypatch.setattr(wasmtime_engine, "_crossing", None)
    return request.param.split("-")[0]


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


def _interleaved(host: Host) -> None:
    """Two streams of each fixture, their calls interleaved: the context changes from call to call,
    and one import returns NotFound and Ok in turn (what the recorders cache by identity)."""
    for module in ("go/headers_go.wasm", "c/headers_c.wasm", "rust/headers_rust.wasm"):
        plugin = host.load(FIXTURES / module)
        a, b = plugin.http_stream(), plugin.http_stream()
        a.send_request_headers([(":method", "GET"), (":path", "/x"), (":authority", "a")], end_of_stream=True)
        b.send_request_headers([(":method", "POST"), (":path", "/y"), (":authority", "b"), ("x-deny", "yes")], end_of_stream=True)
        a.send_response_headers([(":status", "200")], end_of_stream=True)
        b.send_response_headers([(":status", "500")], end_of_stream=True)


def test_interleaved_streams_and_changing_statuses_are_recorded_as_the_generic_path_records_them():
    fast, slow = Host(), Host()
    slow.observer = _Generic(slow)
    _interleaved(fast)
    _interleaved(slow)
    entries = list(fast.trace)
    assert entries == list(slow.trace) and fast.trace.to_json() == slow.trace.to_json()
    statuses = [int(e.status) for e in entries if e.function == "proxy_get_header_map_value"]
    assert {0, 1} <= set(statuses) and statuses != sorted(statuses), "Ok and NotFound in turn"
    contexts = [e.context_id for e in entries]
    assert len(set(contexts)) >= 3 and sum(x != y for x, y in itertools.pairwise(contexts)) >= 10


@pytest.mark.parametrize("module", ["go_features/features_go.wasm", "rust_features/features_rust.wasm"])
def test_calls_on_an_effective_context_are_recorded_as_the_generic_path_records_them(module):
    """An HTTP callout's answer runs on the root context; the SDK then sets the stream as the
    effective context for the calls that resume it (the recorders read Vm._active's rule)."""

    def run(host: Host) -> tuple[int, int]:
        plugin = host.add_plugin(host.create_vm(FIXTURES / module), root_id="auth")
        stream = plugin.http_stream()
        stream.send_request_headers([(":method", "GET"), (":path", "/secret"), (":authority", "app"), ("authorization", "t")], end_of_stream=True)
        (call,) = host.http_calls.pending()
        call.respond(200)
        assert stream.upstream_request.headers is not None
        return plugin.root_context_id, stream.context_id

    fast, slow = Host(), Host()
    slow.observer = _Generic(slow)
    root, stream_id = run(fast)
    run(slow)
    entries = list(fast.trace)
    assert entries == list(slow.trace)
    answer = [e for e in entries if e.callback == "proxy_on_http_call_response"]  # run on the root context
    assert answer[0].function == "proxy_set_effective_context" and root != stream_id
    assert len(answer) > 2 and all(e.context_id == stream_id for e in answer), "the calls after it act on the stream"


@pytest.mark.parametrize("module", ["go/headers_go.wasm", "rust/headers_rust.wasm"])
def test_the_counts_equal_the_generic_paths_when_read_and_across_observers(module):
    """The C recorders tally their calls in C; the observer's ``counts`` shows them when read, and
    a replaced observer keeps what it counted."""
    fast, slow = Host(), Host()
    slow.observer = _Generic(slow)
    _exchange(fast, module)
    _exchange(slow, module)
    first = fast.observer
    fast.observer = HostCallObserver(fast)  # replaced before its counts were ever read
    _exchange(fast, module)
    assert first.counts == slow.observer.counts and first.counts["proxy_get_header_map_value"] >= 3
    assert fast.observer.counts == slow.observer.counts
    names = {e.function for e in fast.trace}
    assert set(fast.observer.counts) == names, "every import the trace holds is counted, and only those"
    fresh: Counter[str] = Counter()
    fast.observer.counts = fresh  # counting starts again in the Counter given
    _exchange(fast, module)
    assert fast.observer.counts is fresh and fresh == slow.observer.counts


def test_a_subclass_may_set_its_counts_before_the_observer_is_set_up():
    class Early(HostCallObserver):
        def __init__(self, host: Host) -> None:
            self.counts = Counter({"earlier": 1})  # before the base class's __init__: no host yet
            kept = self.counts
            super().__init__(host)
            assert kept["earlier"] == 1

    host = Host()
    host.observer = Early(host)
    _exchange(host, "go/headers_go.wasm")
    assert host.observer.counts["proxy_get_header_map_value"] >= 3


def test_the_recorders_in_use_are_the_kind_asked_for(recorders, request):
    host = Host()
    _exchange(host, "c/headers_c.wasm")
    used = type(host.observer.recorders["proxy_get_header_map_value"]).__name__
    assert used == ("TraceRecorder" if recorders == "c" else "function")
    memory = type(host.plugins[0].vm.memory).__name__
    generic = request.node.callspec.params["recorders"] == "c-generic-memory" or "c" not in KINDS
    assert (memory != "LinearMemory") == generic


BAD = 0xFFFF_FFF0  # past the end of any test module's memory
OUT_AREA = 512  # each out-parameter gets 8 bytes of its own from here


def _arguments(h: Harness, name: str, key: tuple[int, int]) -> list[list[int]]:
    """Good arguments for ``name`` by role (input ranges point at ``key``, out-parameters at
    scratch), then the same with each pointer in turn made bad."""
    base = []
    for i, p in enumerate(HOST_FUNCTIONS[name].parameters):
        base.append(key[0] if p.role == IN else key[1] if p.role == SIZE else OUT_AREA + 8 * i if p.role in (OUT, COPY_OUT, SIZE_OUT) else 0)
    pointers = [i for i, p in enumerate(HOST_FUNCTIONS[name].parameters) if p.role in (IN, OUT, COPY_OUT, SIZE_OUT)]
    return [base] + [[BAD if j == i else v for j, v in enumerate(base)] for i in pointers]


def _sweep(observer: type[HostCallObserver] | None) -> list[TraceEntry]:
    """Every env import of hostcalls.wasm, in the root context and in a stream's with its maps
    open, with good pointers (data comes back for ``x-key``) and bad ones.

    A call that traps fails the VM (as in Envoy); the sweep goes on in a fresh one."""
    entries: list[TraceEntry] = []
    h = None
    for key in ("x-key", "no-such-key"):
        for in_stream in (False, True):
            for name in sorted(HOST_FUNCTIONS, key=lambda n: "_get_" not in n):  # reads before writes
                for variant in range(len(HOST_FUNCTIONS[name].parameters) + 1):
                    if h is None or h.plugin.vm.failed:
                        if h is not None:
                            entries += h.host.trace
                        h = Harness("wasmtime", host_properties={"x-key": "property value"})
                        if observer is not None:
                            h.host.observer = observer(h.host)
                        stream = open_stream(h, request={"x-key": "request value"}, response={"x-key": "response value"})
                        ptr, size = h.put(key)
                    if name in ("proxy_done", "proxy_call_foreign_function") or not h.plugin.vm.has_export(f"t_{name}"):
                        break
                    calls = _arguments(h, name, (ptr, size))
                    if variant >= len(calls):
                        break
                    try:
                        h.call(name, *calls[variant], context_id=stream.id if in_stream else None)
                    except Exception:
                        pass  # a call that traps or is refused: both paths record it alike, or not at all
    return entries + list(h.host.trace)


def test_bad_pointers_are_recorded_as_the_generic_path_records_them():
    """The recorders' fallbacks (an input range or an out-pointer that is not in memory) give the
    entries of the generic observer, for every import of the ABI table."""
    fast, slow = _sweep(None), _sweep(_Generic)
    assert len(fast) == len(slow) and len({e.function for e in fast}) > 25
    assert fast == slow
    assert [e.to_json() for e in fast] == [e.to_json() for e in slow]
    assert any("<invalid pointer" in str(e.args) for e in fast)
    assert any(e.status_name == "InvalidMemoryAccess" for e in fast)
    returned = {e.function for e in fast if e.status_name == "Ok" and any(e.results.values())}
    assert {"proxy_get_property", "proxy_get_header_map_value", "proxy_get_header_map_pairs", "proxy_get_current_time_nanoseconds"} <= returned


def _rotating_statuses(observer: type[HostCallObserver] | None) -> list[TraceEntry]:
    """One import answering Ok, NotFound and BadArgument in changing orders: two in turn, then a
    third between them (the C recorder keeps the last two statuses by identity)."""
    h = Harness("wasmtime")
    if observer is not None:
        h.host.observer = observer(h.host)
    stream = open_stream(h, request={"x-key": "request value"})
    present, missing = h.put("x-key"), h.put("no-such-key")
    for map_type, (ptr, size) in [(0, present), (0, missing)] * 3 + [(99, present), (0, present), (99, missing), (0, missing), (99, present), (0, present)]:
        h.call("proxy_get_header_map_value", map_type, ptr, size, RET_PTR, RET_LEN, context_id=stream.id)
    return list(h.host.trace)


def test_an_import_whose_status_changes_is_recorded_as_the_generic_path_records_it():
    fast, slow = _rotating_statuses(None), _rotating_statuses(_Generic)
    assert fast == slow and [e.to_json() for e in fast] == [e.to_json() for e in slow]
    assert [int(e.status) for e in fast] == [0, 1] * 3 + [2, 0, 2, 1, 2, 0]


def _recorded(trace: bool, exchanges: int) -> tuple[int, int]:
    """Allocated blocks a host gains over ``exchanges`` more exchanges, and its host calls."""
    host = Host(trace=trace)
    plugin = host.load(FIXTURES / "c/headers_c.wasm")

    def exchange():
        stream = plugin.http_stream()
        stream.send_request_headers(REQUEST, end_of_stream=True)
        stream.send_response_headers(RESPONSE, end_of_stream=True)

    for _ in range(20):
        exchange()
    host.logs.clear()
    calls = plugin.vm.host_calls
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(exchanges):
        exchange()
    host.logs.clear()
    gc.collect()
    return sys.getallocatedblocks() - before, plugin.vm.host_calls - calls


def test_a_kept_record_is_packed_bytes_not_an_object_per_call(recorders):
    """A record kept as a tuple (and the bytes it read) was an allocation per host call that lived
    until the trace was trimmed, and freeing them cost more than recording (1.5 µs a request)."""
    host = Host()
    _exchange(host, "go/headers_go.wasm")
    log = host.trace.pending
    assert log.count > 5 and log.objects == [] and log.size >= 32 * log.count
    grown, calls = _recorded(True, 200)
    lean, _ = _recorded(False, 200)
    assert calls > 1000
    assert grown - lean < calls / 100, f"{grown - lean} blocks kept for {calls} recorded host calls"


def test_the_c_recorder_packs_the_bytes_the_python_one_does(recorders):
    if recorders != "c":
        pytest.skip("the C recorder is compared once, with the Python recorder it mirrors")
    mine, reference = Host(), Host()
    reference.observer.recorders = PYTHON_RECORDERS
    for host in (mine, reference):
        _exchange(host, "go/headers_go.wasm")
        _exchange(host, "rust/headers_rust.wasm")
    a, b = mine.trace.pending, reference.trace.pending
    assert a.count == b.count > 10 and a.size == b.size
    assert a.data[: a.size] == b.data[: b.size] and a.callbacks == b.callbacks


_LOG_AT = list(HOST_FUNCTIONS).index("proxy_log")  # a record numbers its import by the ABI table's order


def test_a_packed_record_is_laid_out_as_documented():
    log = TraceLog()
    log.append((7, "proxy_log", 0, 2, "proxy_on_request_headers", 2, 1024, 5, b"hello"))
    head = struct.pack("<IHHqqq", 32 + 3 * 8 + 4 + 5, _LOG_AT, 1, 7, 0, 2)
    assert log.data[: log.size] == head + struct.pack("<qqqI", 2, 1024, 5, 5) + b"hello"
    assert log.callbacks == [None, "proxy_on_request_headers"] and log.count == 1


def test_records_the_layout_does_not_take_are_kept_whole_in_their_place():
    log = TraceLog()
    records = [
        (1, "proxy_log", 0, 2, None, 2, 1024, 5, b"hello"),
        (2, "proxy_log", 0, 2, None, 2, 9999, 5, "<invalid pointer 9999+5>"),  # an unreadable range's text
        (3, "proxy_log", True, 2, None, 2, 1024, 5, b"hello"),  # a status that is not an int
        (4, "proxy_log", 0, 2, 17, 2, 1024, 5, b"hello"),  # a callback that is not a name
        (5, "proxy_log", 0, 2, "cb", 2, 2**64, 5, b"hello"),  # an argument out of range
        (6, "no_such_import", 0, 2, None),
        (7, "proxy_log", 0, 2, "cb", 2, 1024, 0, b""),
    ]
    for record in records:
        log.append(record)
    assert log.count == 7 and log.objects == records[1:6]
    copy = TraceLog()
    for record in records:
        copy.append(record)
    copy.drop(3)  # the packed first record and two whole ones
    assert copy.count == 4 and copy.objects == records[3:6]
    assert copy.drain() == records[3:] and copy.count == copy.size == 0
    assert log.drain() == records and not log and log.objects == []


def test_dropping_records_keeps_the_newest_and_reuses_the_room():
    log = TraceLog()
    records = [(i, "proxy_log", 0, 2, None, 2, 1024, i % 7, b"x" * (i % 7) if i % 5 else "whole") for i in range(60)]
    for record in records[:40]:
        log.append(record)
    room = len(log.data)
    log.drop(25)
    assert log.count == 15 and len(log.data) == room  # the rest moved to the front: the room stays
    for record in records[40:]:
        log.append(record)
    assert len(log.data) == room  # the records after the drop fit in the room the dropped ones left
    assert log.drain() == records[25:]


def test_the_c_walk_of_a_log_is_the_python_one():
    c = accelerator()
    if c is None:
        pytest.skip("no C accelerator in this mode")
    log = TraceLog()
    for i in range(50):
        log.append((i, "proxy_log", 0, 2, None, 2, 1024, i % 7, b"x" * (i % 7) if i % 5 else "whole"))
    for n in (0, 1, 10, 49, 50):
        assert c.skip_records(log.data, n) == _skip(log.data, n)


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
    for i in range(6, 9):
        trace.pending.append((i, "proxy_done", 0, 1, None))
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
        assert type(other) is Trace and other == trace and not other.pending and len(other) == len(trace)


def test_a_plain_list_in_host_trace_still_gets_whole_entries():
    host = Host()
    host.trace = []  # someone's own list: the recorders append entries to it directly
    _exchange(host, "c/headers_c.wasm")
    assert host.trace and all(type(e) is TraceEntry for e in host.trace)
    assert "proxy_get_header_map_value" in {e.function for e in host.trace} and host.trace[0].args
