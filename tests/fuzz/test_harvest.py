"""The dictionary cuts packed literals where the module's own code says they are."""

from __future__ import annotations

import wasmtime

from emulator.fuzz.harvest import harvest_strings, literal_pieces, module_vocabulary
from emulator.vm.instructions import code_constants, nearby_pairs
from tests.conftest import FIXTURES

# Two literals packed back to back, as Go and Rust store them; the code names each by an address
# and a length, the way compilers pass a literal to a host call.
PACKED = """
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "x-tenant-idsandbox-qa30517578125")
  (func (export "use") (result i32)
    (drop (call $log (i32.const 2) (i32.const 1024) (i32.const 11)))
    (call $log (i32.const 2) (i32.const 1035) (i32.const 10))))
"""


def _module() -> bytes:
    return bytes(wasmtime.wat2wasm(PACKED))


def test_constants_and_their_neighbours_come_from_the_code():
    wasm = _module()
    values = [v for v, _, _ in code_constants(wasm)]
    assert values == [2, 1024, 11, 2, 1035, 10]
    pairs = nearby_pairs(code_constants(wasm))
    assert (1024, 11) in pairs and (1035, 10) in pairs
    assert (11, 1035) in pairs and (1024, 10) not in pairs  # only the next 3 constants, within 8 instructions


def test_packed_literals_come_out_whole_and_apart():
    wasm = _module()
    pieces = literal_pieces(wasm)
    assert pieces[:2] == [b"x-tenant-id", b"sandbox-qa"]  # the (address, length) pairs, exactly
    words = harvest_strings(wasm)
    assert words[:2] == ["x-tenant-id", "sandbox-qa"]  # the literals first, and "sandbox-qa" not cut at its "x-"
    assert module_vocabulary(wasm).names[0] == "x-tenant-id"


def test_go_literals_are_cut_where_go_packs_them():
    # Go packs string literals sorted by length: the header name below sits between two other
    # 11-byte literals in the binary, with nothing between them
    module = FIXTURES / "bugs/go_resume_unpaused/bug_go_resume_unpaused.wasm"
    raw = module.read_bytes()
    assert b"x-mirror-to30517578125" in raw
    names = module_vocabulary(module).names
    assert names[0] == "x-mirror-to"


def test_short_literals_compared_inline_come_from_the_constants():
    # rustc compares a value with the 8-byte prefix "sandbox-" as one i64.const: the bytes are in no
    # data segment, only in the code
    module = FIXTURES / "bugs/rust_value_prefix/bug_rust_value_prefix.wasm"
    assert b"sandbox-" not in module.read_bytes()
    assert "sandbox-" in harvest_strings(module)
    inline = """
    (module (memory (export "memory") 1)
      (func (export "f") (param i64) (result i32)
        (i64.eq (local.get 0) (i64.const 0x2d786f62646e6173))))
    """
    assert "sandbox-" in harvest_strings(bytes(wasmtime.wat2wasm(inline)))
