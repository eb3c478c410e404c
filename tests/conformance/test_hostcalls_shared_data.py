"""Shared data: get/set, cas rules, vm_id namespaces, visibility across plugins and VMs (abi-spec.md §1.10)."""

from __future__ import annotations

import pytest

from abi import Status
from tests.conftest import wat_module
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness

CAS = 16
BAD = 2**31


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine, vm_id="a", root_id="r")


def get(h, key, *, ctx=None):
    status = h.call("proxy_get_shared_data", *h.put(key), RET_PTR, RET_LEN, CAS, context_id=ctx)
    return (status, h.returned(), h.mem.u32(CAS)) if status == Status.Ok else (status, None, None)


def set_(h, key, value, cas=0):
    return h.call("proxy_set_shared_data", *h.put(key), *h.put(value), cas)


def test_get_missing_key_is_not_found_and_writes_nothing(h):
    h.mem.write(0, b"\xaa" * 20)
    assert h.call("proxy_get_shared_data", *h.put("nope"), RET_PTR, RET_LEN, CAS) == Status.NotFound
    assert h.mem.read(0, 20) == b"\xaa" * 20  # neither the value out-params nor the cas


def test_set_then_get_returns_value_and_cas(h):
    assert set_(h, "k", "v1") == Status.Ok
    assert get(h, "k") == (Status.Ok, b"v1", 1)  # the cas counter starts at 1
    assert set_(h, "k", "v2") == Status.Ok  # cas 0: unconditional
    assert get(h, "k") == (Status.Ok, b"v2", 2)
    assert set_(h, "k", "v3", cas=2) == Status.Ok  # the current cas matches
    assert get(h, "k") == (Status.Ok, b"v3", 3)


def test_stale_cas_is_a_mismatch_and_changes_nothing(h):
    set_(h, "k", "v1")
    set_(h, "k", "v2")
    assert set_(h, "k", "lost", cas=1) == Status.CasMismatch
    assert get(h, "k") == (Status.Ok, b"v2", 2)
    assert h.host.shared_data.get("k", vm_id="a") == (b"v2", 2)


def test_set_on_a_missing_key_ignores_the_cas(h):
    assert set_(h, "fresh", "x", cas=77) == Status.Ok
    assert get(h, "fresh") == (Status.Ok, b"x", 1)


def test_empty_value_gives_null_pointer_and_no_allocation(h):
    assert set_(h, "empty", b"") == Status.Ok
    heap = h.vm.export("heap")()
    h.mem.write(0, b"\xaa" * 8)
    assert h.call("proxy_get_shared_data", *h.put("empty"), RET_PTR, RET_LEN, CAS) == Status.Ok
    assert (h.mem.u32(RET_PTR), h.mem.u32(RET_LEN), h.mem.u32(CAS)) == (0, 0, 1)
    assert h.vm.export("heap")() == heap
    # the Rust SDK's remove_shared_data is set(key, empty): the key stays, with an empty value
    assert h.host.shared_data.items("a") == {"empty": (b"", 1)}


def test_binary_keys_and_values(h):
    assert set_(h, b"\x00\xffkey", b"\x00\x01\x02") == Status.Ok
    assert get(h, b"\x00\xffkey") == (Status.Ok, b"\x00\x01\x02", 1)
    assert h.host.shared_data.get(b"\x00\xffkey", vm_id="a") == (b"\x00\x01\x02", 1)


def test_the_cas_counter_is_global_and_never_zero(h):
    other = h.host.create_vm(wat_module("hostcalls"), vm_id="b")
    p2 = h.host.add_plugin(other, root_id="x")
    set_(h, "k", "v")  # cas 1 in vm_id "a"
    other.memory.write(1024, b"k")
    other.memory.write(1100, b"w")
    assert other.call("t_proxy_set_shared_data", 1024, 1, 1100, 1, 0, context_id=p2.root_context_id) == Status.Ok
    assert h.host.shared_data.get("k", vm_id="b") == (b"w", 2)  # one counter for every vm_id
    assert h.host.shared_data.set("k", "v", vm_id="a") == Status.Ok
    assert h.host.shared_data.get("k", vm_id="a") == (b"v", 3)
    h.host.shared_data._next_cas = 0xFFFFFFFF
    set_(h, "wrap", "1")
    set_(h, "wrap", "2")
    assert get(h, "wrap")[2] == 1  # 0xFFFFFFFF, then 0 is skipped
    assert set_(h, "wrap", "3", cas=0xFFFFFFFF) == Status.CasMismatch


