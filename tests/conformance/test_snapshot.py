"""Snapshot and restore of a whole host between examples: the fast reset fuzzing needs."""

from __future__ import annotations

import pytest

from emulator import Host, Request, Response
from emulator.errors import EmulatorError
from emulator.vm.module import parse_module
from emulator.vm.rewrite import export_mutable_globals
from tests.conftest import FIXTURES, SDK_FIXTURES, wat_module

REQ = Request({":method": "POST", ":path": "/a", ":authority": "x", "x-body-mode": "append"}, body="hello", chunks=2)


def test_every_mutable_global_is_exported_and_nothing_else_changes():
    wasm = (FIXTURES / "go/headers_go.wasm").read_bytes()
    out, names = export_mutable_globals(wasm)
    before, after = parse_module(wasm), parse_module(out)
    assert len(names) == before.mutable_globals == 8
    assert [e.name for e in after.exports] == [e.name for e in before.exports] + names
    assert after.imports == before.imports
    no_globals = wat_module("no_marker").read_bytes()
    assert export_mutable_globals(no_globals) == (no_globals, [])


@pytest.mark.parametrize(("path", "tag", "_abi"), SDK_FIXTURES, ids=[t for _, t, _ in SDK_FIXTURES])
def test_restore_replays_identically_in_every_language(proxy_wasm_engine, path, tag, _abi):
    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(FIXTURES / path, root_id="headers")
    snap = host.snapshot()
    results = []
    for _ in range(3):
        s = plugin.http_exchange(REQ, Response({":status": "200"}))
        results.append((bytes(s.upstream_request.body), s.context_id, [r.message for r in host.logs], host.trace.to_json(), plugin.vm.memory.size))
        host.restore(snap)
    assert results[0] == results[1] == results[2]
    assert results[0][0] == b"hello-appended"


def test_restore_rewinds_clock_random_shared_state_and_a_failed_vm(proxy_wasm_engine):
    host = Host(engine=proxy_wasm_engine)
    plugin = host.load(wat_module("pitfalls"))
    host.shared_data.set("k", "v1")
    snap = host.snapshot()
    host.advance(500)
    host.random.random()
    host.shared_data.set("k", "v2")
    s = plugin.http_exchange(Request({":method": "GET", ":path": "/", ":authority": "a", "x-trap": "1"}))
    assert s.error is not None and plugin.vm.failed is not None
    host.restore(snap)
    assert host.clock.now_ms == 0 and plugin.vm.failed is None
    assert host.shared_data.get("k")[0] == b"v1"
    ok = plugin.http_exchange(Request({":method": "GET", ":path": "/", ":authority": "a"}), Response({":status": "200"}))
    assert ok.error is None and ok.downstream_response.header(":status") == b"200"


def test_snapshot_needs_streams_to_be_finished():
    host = Host()
    plugin = host.load(FIXTURES / "rust/headers_rust.wasm")
    plugin.http_stream().send_request_headers({":method": "GET", ":path": "/", ":authority": "a"})
    with pytest.raises(EmulatorError, match="between streams"):
        host.snapshot()
