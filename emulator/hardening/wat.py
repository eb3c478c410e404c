"""The WebAssembly text a guest plan compiles to: imports of every host function, the well-formed
prologue that writes the sentinel state, the allocator, and the planned calls in the callbacks of
their phase; plus the probe module that reads the sentinel state back.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from abi import HOST_FUNCTIONS, WASI_FUNCTIONS, callbacks_for, encode_pairs

from .layout import (
    _LAYOUT,
    CLUSTER,
    COUNTER_VALUE,
    GAUGE_VALUE,
    HEAP,
    MEM_PAGES,
    PAGE,
    PAYLOADS,
    SENTINEL,
    SENTINEL_COUNTER,
    SENTINEL_GAUGE,
    SENTINEL_ITEM,
    SENTINEL_KEY,
    SENTINEL_QUEUE,
    SENTINEL_VALUE,
    U32,
)

if TYPE_CHECKING:
    from .calls import HostCall
    from .plans import GuestPlan

__all__: list[str] = []


# phase -> (callback export, condition on its first argument or None)
_PHASE_CALLBACK: dict[str, tuple[str, str | None]] = {
    "request_headers": ("proxy_on_request_headers", None),
    "request_body": ("proxy_on_request_body", None),
    "request_trailers": ("proxy_on_request_trailers", None),
    "response_headers": ("proxy_on_response_headers", None),
    "response_body": ("proxy_on_response_body", None),
    "response_trailers": ("proxy_on_response_trailers", None),
    "log": ("proxy_on_log", None),
    "stream_done": ("proxy_on_done", "stream"),
    "stream_delete": ("proxy_on_delete", "stream"),
    "stream_context_create": ("proxy_on_context_create", "stream"),
    "root_context_create": ("proxy_on_context_create", "root"),
    "vm_start": ("proxy_on_vm_start", None),
    "configure": ("proxy_on_configure", None),
    "initialize": ("_initialize", None),
    "tick": ("proxy_on_tick", None),
    "http_call_response": ("proxy_on_http_call_response", None),
    "queue_ready": ("proxy_on_queue_ready", None),
    "foreign_function": ("proxy_on_foreign_function", None),
    "root_done": ("proxy_on_done", "root"),
    "tcp_new_connection": ("proxy_on_new_connection", None),
    "tcp_downstream_data": ("proxy_on_downstream_data", None),
    "tcp_upstream_data": ("proxy_on_upstream_data", None),
    "tcp_close": ("proxy_on_downstream_connection_close", None),
}
_ROOT_CONTEXT = 1  # the first plugin of a fresh VM gets context id 1
_STREAM_CALLBACKS = (
    "proxy_on_context_create",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
    "proxy_on_delete",
)
_MULTI = {
    "concurrent_streams": _STREAM_CALLBACKS,
    "stream_all": _STREAM_CALLBACKS,
    "tcp_all": (
        "proxy_on_context_create",
        "proxy_on_new_connection",
        "proxy_on_downstream_data",
        "proxy_on_upstream_data",
        "proxy_on_downstream_connection_close",
        "proxy_on_upstream_connection_close",
        "proxy_on_done",
        "proxy_on_log",
        "proxy_on_delete",
    ),
}
"""Multi-callback phases: every listed callback of a stream context runs the next segment."""


def _wat_sig(params: Sequence[str], results: Sequence[str]) -> str:
    p = f" (param {' '.join(params)})" if params else ""
    r = f" (result {' '.join(results)})" if results else ""
    return p + r


def _const(ty: str, value: int) -> str:
    if ty == "i64":
        value &= (1 << 64) - 1
        return f"(i64.const {value - (1 << 64) if value >> 63 else value})"
    value &= U32
    return f"(i32.const {value - (1 << 32) if value >> 31 else value})"


def _wat_call(call: HostCall) -> tuple[str, bool]:
    """``(call $... consts)`` and whether it leaves an i32 on the stack."""
    sig = call.signature
    prefix = "env" if call.module == "env" else "wasi"
    args = " ".join(_const(t, a) for t, a in zip(sig.params, call.args, strict=True))
    return f"(call ${prefix}_{call.function} {args})", bool(sig.results)


def _wat_bytes(raw: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in raw)


def _store_bytes(addr: int, raw: bytes) -> str:
    """Code that writes ``raw`` at ``addr`` (so clobbered memory cannot change it)."""
    out = []
    for i in range(0, len(raw), 4):
        chunk = raw[i : i + 4]
        if len(chunk) == 4:
            out.append(f"(i32.store (i32.const {addr + i}) (i32.const {struct.unpack('<i', chunk)[0]}))")
        else:
            out.extend(f"(i32.store8 (i32.const {addr + i + j}) (i32.const {b}))" for j, b in enumerate(chunk))
    return "\n    ".join(out)


def _imports() -> list[str]:
    lines = [f'  (import "env" "{n}" (func $env_{n}{_wat_sig(s.params, s.results)}))' for n, s in HOST_FUNCTIONS.items()]
    lines += [f'  (import "wasi_snapshot_preview1" "{n}" (func $wasi_{n}{_wat_sig(s.params, s.results)}))' for n, s in WASI_FUNCTIONS.items()]
    return lines


_IMPORTS = "\n".join(_imports())
_S_KEY, _S_VALUE, _S_COUNTER, _S_GAUGE, _S_QUEUE, _S_ITEM = (SENTINEL + 0x40 * i for i in range(6))
_S_OUT = SENTINEL + 0x200  # prologue out-slots
_S_HEADERS = SENTINEL + 0x400


def _sentinel_setup() -> str:
    parts = [
        (_S_KEY, SENTINEL_KEY),
        (_S_VALUE, SENTINEL_VALUE),
        (_S_COUNTER, SENTINEL_COUNTER),
        (_S_GAUGE, SENTINEL_GAUGE),
        (_S_QUEUE, SENTINEL_QUEUE),
        (_S_ITEM, SENTINEL_ITEM),
        (_S_HEADERS, encode_pairs([(b":path", b"/callout"), (b":method", b"GET"), (b":authority", b"hardening")])),
        (_S_HEADERS + 0x100, CLUSTER),
    ]
    return "\n    ".join(_store_bytes(a, r) for a, r in parts)


def _prologue() -> str:
    """Well-formed calls in ``proxy_on_vm_start`` whose effects must survive everything after."""
    return f"""
    (local $ok i32)
    {_sentinel_setup()}
    (local.set $ok (i32.const 1))
    (if (call $env_proxy_set_shared_data (i32.const {_S_KEY}) (i32.const {len(SENTINEL_KEY)}) (i32.const {_S_VALUE}) (i32.const {len(SENTINEL_VALUE)}) (i32.const 0))
      (then (local.set $ok (i32.const 0))))
    (if (call $env_proxy_define_metric (i32.const 0) (i32.const {_S_COUNTER}) (i32.const {len(SENTINEL_COUNTER)}) (i32.const {_S_OUT}))
      (then (local.set $ok (i32.const 0))))
    (global.set $s_counter (i32.load (i32.const {_S_OUT})))
    (if (call $env_proxy_increment_metric (global.get $s_counter) (i64.const {COUNTER_VALUE})) (then (local.set $ok (i32.const 0))))
    (if (call $env_proxy_define_metric (i32.const 1) (i32.const {_S_GAUGE}) (i32.const {len(SENTINEL_GAUGE)}) (i32.const {_S_OUT + 4}))
      (then (local.set $ok (i32.const 0))))
    (global.set $s_gauge (i32.load (i32.const {_S_OUT + 4})))
    (if (call $env_proxy_record_metric (global.get $s_gauge) (i64.const {GAUGE_VALUE})) (then (local.set $ok (i32.const 0))))
    (if (call $env_proxy_register_shared_queue (i32.const {_S_QUEUE}) (i32.const {len(SENTINEL_QUEUE)}) (i32.const {_S_OUT + 8}))
      (then (local.set $ok (i32.const 0))))
    (global.set $s_queue (i32.load (i32.const {_S_OUT + 8})))
    (if (call $env_proxy_enqueue_shared_queue (global.get $s_queue) (i32.const {_S_ITEM}) (i32.const {len(SENTINEL_ITEM)}))
      (then (local.set $ok (i32.const 0))))
    (call $env_proxy_log (i32.const 2) (i32.const {_S_ITEM}) (i32.const {len(SENTINEL_ITEM)}))
    (drop)
    (global.set $prologue_ok (local.get $ok))"""


def _configure_setup(phase: str) -> str:
    if phase == "tick":
        return "(drop (call $env_proxy_set_tick_period_milliseconds (i32.const 10)))"
    if phase == "http_call_response":
        return (
            f"(drop (call $env_proxy_http_call (i32.const {_S_HEADERS + 0x100}) (i32.const {len(CLUSTER)}) "
            f"(i32.const {_S_HEADERS}) (i32.const {len(encode_pairs([(b':path', b'/callout'), (b':method', b'GET'), (b':authority', b'hardening')]))}) "
            f"(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const {_S_OUT + 12})))"
        )
    return ""


def _allocator(plan: GuestPlan) -> str:
    grow_if_needed = f"""
    (if (i32.gt_u (i32.add (global.get $heap) (local.get $n)) (i32.mul (memory.size) (i32.const {PAGE})))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))"""
    bump = f"""{grow_if_needed}
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p)"""
    kind = plan.allocator
    body = ""
    if kind == "bump":
        body = bump
    elif kind == "reentrant":
        assert plan.reentrant is not None
        call, has_result = _wat_call(plan.reentrant)
        body = f"""
    (global.set $na (i32.add (global.get $na) (i32.const 1)))
    {f"(global.set $ra {call})" if has_result else call}
    {bump}"""
    elif kind == "grow":
        body = f"""
    (local.set $p (i32.mul (memory.size) (i32.const {PAGE})))
    (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))
    (local.get $p)"""
    elif kind == "zero":
        body = "(i32.const 0)"
    elif kind == "end":
        body = f"(i32.sub (i32.mul (memory.size) (i32.const {PAGE})) (i32.const 2))"
    elif kind == "huge":
        body = _const("i32", U32 - 15)
    elif kind == "random":
        body = _const("i32", plan.allocator_value)
    elif kind == "alternate":
        body = f"""
    (global.set $na (i32.add (global.get $na) (i32.const 1)))
    (if (result i32) (i32.and (global.get $na) (i32.const 1)) (then {_const("i32", plan.allocator_value)}) (else {bump}))"""
    elif kind == "trap":
        body = "(unreachable)"
    else:
        raise ValueError(f"unknown allocator {kind!r}")
    return f'  (func (export "{plan.allocator_export}") (param $n i32) (result i32) (local $p i32)\n    {body})'


def _plan_wat(plan: GuestPlan) -> str:
    n = len(plan.calls)
    lines = [f";; hostile guest: {plan.describe().splitlines()[0]}", "(module", _IMPORTS]
    lines.append(f'  (memory (export "memory") {MEM_PAGES})')
    lines.append(f'  (data (i32.const {PAYLOADS}) "{_wat_bytes(_LAYOUT.data)}")')
    lines.append(f"  (global $heap (mut i32) (i32.const {HEAP}))")
    for name in ("n", "ran", "ra", "na", "prologue_ok", "s_counter", "s_gauge", "s_queue"):
        init = -1 if name == "ra" else 0
        lines.append(f'  (global ${name} (export "{name}") (mut i32) (i32.const {init}))')
    for i in range(n):
        lines.append(f'  (global $r{i} (export "r{i}") (mut i32) (i32.const -1))')
        lines.append(f'  (global $m{i} (export "m{i}") (mut i32) (i32.const 0))')
    lines.append(_allocator(plan))
    segments = list(plan.segments) if plan.phase in _MULTI else [n]
    lines.append("  (global $seg (mut i32) (i32.const 0))")
    first = 0
    for k, size in enumerate(segments):
        body = []
        for i in range(first, first + size):
            text, has_result = _wat_call(plan.calls[i])
            body.append(f"(global.set $m{i} (memory.size))")
            body.append(f"(global.set $r{i} {text})" if has_result else f"{text} (global.set $r{i} (i32.const 0))")
            body.append(f"(global.set $n (i32.const {i + 1}))")
        lines.append(f"  (func $seg{k}\n    " + ("\n    ".join(body) or "(nop)") + ")")
        first += size
    dispatch = "\n      ".join(
        f"(if (i32.eq (global.get $seg) (i32.const {k})) (then (global.set $seg (i32.const {k + 1})) (call $seg{k}) (br $done)))" for k in range(len(segments))
    )
    lines.append(f"  (func $run\n    (global.set $ran (i32.const 1))\n    (block $done\n      {dispatch}))")
    lines.append('  (func (export "run") (call $run))')
    lines.append('  (func (export "proxy_abi_version_0_2_1"))')
    target, cond = _PHASE_CALLBACK.get(plan.phase, ("", None))
    lines.append(f'  (func (export "_initialize") {"(call $run)" if target == "_initialize" else ""})')
    for name, sig in callbacks_for("0.2.1").items():
        params = " ".join(f"(param $a{i} {t})" for i, t in enumerate(sig.params))
        result = f" (result {sig.results[0]})" if sig.results else ""
        locals_ = ""
        pre = ""
        if name == "proxy_on_vm_start":
            locals_, pre = "", _prologue()
        if name == "proxy_on_configure":
            pre = _configure_setup(plan.phase)
        run = ""
        if plan.phase in _MULTI and name in _MULTI[plan.phase]:
            run = f"(if (i32.ne (local.get $a0) (i32.const {_ROOT_CONTEXT})) (then (call $run)))"
        elif name == target:
            if cond == "root":
                run = f"(if (i32.eq (local.get $a0) (i32.const {_ROOT_CONTEXT})) (then (call $run)))"
            elif cond == "stream":
                run = f"(if (i32.ne (local.get $a0) (i32.const {_ROOT_CONTEXT})) (then (call $run)))"
            else:
                run = "(call $run)"
        ret = ""
        if sig.results:
            ret = "(i32.const 1)" if name in ("proxy_on_vm_start", "proxy_on_configure", "proxy_validate_configuration", "proxy_on_done") else "(i32.const 0)"
        lines.append(f'  (func (export "{name}") {params}{result}{locals_}\n    {pre}\n    {run}\n    {ret})')
    lines.append(")")
    return "\n".join(lines) + "\n"


_PROBE_WAT = f"""
(module
  (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_metric" (func $metric (param i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const {HEAP}))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  ;; probe: shared data -> 0x100/0x104 (status 0x200), counter -> 0x118 (status 0x204),
  ;; gauge -> 0x128 (status 0x208), queue token -> 0x130 (status 0x20c), log status 0x210
  (func (export "probe")
    {_sentinel_setup()}
    (i32.store (i32.const 0x200) (call $get (i32.const {_S_KEY}) (i32.const {len(SENTINEL_KEY)}) (i32.const 0x100) (i32.const 0x104) (i32.const 0x108)))
    (drop (call $define (i32.const 0) (i32.const {_S_COUNTER}) (i32.const {len(SENTINEL_COUNTER)}) (i32.const 0x110)))
    (i32.store (i32.const 0x204) (call $metric (i32.load (i32.const 0x110)) (i32.const 0x118)))
    (drop (call $define (i32.const 1) (i32.const {_S_GAUGE}) (i32.const {len(SENTINEL_GAUGE)}) (i32.const 0x120)))
    (i32.store (i32.const 0x208) (call $metric (i32.load (i32.const 0x120)) (i32.const 0x128)))
    (i32.store (i32.const 0x20c) (call $resolve (i32.const 0) (i32.const 0) (i32.const {_S_QUEUE}) (i32.const {len(SENTINEL_QUEUE)}) (i32.const 0x130)))
    (i32.store (i32.const 0x210) (call $log (i32.const 2) (i32.const {_S_ITEM}) (i32.const {len(SENTINEL_ITEM)}))))
)
"""
