"""Modules in the binary forms current toolchains emit: DataCount and tag sections, bulk memory.

Current AssemblyScript (asc >= 0.20) and TinyGo emit a DataCount section (id 12, which the spec
orders between element and code) and bulk-memory instructions; exception handling adds a tag
section (id 13, between memory and global). Each module here loads and runs on every engine, or
is refused for a reason that names the proposal. The parser itself is checked against
``wasm-tools`` in tests/unit/test_wasm_oracle.py.
"""

from __future__ import annotations

import pytest
import wasmtime

from emulator import Host
from emulator.errors import UnsupportedProposalError
from emulator.vm.module import parse_module

HEADERS_FILTER = """
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (tag $boom (param i32))
  (global $sp (mut i32) (i32.const 1024))
  (data $hello "hello")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $sp))
    (global.set $sp (i32.add (global.get $sp) (local.get 0)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (memory.init $hello (i32.const 16) (i32.const 0) (i32.const 5))
    (data.drop $hello)
    (memory.copy (i32.const 32) (i32.const 16) (i32.const 5))
    (memory.fill (i32.const 37) (i32.const 33) (i32.const 1))
    (drop (call $log (i32.const 2) (i32.const 32) (i32.const 6)))
    (i32.const 1))
)
"""
HEADERS_FILTER_NO_TAG = HEADERS_FILTER.replace("(tag $boom (param i32))", "")


def test_datacount_and_bulk_memory_run_on_every_engine(proxy_wasm_engine):
    wasm = bytes(wasmtime.wat2wasm(HEADERS_FILTER_NO_TAG))
    info = parse_module(wasm)
    assert info.has_datacount_section and "exceptions" not in info.proposals
    host = Host(engine=proxy_wasm_engine)
    host.load(wasm, root_id="")
    assert [r.message for r in host.logs] == ["hello!"]


def test_a_tag_section_runs_or_is_refused_naming_exception_handling(proxy_wasm_engine):
    wasm = bytes(wasmtime.wat2wasm(HEADERS_FILTER))
    ids = [s.id for s in parse_module(wasm).sections if s.id]
    assert ids.index(13) == ids.index(6) - 1  # tag sits right before global
    host = Host(engine=proxy_wasm_engine)
    if proxy_wasm_engine == "wasmer":  # wasmer 2.1 predates exception handling; its parser panics on a tag section
        with pytest.raises(UnsupportedProposalError, match="exceptions proposal, which wasmer"):
            host.load(wasm, root_id="")
        return
    host.load(wasm, root_id="")
    assert [r.message for r in host.logs] == ["hello!"]
