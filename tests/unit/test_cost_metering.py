"""Per-callback costs read the store's fuel once per callback, and stay right across restores."""

from __future__ import annotations

from emulator import Host
from tests.conftest import FIXTURES

REQUEST = [(":method", "GET"), (":path", "/a"), (":authority", "x")]
RESPONSE = [(":status", "200")]


def _costs(plugin):
    stream = plugin.http_stream()
    stream.send_request_headers(REQUEST, end_of_stream=True)
    stream.send_response_headers(RESPONSE, end_of_stream=True)
    return [(c.name, c.cost.instructions, c.cost.host_calls) for c in stream.callbacks]


def test_the_same_request_costs_the_same_on_a_fresh_host_after_a_restore_and_after_a_new_instance():
    fresh = _costs(Host(costs=True).load(FIXTURES / "c/headers_c.wasm"))
    assert all(instructions and instructions > 0 for _, instructions, _ in fresh)
    host = Host(costs=True)
    plugin = host.load(FIXTURES / "c/headers_c.wasm")
    snap = host.snapshot()
    first = _costs(plugin)
    host.restore(snap)
    again = _costs(plugin)
    plugin.vm.instance.grow_memory(1)  # memory grew since the snapshot: the restore starts a new instance
    host.restore(snap)
    renewed = _costs(plugin)
    assert first == again == renewed == fresh


def test_a_callback_budget_still_resets_the_fuel_each_callback():
    host = Host(costs=True, callback_fuel=10_000_000)
    plugin = host.load(FIXTURES / "c/headers_c.wasm")
    assert _costs(plugin) == _costs(Host(costs=True).load(FIXTURES / "c/headers_c.wasm"))
