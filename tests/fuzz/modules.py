"""Tiny filters with planted bugs, written for the fuzz tests (compiled with wasmtime.wat2wasm)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

_PRELUDE = """
  (memory (export "memory") 2)
  (global $top (mut i32) (i32.const 131072))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  ;; keep n bytes for good: move the top of the heap and grow memory under it
  (func $leak (param $n i32)
    (global.set $top (i32.add (global.get $top) (local.get $n)))
    (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 1))))))
"""

LEAK_EVERY_REQUEST = f"""
(module {_PRELUDE}
  ;; 16 KiB lost on every request
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $leak (i32.const 16384)) (i32.const 0))
)
"""

LEAK_ON_CHUNKING = f"""
(module {_PRELUDE}
  ;; 16 KiB lost for every request body frame that does not end the stream: only some chunkings leak
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (if (i32.eqz (local.get 2)) (then (call $leak (i32.const 16384))))
    (i32.const 0))
)
"""

NEVER_DONE = f"""
(module {_PRELUDE}
  ;; the root context asks Envoy to wait (on_done returns false) and never calls proxy_done
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 0))
)
"""


def compile_wat(text: str, directory: Path, name: str) -> Path:
    """Compile WebAssembly text to ``directory/name.wasm``."""
    path = directory / f"{name}.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(text)))
    return path
