"""VM and plugin start as cpp-host and Envoy do it (abi-spec.md §2.1, §5.1, §9.4)."""

from __future__ import annotations

import pytest

from abi import LogLevel
from emulator import CallbackError, Host, ModuleLoadError, PluginStartError, ProcExit, RestrictedHostCall, UnknownImportsError
from tests.conftest import FIXTURES, wat_module


def messages(records):
    return [r.message for r in records]


@pytest.fixture
def host(proxy_wasm_engine):
    return Host(engine=proxy_wasm_engine)


def test_start_order_and_root_id_visible_in_context_create(host):
    plugin = host.load(wat_module("lifecycle"), root_id="my_root", plugin_config="cfg")
    assert messages(host.logs) == [
        "initialize",
        "hello from stdout",
        "context_create",
        "my_root",
        "plugin-config-visible",
        "vm_start",
        "configure",
    ]
    assert plugin.root_context_id == 1 and plugin.started
    stdout = [r for r in host.logs if r.source == "stdout"]
    assert stdout[0].level == LogLevel.INFO


def test_two_plugins_on_one_vm_each_get_context_create_and_vm_start(host):
    vm = host.create_vm(wat_module("lifecycle"), vm_id="shared")
    first = host.add_plugin(vm, root_id="a")
    second = host.add_plugin(vm, root_id="b")
    assert (first.root_context_id, second.root_context_id) == (1, 2)
    logs = messages(host.logs)
    assert logs.count("initialize") == 1
    assert logs.count("vm_start") == 2 and logs.count("context_create") == 2
    assert [r.message for r in second.logs] == ["context_create", "b", "plugin-config-visible", "vm_start", "configure"]
    assert all(r.vm_id == "shared" for r in second.logs)


def test_plugin_configuration_and_vm_configuration_buffers(host):
    plugin = host.load(wat_module("minimal"), plugin_config=b"plugin-bytes", vm_config=b"vm-bytes")
    assert messages(plugin.logs) == ["vm-bytes", "plugin-bytes"]


def test_configure_returning_false(host):
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("minimal"), plugin_config="no")
    assert info.value.phase == "proxy_on_configure"
    assert "returned false" in str(info.value)
    assert "ConfigureFailed" in info.value.envoy


def test_vm_start_returning_false(host):
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("vm_start_false"))
    assert info.value.phase == "proxy_on_vm_start"
    assert "StartFailed" in info.value.envoy


def test_trap_in_configure_names_callback_and_backtrace(host):
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("trap_in_configure"))
    err = info.value
    assert err.phase == "proxy_on_configure"
    assert isinstance(err.cause, CallbackError)
    assert err.cause.context_id == 1
    assert "unreachable" in str(err)
    assert "validate_config" in str(err) or "<func 2>" in str(err)
    assert "RuntimeError" in err.envoy


def test_failed_vm_refuses_further_calls(host):
    from emulator import VmFailedError

    with pytest.raises(PluginStartError):
        host.load(wat_module("trap_in_configure"))
    vm = host.vms[0]
    with pytest.raises(VmFailedError, match="failed earlier"):
        vm.call("proxy_on_vm_start", 1, 0)


def test_restricted_import_during_initialize_traps(host):
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("restricted_at_start"))
    assert info.value.phase == "_initialize"
    assert isinstance(info.value.cause.cause, RestrictedHostCall)
    assert "proxy_set_tick_period_milliseconds called during _initialize" in str(info.value)


def test_proc_exit_is_a_clear_error(host):
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("proc_exit_in_vm_start"))
    assert info.value.phase == "proxy_on_vm_start"
    assert isinstance(info.value.cause.cause, ProcExit)
    assert "the guest called proc_exit(3)" in str(info.value)
    assert host.vms[0].export("started")() == 1  # _start ran, since there is no _initialize


def test_proc_exit_during_initialize_is_restricted_as_in_cpp_host(host):
    with pytest.raises(PluginStartError) as info:
        host.load(wat_module("proc_exit_at_start"))
    assert info.value.phase == "_initialize"
    assert isinstance(info.value.cause.cause, RestrictedHostCall)


def test_unknown_imports_are_all_named(host):
    with pytest.raises(UnknownImportsError) as info:
        host.load(wat_module("unknown_imports"))
    assert info.value.missing == ["env.proxy_frobnicate (i32) -> (i32)", "my_sdk.helper () -> ()"]
    assert "stub_unknown_imports" in str(info.value)


def test_unknown_imports_can_be_stubbed(host):
    plugin_error = None
    try:
        host.load(wat_module("unknown_imports"), stub_unknown_imports=True)
    except PluginStartError as exc:  # the stub returns InternalFailure (10), a true value for on_vm_start
        plugin_error = exc
    assert plugin_error is None
    warns = [r.message for r in host.logs if r.level == LogLevel.WARN]
    assert warns == ["call to unknown import my_sdk.helper: stubbed, returns None", "call to unknown import env.proxy_frobnicate: stubbed, returns 10"]


def test_bad_export_signature(host):
    with pytest.raises(ModuleLoadError, match=r"proxy_on_configure: exported as \(i32\) -> \(i32\)") as info:
        host.load(wat_module("bad_signature"))
    assert "Bad function signature" in info.value.envoy


@pytest.mark.parametrize(
    "mangle",
    [lambda b: b[: len(b) // 2], lambda b: b"\0asm" + b[4:8] + b"\xff" * 16, lambda b: b"not wasm at all"],
    ids=["truncated", "garbage-section", "not-wasm"],
)
def test_malformed_module(host, mangle):
    data = (FIXTURES / "rust/headers_rust.wasm").read_bytes()
    with pytest.raises(ModuleLoadError, match=r"malformed|not a wasm module|cannot compile"):
        host.load(mangle(data))


def test_missing_file(host, tmp_path):
    with pytest.raises(ModuleLoadError, match="no such file"):
        host.load(tmp_path / "nope.wasm")


def test_no_marker_runs_with_a_note(host):
    plugin = host.load(wat_module("no_marker"))
    assert plugin.vm.abi.version == "0.1.0" and plugin.vm.abi.declared is None
    assert any("envoy rejects" in n for n in plugin.vm.abi.notes)


def test_0_1_0_marker_with_0_2_shapes(host):
    plugin = host.load(wat_module("abi_0_1_0_with_0_2_shapes"))
    assert (plugin.vm.abi.version, plugin.vm.abi.headers_arity) == ("0.1.0", 3)
    assert messages(plugin.logs) == ["started"]


def test_tick_period_and_virtual_clock(host):
    plugin = host.load(wat_module("minimal"))
    assert plugin.tick_period_ms == 1000
    host.advance(999)
    assert "tick" not in messages(host.logs)
    host.advance(2001)
    assert messages(host.logs).count("tick") == 3
    assert host.clock.now_ms == 3000
