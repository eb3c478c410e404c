"""Logging, time, configuration buffers, properties and context control (abi-spec.md §1.3-1.5, §1.9, §1.13)."""

from __future__ import annotations

import struct

import pytest

from abi import BufferType, LogLevel, Status, encode_path
from emulator import DEFAULT_EPOCH_NS, CallbackError, HostCallNotImplemented
from emulator.contexts import CallInputs
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(
        proxy_wasm_engine,
        vm_config=b"vm-configuration",
        plugin_config=b"plugin-configuration",
        root_id="root",
        name="my-plugin",
        vm_id="vm1",
        properties={"plugin_props": {"n": 7}},
        host_properties={"node": {"id": "node-1", "metadata": {"zone": "a"}, "list": ["x", "y"]}, "bad": object()},
    )


def test_log_levels_and_bad_arguments(h):
    for level in range(6):
        assert h.call("proxy_log", level, *h.put(f"level {level}")) == Status.Ok
    assert [(r.level, r.message, r.root_id, r.vm_id, r.plugin_name) for r in h.host.logs][-6:] == [
        (LogLevel(i), f"level {i}", "root", "vm1", "my-plugin") for i in range(6)
    ]
    assert h.host.logs[-1].envoy_line() == "wasm log my-plugin root vm1: level 5"
    assert h.call("proxy_log", 6, *h.put("x")) == Status.BadArgument
    assert h.call("proxy_log", 2, 2**31, 10) == Status.InvalidMemoryAccess
    assert h.vm.notes and "proxy_log" in h.vm.notes[-1]


def test_a_host_call_nothing_observes_answers_as_an_observed_one(proxy_wasm_engine):
    # with no trace and no expectations the C crossing calls the import without an argument tuple:
    # the same statuses, the same note for a bad pointer, and the call still counted
    h = Harness(proxy_wasm_engine, trace=False, root_id="root")
    assert h.host.observer is None
    before = h.vm.host_calls
    assert h.call("proxy_log", 2, *h.put("unobserved")) == Status.Ok
    assert h.call("proxy_log", 2, 2**31, 10) == Status.InvalidMemoryAccess
    assert h.vm.notes and "proxy_log" in h.vm.notes[-1]
    assert h.call("proxy_get_current_time_nanoseconds", 2**31) == Status.InvalidMemoryAccess
    assert h.call("proxy_get_current_time_nanoseconds", 16) == Status.Ok and h.mem.u64(16) == DEFAULT_EPOCH_NS
    assert h.vm.host_calls == before + 4
    assert h.host.logs[-1].message == "unobserved"


def test_log_level_and_time(h):
    assert h.call("proxy_get_log_level", 16) == Status.Ok and h.mem.u32(16) == LogLevel.TRACE
    assert h.call("proxy_get_current_time_nanoseconds", 16) == Status.Ok
    assert h.mem.u64(16) == DEFAULT_EPOCH_NS
    h.host.advance(250)
    h.call("proxy_get_current_time_nanoseconds", 16)
    assert h.mem.u64(16) == DEFAULT_EPOCH_NS + 250_000_000
    assert h.call("proxy_get_current_time_nanoseconds", 2**31) == Status.InvalidMemoryAccess


def test_log_level_is_configurable_and_filters(proxy_wasm_engine):
    h = Harness(proxy_wasm_engine, log_level=LogLevel.WARN)
    assert h.call("proxy_get_log_level", 16) == Status.Ok and h.mem.u32(16) == LogLevel.WARN
    h.call("proxy_log", LogLevel.INFO, *h.put("dropped"))
    h.call("proxy_log", LogLevel.ERROR, *h.put("kept"))
    assert [r.message for r in h.host.logs] == ["kept"]


def test_tick_period_belongs_to_the_root_context(h):
    assert h.call("proxy_set_tick_period_milliseconds", 250) == Status.Ok
    assert h.plugin.tick_period_ms == 250 and h.plugin.next_tick_ms == 250
    assert h.call("proxy_set_tick_period_milliseconds", 0) == Status.Ok
    assert h.plugin.next_tick_ms is None


def test_vm_configuration_buffer_clamps_ranges(h):
    vm = BufferType.VM_CONFIGURATION
    assert h.call("proxy_get_buffer_bytes", vm, 0, 0xFFFFFFFF, RET_PTR, RET_LEN) == Status.Ok
    assert h.returned() == b"vm-configuration"
    assert h.call("proxy_get_buffer_bytes", vm, 3, 6, RET_PTR, RET_LEN) == Status.Ok
    assert h.returned() == b"configuration"[:6]
    heap = h.vm.export("heap")()
    assert h.call("proxy_get_buffer_bytes", vm, 100, 5, RET_PTR, RET_LEN) == Status.Ok
    assert (h.returned_ptr(), h.returned()) == (0, b"")
    assert h.vm.export("heap")() == heap  # empty data never calls the allocator
    assert h.call("proxy_get_buffer_status", vm, 16, 20) == Status.Ok
    assert struct.unpack("<II", h.mem.read(16, 8)) == (16, 0)
    assert h.call("proxy_set_buffer_bytes", vm, 0, 0, *h.put("x")) == Status.BadArgument


