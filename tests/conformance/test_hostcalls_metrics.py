"""Metrics: id allocation, Envoy's per-type increment/record/get rules, the Python view (abi-spec.md §1.12)."""

from __future__ import annotations

import pytest

from abi import MetricType, Status
from tests.conftest import wat_module
from tests.hostcall_harness import Harness

ID = 16
VALUE = 24
BAD = 2**31
U64 = 2**64


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine, vm_id="a")


def define(h, metric_type, name):
    h.mem.write(ID, b"\xaa" * 4)
    status = h.call("proxy_define_metric", metric_type, *h.put(name), ID)
    return status, h.mem.u32(ID)


def get(h, metric_id):
    h.mem.write(VALUE, b"\xaa" * 8)
    status = h.call("proxy_get_metric", metric_id, VALUE)
    return status, h.mem.u64(VALUE) if status == Status.Ok else None


def test_define_allocates_typed_ids(h):
    assert define(h, MetricType.COUNTER, "c1") == (Status.Ok, 4)
    assert define(h, MetricType.GAUGE, "g1") == (Status.Ok, 5)
    assert define(h, MetricType.HISTOGRAM, "h1") == (Status.Ok, 6)
    assert define(h, MetricType.COUNTER, "c2") == (Status.Ok, 8)
    assert define(h, MetricType.GAUGE, "g2") == (Status.Ok, 9)
    assert define(h, MetricType.HISTOGRAM, "h2") == (Status.Ok, 10)
    assert define(h, MetricType.COUNTER, "c3") == (Status.Ok, 12)
    assert h.host.metrics.ids(h.vm) == {4: "c1", 5: "g1", 6: "h1", 8: "c2", 9: "g2", 10: "h2", 12: "c3"}


@pytest.mark.parametrize("bad_type", [3, 4, 0xFFFFFFFF])
def test_define_with_an_unknown_type_is_bad_argument(h, bad_type):
    assert define(h, bad_type, "x") == (Status.BadArgument, 0xAAAAAAAA)  # no id written
    assert h.host.metrics.all() == {}


def test_redefining_a_name_gives_a_new_id_for_the_same_stat(h):
    assert define(h, MetricType.COUNTER, "requests") == (Status.Ok, 4)
    assert define(h, MetricType.COUNTER, "requests") == (Status.Ok, 8)
    assert h.call("proxy_increment_metric", 4, 2) == Status.Ok
    assert h.call("proxy_increment_metric", 8, 3) == Status.Ok
    assert get(h, 4) == get(h, 8) == (Status.Ok, 5)
    assert h.host.metrics.get("requests") == 5


def test_same_name_with_different_types_are_different_stats(h):
    define(h, MetricType.COUNTER, "x")
    define(h, MetricType.GAUGE, "x")
    h.call("proxy_increment_metric", 4, 2)
    h.call("proxy_record_metric", 5, 40)
    assert h.host.metrics.get("x") == 2  # counter first
    assert h.host.metrics.metric("x", MetricType.GAUGE).value == 40
    assert h.host.metrics.all() == {"x": {"type": "counter", "value": 2}, "x (gauge)": {"type": "gauge", "value": 40}}


def test_increment_counter(h):
    define(h, MetricType.COUNTER, "c")
    assert h.call("proxy_increment_metric", 4, 5) == Status.Ok
    assert h.call("proxy_increment_metric", 4, 0) == Status.BadArgument
    assert h.call("proxy_increment_metric", 4, -1) == Status.BadArgument
    assert h.call("proxy_increment_metric", 4, -(2**63)) == Status.BadArgument
    assert get(h, 4) == (Status.Ok, 5)
    assert h.call("proxy_increment_metric", 8, 1) == Status.NotFound  # counter-typed, never defined
    assert h.call("proxy_increment_metric", 8, -1) == Status.NotFound  # lookup before the offset check


def test_increment_gauge(h):
    define(h, MetricType.GAUGE, "g")
    assert h.call("proxy_increment_metric", 5, 10) == Status.Ok
    assert h.call("proxy_increment_metric", 5, -3) == Status.Ok
    assert h.call("proxy_increment_metric", 5, 0) == Status.Ok  # no change
    assert get(h, 5) == (Status.Ok, 7)
    assert h.call("proxy_increment_metric", 5, -8) == Status.Ok  # uint64 in Envoy: wraps
    assert get(h, 5) == (Status.Ok, U64 - 1)
    assert h.host.metrics.get("g") == U64 - 1
    assert h.call("proxy_increment_metric", 9, 1) == Status.NotFound  # gauge-typed, never defined


def test_increment_histogram_and_bad_type_bits(h):
    define(h, MetricType.HISTOGRAM, "h")
    assert h.call("proxy_increment_metric", 6, 1) == Status.BadArgument  # a defined histogram
    assert h.call("proxy_increment_metric", 10, 1) == Status.BadArgument  # histogram-typed, unknown
    assert h.call("proxy_increment_metric", 7, 1) == Status.BadArgument  # id & 3 == 3
    assert h.call("proxy_increment_metric", 3, 1) == Status.BadArgument
    assert h.host.metrics.histogram("h") == []


