;; Engine micro-benchmark module: loops that call host functions, and exports to call from Python.
(module
  (import "env" "h_noop" (func $noop (param i32 i32) (result i32)))
  (import "env" "h_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 64) ":path")
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (if (i32.gt_u (global.get $heap) (i32.const 120000)) (then (global.set $heap (i32.const 4096))))
    (local.get $p))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "nop"))
  ;; n guest->host calls of a host function that does nothing
  (func (export "loop_noop") (param $n i32) (local $i i32)
    (loop $l
      (drop (call $noop (local.get $i) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  ;; n proxy-wasm-like get_header calls: the host reads a key, calls malloc, writes value + 2 u32
  (func (export "loop_get") (param $n i32) (local $i i32)
    (loop $l
      (drop (call $get (i32.const 64) (i32.const 5) (i32.const 0) (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
)
