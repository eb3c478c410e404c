"""Contexts: several plugins and VMs, effective context, proxy_done and shutdown (abi-spec.md §1.9, §5.2, §5.8)."""

from __future__ import annotations

from emulator import Host
from emulator.http.types import Request
from tests.conftest import FIXTURES, wat_module


def test_deferred_deletion_with_proxy_done(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(wat_module("root_done"))
    plugin.shutdown()
    assert plugin.pending_done and not plugin.deleted
    assert [r.message for r in host.logs] == ["on_done"]
    host.advance(10)  # on_tick calls proxy_done(): Ok, on_delete follows after the call
    assert [r.message for r in host.logs] == ["on_done", "proxy_done 0", "on_delete"]
    assert plugin.deleted and plugin.root_context_id not in plugin.vm.contexts


def test_proxy_done_when_not_pending_is_not_found(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(wat_module("root_done"))
    plugin.set_tick_period(10)
    host.advance(10)
    assert [r.message for r in host.logs] == ["proxy_done 1"]  # NotFound


def test_shutdown_ends_open_streams_then_roots(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    vm = host.create_vm(FIXTURES / "go/headers_go.wasm", vm_id="shared")
    a = host.add_plugin(vm, root_id="a")
    b = host.add_plugin(vm, root_id="b")
    open_stream = a.http_stream()
    open_stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "x"})
    host.shutdown()
    assert open_stream.completed
    assert [c.name for c in open_stream.callbacks][-3:] == ["proxy_on_log", "proxy_on_done", "proxy_on_delete"]
    assert a.deleted and b.deleted
    assert set(vm.contexts) == {0}


def test_context_ids_are_shared_by_roots_and_streams_per_vm(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    vm = host.create_vm(FIXTURES / "rust/headers_rust.wasm")
    a = host.add_plugin(vm, root_id="a")
    s1 = a.http_stream()
    b = host.add_plugin(vm, root_id="b")
    s2 = b.http_stream()
    assert (a.root_context_id, s1.context_id, b.root_context_id, s2.context_id) == (1, 2, 3, 4)
    other = host.load(FIXTURES / "rust/headers_rust.wasm", vm_id="other")
    assert other.root_context_id == 1  # a separate VM counts from 1


def test_plugins_in_one_vm_keep_their_own_configuration(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    vm = host.create_vm(FIXTURES / "c/headers_c.wasm")
    deny = host.add_plugin(vm, root_id="deny", plugin_config="deny-all")
    allow = host.add_plugin(vm, root_id="allow", plugin_config="")
    req = Request({":method": "GET", ":path": "/", ":authority": "x"})
    assert deny.http_exchange(req).local_response.status == 403
    assert allow.http_exchange(req).local_response is None
