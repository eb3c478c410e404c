"""Guest coverage (Host(coverage=True)): which basic blocks of the filter ran, deterministically."""

from __future__ import annotations

import pytest

from emulator import Host, ModuleLoadError, Request, Response
from tests.conftest import FIXTURES

PLAIN = (Request.minimal("/a"), Response({":status": "200"}))
DENY = (Request.minimal("/a", headers={"x-deny": "1"}), None)


def hits(bitmap: bytes) -> set[int]:
    return {i for i, b in enumerate(bitmap) if b}


@pytest.mark.parametrize(
    "fixture", ["rust/headers_rust.wasm", "go/headers_go.wasm", "c/headers_c.wasm", "assemblyscript_current/headers_assemblyscript_current.wasm"]
)
def test_the_same_input_from_the_same_state_covers_the_same_sites_and_a_new_path_shows(proxy_wasm_engine, fixture):
    if proxy_wasm_engine != "wasmtime":
        pytest.skip("coverage needs multi-memory; the wasmer test below checks the refusal")
    host = Host(coverage=True, trace=False)
    plugin = host.load(FIXTURES / fixture)
    vm = plugin.vm
    snap = host.snapshot()
    runs = []
    for exchange in (PLAIN, PLAIN, DENY):
        host.restore(snap)
        vm.reset_coverage()
        plugin.http_exchange(*exchange)
        runs.append(hits(vm.coverage()))
    plain, again, deny = runs
    assert plain and plain == again  # deterministic
    new = deny - plain
    assert new, "the deny path (a local reply) ran no new block"
    where = {vm.program.coverage.describe(i) for i in new}
    assert all("+0x" in w for w in where)


def test_coverage_on_an_engine_without_multi_memory_is_refused_by_name(proxy_wasm_engine):
    if proxy_wasm_engine != "wasmer":
        pytest.skip("wasmer only")
    with pytest.raises(ModuleLoadError, match="coverage needs an engine with multi-memory"):
        Host(engine="wasmer", coverage=True).load(FIXTURES / "rust/headers_rust.wasm")


def test_without_coverage_there_is_no_bitmap():
    plugin = Host().load(FIXTURES / "wat/minimal.wasm", root_id="")
    assert plugin.vm.coverage() is None


def test_bitmaps_decode_to_the_sites_entered_and_compare_as_ints():
    from emulator.vm.coverage import bitmap_bits, covered_sites

    first, second = b"\x00\x01\x01\x00", b"\x01\x00"
    assert covered_sites((first, second)) == {(0, 1), (0, 2), (1, 0)}
    a, b = bitmap_bits(first), bitmap_bits(b"\x00\x01\x00\x01")
    assert a.bit_count() == 2 and b & ~a and not bitmap_bits(b"\x00\x01") & ~a  # site 3 is new, site 1 is not
    assert (a | b).bit_count() == 3


def test_an_execution_keeps_the_bitmaps_and_decodes_its_sites_when_read(proxy_wasm_engine):
    if proxy_wasm_engine != "wasmtime":
        pytest.skip("coverage needs multi-memory")
    from emulator.fuzz.execution import execute_scenario

    scenario = {"streams": [{"request": {"headers": {":method": "GET", ":path": "/a", ":authority": "x"}}, "response": {"headers": {":status": "200"}}}]}
    res = execute_scenario(FIXTURES / "rust/headers_rust.wasm", scenario, coverage=True)
    (bitmap,) = res.bitmaps
    assert res.coverage == {(0, i) for i in hits(bitmap)} == res.run.coverage
    assert len(res.coverage) > 50
    assert execute_scenario(FIXTURES / "rust/headers_rust.wasm", scenario).coverage is None