def test_record(h):
    define(h, MetricType.COUNTER, "c")
    define(h, MetricType.GAUGE, "g")
    define(h, MetricType.HISTOGRAM, "h")
    h.call("proxy_increment_metric", 4, 1)
    assert h.call("proxy_record_metric", 4, 10) == Status.Ok  # a counter adds
    assert h.call("proxy_record_metric", 4, 0) == Status.Ok
    assert get(h, 4) == (Status.Ok, 11)
    assert h.call("proxy_record_metric", 5, 42) == Status.Ok  # a gauge is set
    assert h.call("proxy_record_metric", 5, 7) == Status.Ok
    assert get(h, 5) == (Status.Ok, 7)
    for sample in (3, 0, 100):
        assert h.call("proxy_record_metric", 6, sample) == Status.Ok  # a histogram records
    assert h.call("proxy_record_metric", 6, -1) == Status.Ok  # the value is a u64
    assert h.host.metrics.histogram("h") == [3, 0, 100, U64 - 1]
    assert h.call("proxy_record_metric", 5, -2) == Status.Ok
    assert get(h, 5) == (Status.Ok, U64 - 2)


@pytest.mark.parametrize("unknown", [8, 9, 10, 11, 3, 0])
def test_record_unknown_id_is_not_found_whatever_the_type_bits(h, unknown):
    define(h, MetricType.COUNTER, "c")
    assert h.call("proxy_record_metric", unknown, 1) == Status.NotFound


def test_get(h):
    define(h, MetricType.COUNTER, "c")
    define(h, MetricType.GAUGE, "g")
    define(h, MetricType.HISTOGRAM, "h")
    assert get(h, 4) == (Status.Ok, 0)
    assert get(h, 5) == (Status.Ok, 0)
    assert get(h, 6) == (Status.BadArgument, None)  # histograms cannot be read
    assert get(h, 8) == (Status.NotFound, None)
    assert get(h, 9) == (Status.NotFound, None)
    assert get(h, 10) == (Status.BadArgument, None)  # histogram-typed, unknown
    assert get(h, 7) == (Status.BadArgument, None)  # id & 3 == 3
    assert h.mem.read(VALUE, 8) == b"\xaa" * 8  # nothing written on an error


def test_python_api(h):
    define(h, MetricType.COUNTER, "requests_total")
    define(h, MetricType.GAUGE, "active")
    define(h, MetricType.HISTOGRAM, "size")
    h.call("proxy_increment_metric", 4, 3)
    h.call("proxy_increment_metric", 5, 2)
    h.call("proxy_record_metric", 6, 512)
    m = h.host.metrics
    assert m.get("requests_total") == 3 and m.get("wasmcustom.requests_total") == 3
    assert m.get("active") == 2 and m.get("size") == [512]
    assert m.histogram("size") == [512] and m.histogram("wasmcustom.size") == [512] and m.histogram("nope") == []
    assert m.get("nope") is None and m.get("nope", 0) == 0
    assert m.all() == {
        "active": {"type": "gauge", "value": 2},
        "requests_total": {"type": "counter", "value": 3},
        "size": {"type": "histogram", "value": [512]},
    }
    assert set(m.all(envoy_names=True)) == {"wasmcustom.active", "wasmcustom.requests_total", "wasmcustom.size"}
    assert m.metric("requests_total").envoy_name == "wasmcustom.requests_total"


def test_ids_belong_to_the_vm_and_stats_to_the_host(h):
    vm2 = h.host.create_vm(wat_module("hostcalls"), vm_id="other")
    p2 = h.host.add_plugin(vm2, root_id="x")
    ctx2 = p2.root_context_id
    define(h, MetricType.COUNTER, "shared")
    define(h, MetricType.COUNTER, "only_first")
    vm2.memory.write(1024, b"shared")
    assert vm2.call("t_proxy_define_metric", 0, 1024, 6, ID, context_id=ctx2) == Status.Ok
    assert vm2.memory.u32(ID) == 4  # id counters are per VM
    assert vm2.call("t_proxy_increment_metric", 4, 10, context_id=ctx2) == Status.Ok
    assert h.call("proxy_increment_metric", 4, 1) == Status.Ok
    assert h.host.metrics.get("shared") == 11  # one stat per name in the host, whatever the vm_id
    assert vm2.call("t_proxy_increment_metric", 8, 1, context_id=ctx2) == Status.NotFound  # vm2 never defined 8
    assert h.host.metrics.ids(vm2) == {4: "shared"}


def test_separate_hosts_are_isolated(h):
    define(h, MetricType.COUNTER, "c")
    h.call("proxy_increment_metric", 4, 1)
    other = Harness(h.host.engine.name)
    assert other.host.metrics.all() == {}
    assert other.call("proxy_increment_metric", 4, 1) == Status.NotFound


def test_bad_pointers(h):
    assert h.call("proxy_define_metric", 0, BAD, 4, ID) == Status.InvalidMemoryAccess
    assert h.call("proxy_define_metric", 7, BAD, 4, ID) == Status.InvalidMemoryAccess  # the name is read first
    assert h.call("proxy_define_metric", 0, *h.put("c"), BAD) == Status.InvalidMemoryAccess
    assert h.host.metrics.ids(h.vm) == {4: "c"}  # as in cpp-host, the metric exists though its id was not written
    assert h.call("proxy_get_metric", 4, BAD) == Status.InvalidMemoryAccess
    assert h.call("proxy_get_metric", 8, BAD) == Status.NotFound  # the lookup comes first
