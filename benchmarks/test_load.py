"""Cold and warm loads: compiling the largest Go fixture versus loading it from the module cache,
and a full plugin start (instantiate, _initialize, on_vm_start, on_configure) per SDK fixture."""

from __future__ import annotations

import pytest

from benchmarks.conftest import FIXTURES
from emulator import Host
from emulator.engines import get_engine
from emulator.vm.cache import ModuleCache
from emulator.vm.program import Program

GO = FIXTURES / "go/headers_go.wasm"


def test_compile_go_cold(benchmark, engine_name):
    engine = get_engine(engine_name)
    wasm = GO.read_bytes()
    benchmark.pedantic(engine.compile, args=(wasm,), rounds=3, iterations=1)


def test_compile_go_from_cache(benchmark, engine_name, tmp_path):
    engine = get_engine(engine_name)
    wasm = GO.read_bytes()
    cache = ModuleCache(tmp_path)
    cache.compile(engine, wasm)
    benchmark(cache.compile, engine, wasm)
    assert cache.hits >= 1 and cache.misses == 1


def test_program_go_from_cache(benchmark, engine_name, tmp_path):
    """Parse, detect ABI, build the import table, load from cache and link: what Host.load pays."""
    engine = get_engine(engine_name)
    wasm = GO.read_bytes()
    cache = ModuleCache(tmp_path)
    cache.compile(engine, wasm)
    benchmark(lambda: Program(engine, wasm, cache=cache))


@pytest.mark.parametrize("fixture", ["rust/headers_rust.wasm", "go/headers_go.wasm", "assemblyscript/headers_assemblyscript.wasm", "c/headers_cpp.wasm"])
def test_plugin_start(benchmark, engine_name, fixture):
    host = Host(engine=engine_name, trace=False)
    prog = host.program(FIXTURES / fixture)

    def start():
        vm = host.create_vm(prog)
        host.add_plugin(vm, root_id="headers", plugin_config=b"cfg")
        host.vms.clear()

    benchmark(start)
