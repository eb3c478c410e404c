"""Benchmark helpers: engines to compare and the micro-benchmark module."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from emulator.engines import HostFunction, available_engines, get_engine

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"
ENGINES = [name for name, reason in available_engines().items() if reason is None]


def bench_wasm() -> bytes:
    """The compiled micro-benchmark module."""
    return bytes(wasmtime.wat2wasm((HERE / "bench.wat").read_text()))


def bench_instance(engine_name: str):
    """An instance of bench.wat whose ``h_get`` behaves like proxy_get_header_map_value."""
    engine = get_engine(engine_name)
    holder = {}
    value = b"/api/v1/items?page=2"

    def h_get(key_ptr, key_len, ret_ptr, ret_len):
        inst = holder["i"]
        mem = inst.memory
        mem.read(key_ptr, key_len)
        ptr = holder["malloc"](len(value))
        mem.write(ptr, value)
        mem.put_u32(ret_ptr, ptr)
        mem.put_u32(ret_len, len(value))
        return 0

    imports = {
        ("env", "h_noop"): HostFunction(lambda a, b: 0, ("i32", "i32"), ("i32",)),
        ("env", "h_get"): HostFunction(h_get, ("i32",) * 4, ("i32",)),
    }
    inst = engine.link(engine.compile(bench_wasm()), imports).instantiate()
    holder["i"] = inst
    holder["malloc"] = inst.export("malloc")
    return inst


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return request.param