def test_plugin_configuration_only_during_configure(h):
    assert h.call("proxy_get_buffer_bytes", BufferType.PLUGIN_CONFIGURATION, 0, 100, RET_PTR, RET_LEN) == Status.NotFound
    h.plugin.inputs = CallInputs(configuring=True)  # as during on_configure
    assert h.call("proxy_get_buffer_bytes", BufferType.PLUGIN_CONFIGURATION, 0, 100, RET_PTR, RET_LEN) == Status.Ok
    assert h.returned() == b"plugin-configuration"
    assert h.call("proxy_get_configuration", RET_PTR, RET_LEN) == Status.Ok and h.returned() == b"plugin-configuration"
    h.plugin.inputs = None
    assert h.call("proxy_get_configuration", RET_PTR, RET_LEN) == Status.Ok and h.returned() == b"vm-configuration"


def test_other_buffers_outside_their_callbacks(h):
    assert h.call("proxy_get_buffer_bytes", 9, 0, 10, RET_PTR, RET_LEN) == Status.BadArgument
    assert h.call("proxy_get_buffer_bytes", BufferType.HTTP_CALL_RESPONSE_BODY, 0, 10, RET_PTR, RET_LEN) == Status.NotFound
    assert h.call("proxy_get_buffer_bytes", BufferType.HTTP_REQUEST_BODY, 0, 10, RET_PTR, RET_LEN) == Status.Ok
    assert h.returned() == b""
    assert h.call("proxy_set_buffer_bytes", BufferType.HTTP_REQUEST_BODY, 0, 0, *h.put("x")) == Status.BadArgument
    assert h.call("proxy_set_buffer_bytes", BufferType.HTTP_CALL_RESPONSE_BODY, 0, 0, *h.put("x")) == Status.NotFound
    assert h.call("proxy_get_buffer_bytes", BufferType.VM_CONFIGURATION, 0, 10, 2**31, RET_LEN) == Status.InvalidMemoryAccess


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["plugin_root_id"], b"root"),
        (["plugin_name"], b"my-plugin"),
        (["plugin_vm_id"], b"vm1"),
        (["node", "id"], b"node-1"),
        (["node", "metadata", "zone"], b"a"),
        (["node", "list", "1"], b"y"),
        (["plugin_props", "n"], struct.pack("<q", 7)),
    ],
)
def test_get_property(h, path, value):
    for trailing in (False, True):
        assert h.call("proxy_get_property", *h.put(encode_path(path, trailing_nul=trailing)), RET_PTR, RET_LEN) == Status.Ok
        assert h.returned() == value


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (b"node.id", Status.NotFound),
        (b"node\0nope", Status.NotFound),
        (b"node\0list\x009", Status.NotFound),
        (b"", Status.SerializationFailure),  # Envoy: the default CEL value is null
        (b"bad", Status.SerializationFailure),
        (b"plugin_root_id\0x", Status.NotFound),
    ],
)
def test_get_property_failures(h, path, status):
    assert h.call("proxy_get_property", *h.put(path), RET_PTR, RET_LEN) == status


def test_plugin_properties_are_not_visible_in_the_vm_context(h):
    assert h.call("proxy_get_property", *h.put("plugin_root_id"), RET_PTR, RET_LEN, context_id=0) == Status.NotFound


def test_set_property_needs_a_stream(h):
    assert h.call("proxy_set_property", *h.put("k"), *h.put("v")) == Status.NotFound


def test_context_control(h):
    assert h.call("proxy_set_effective_context", 999) == Status.BadArgument
    assert h.call("proxy_set_effective_context", h.plugin.root_context_id) == Status.Ok
    assert h.call("proxy_done") == Status.NotFound
    h.mem.write(16, b"\xff" * 4)
    assert h.call("proxy_get_status", 16, RET_PTR, RET_LEN) == Status.Ok
    assert (h.mem.u32(16), h.returned()) == (0, b"")
    assert h.call("pthread_equal", 5, 5) == 1 and h.call("pthread_equal", 5, 6) == 0
    assert h.call("emscripten_notify_memory_growth", 0) is None


def test_unimplemented_host_call_fails_clearly(h):
    with pytest.raises(CallbackError) as info:
        h.call("envoy_resolve_dns", 0, 0, 16)
    assert isinstance(info.value.cause, HostCallNotImplemented)
    assert "envoy_resolve_dns is not implemented by proxy-wasm-emulator yet" in str(info.value)