def test_namespaced_by_vm_id(h):
    other = h.host.create_vm(wat_module("hostcalls"), vm_id="b")
    p2 = h.host.add_plugin(other, root_id="x")
    set_(h, "k", "from-a")
    other.memory.write(1024, b"k")
    other.memory.write(0, b"\xaa" * 8)
    assert other.call("t_proxy_get_shared_data", 1024, 1, RET_PTR, RET_LEN, CAS, context_id=p2.root_context_id) == Status.NotFound
    assert h.host.shared_data.get("k", vm_id="b") is None
    assert h.host.shared_data.get("k") is None  # the "" vm_id is a namespace of its own
    assert h.host.shared_data.snapshot() == {"a": {"k": (b"from-a", 1)}}


def test_visible_across_plugins_and_vms_with_the_same_vm_id(h):
    vm2 = h.host.create_vm(wat_module("hostcalls"), vm_id="a")
    p2 = h.host.add_plugin(vm2, root_id="x")
    p3 = h.host.add_plugin(h.vm, root_id="y")  # a second plugin on the harness VM
    set_(h, "k", "shared")
    vm2.memory.write(1024, b"k")
    assert vm2.call("t_proxy_get_shared_data", 1024, 1, RET_PTR, RET_LEN, CAS, context_id=p2.root_context_id) == Status.Ok
    ptr, size = vm2.memory.u32(RET_PTR), vm2.memory.u32(RET_LEN)
    assert (vm2.memory.read(ptr, size), vm2.memory.u32(CAS)) == (b"shared", 1)
    # a write from the other VM is seen by the first one, with its new cas
    vm2.memory.write(1100, b"updated")
    assert vm2.call("t_proxy_set_shared_data", 1024, 1, 1100, 7, 1, context_id=p2.root_context_id) == Status.Ok
    assert get(h, "k", ctx=p3.root_context_id) == (Status.Ok, b"updated", 2)
    assert vm2.call("t_proxy_set_shared_data", 1024, 1, 1100, 7, 1, context_id=p2.root_context_id) == Status.CasMismatch


def test_python_api_reads_and_writes_what_the_guest_sees(h):
    data = h.host.shared_data
    assert data.set("cfg", b"from-test", vm_id="a") == Status.Ok
    assert get(h, "cfg") == (Status.Ok, b"from-test", 1)
    set_(h, "other", "x")
    assert data.items("a") == {"cfg": (b"from-test", 1), "other": (b"x", 2)}
    assert data.set("cfg", "str-value", vm_id="a", cas=5) == Status.CasMismatch
    assert data.set("cfg", "str-value", vm_id="a", cas=1) == Status.Ok
    assert data.get("cfg", vm_id="a") == (b"str-value", 3)
    assert data.get("missing", vm_id="a") is None
    assert data.items("nobody") == {}


def test_separate_hosts_are_isolated(h):
    set_(h, "k", "v")
    other = Harness(h.host.engine.name, vm_id="a")
    assert other.host.shared_data.get("k", vm_id="a") is None
    assert get(other, "k") == (Status.NotFound, None, None)
    assert set_(other, "k", "w") == Status.Ok
    assert get(other, "k") == (Status.Ok, b"w", 1)  # each host has its own cas counter too


def test_bad_pointers(h):
    set_(h, "k", "v")
    assert h.call("proxy_get_shared_data", BAD, 4, RET_PTR, RET_LEN, CAS) == Status.InvalidMemoryAccess
    assert h.call("proxy_get_shared_data", *h.put("k"), BAD, RET_LEN, CAS) == Status.InvalidMemoryAccess
    assert h.call("proxy_get_shared_data", *h.put("k"), RET_PTR, RET_LEN, BAD) == Status.InvalidMemoryAccess
    assert h.call("proxy_set_shared_data", BAD, 4, *h.put("v"), 0) == Status.InvalidMemoryAccess
    assert h.call("proxy_set_shared_data", *h.put("k"), BAD, 4, 0) == Status.InvalidMemoryAccess
    assert h.host.shared_data.get("k", vm_id="a") == (b"v", 1)  # nothing was stored
