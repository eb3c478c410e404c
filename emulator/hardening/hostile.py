"""Hardening fuzzers (issue #8): hostile guests and malformed modules.

Two campaigns prove that whatever a guest does, the emulator keeps running, reports clearly and
keeps its state intact:

* **Hostile guests** (:func:`run_hostile_campaign`, :func:`draw_plan`, :func:`run_plan`): generated
  WAT modules import every ``env`` function (and every WASI function) and make a planned sequence
  of host calls with adversarial constants baked in: out-of-bounds pointers and sizes, sizes that
  overflow u32 (``ptr + size > 2**32``), invalid enums, calls from the wrong phase (``_initialize``,
  ``proxy_on_vm_start``, the VM context, a context that does not exist, stream callbacks,
  ``on_log``...), re-entrant calls (the guest allocator itself makes a host call) and an allocator
  that returns garbage (0, an address past the end, a huge value), grows memory or traps. Each call
  must return a proper status or trap cleanly, no Python exception may escape except emulator
  errors, and the host state written by earlier well-formed calls (shared data, metrics, a queue,
  the log) must survive: a fresh VM in the same host still reads it.
* **Malformed modules** (:func:`run_mutation_campaign`, :func:`mutate`, :func:`load_mutant`):
  truncated, bit-flipped, byte-smashed, section-shuffled and spliced versions of the fixtures, plus
  generated modules with wrong signatures for known imports and exports. Each must give a
  :class:`~emulator.ModuleLoadError` or :class:`~emulator.PluginStartError`, or start; a module
  that starts is exercised with one HTTP exchange and ticks, where a trap is fine and anything
  else is not. Guest code runs under a wall-clock deadline (wasmtime epochs), so a mutant that
  loops forever is stopped instead of hanging the campaign.

Plans and mutants are drawn through a :class:`Chooser`: :class:`RandomChooser` (seeded, for the
campaigns) or :class:`DataChooser` (a hypothesis ``data`` object, for shrinking tests)::

    from emulator.hardening import run_hostile_campaign, run_mutation_campaign
    run_hostile_campaign(calls=2000, seed=1)     # {"calls": 2013, "crashes": 0, "escaped_exceptions": 0, ...}
    run_mutation_campaign(mutants=300, seed=1)   # {"mutants": 300, "load_errors": ..., "started": ..., ...}

Long runs by hand (each chunk in a child process, so a crash is counted, not fatal)::

    python -m emulator.hardening hostile --calls 100000 --seed 1 --isolate 10000
    python -m emulator.hardening mutants --mutants 10000 --seed 1 --isolate 1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

from abi import ALLOCATOR_IMPORTS, HOST_FUNCTIONS, START_IMPORTS, WASI_FUNCTIONS, Status, WasiErrno, callbacks_for, encode_pairs, encode_path, roles
from abi.leb128 import encode_uleb
from abi.signatures import Signature

from ..engines import EngineConfig, get_engine, wat2wasm
from ..errors import CallbackError, EmulatorError, HostCallNotImplemented, ModuleLoadError, PluginStartError, ProcExit, RestrictedHostCall
from ..host import Host
from ..http.types import Request, Response
from ..vm.program import Program

__all__ = [
    "ALLOCATORS",
    "MUTATION_STRATEGIES",
    "PHASES",
    "Chooser",
    "DataChooser",
    "GuestPlan",
    "HostCall",
    "MutantResult",
    "Mutant",
    "PlanResult",
    "RandomChooser",
    "draw_call",
    "payload",
    "screen_on_wasmtime",
    "slot",
    "draw_plan",
    "fixture_modules",
    "load_mutant",
    "mutate",
    "run_hostile_campaign",
    "run_mutation_campaign",
    "run_plan",
]

T = TypeVar("T")

U32 = 0xFFFFFFFF
PAGE = 65536
MEM_PAGES = 2
MEM = MEM_PAGES * PAGE
"""Initial linear memory of a hostile module (it may grow)."""
SLOTS = 0x100
"""Out-parameter slots (16 bytes apart) live in [SLOTS, PAYLOADS)."""
PAYLOADS = 0x400
"""Payloads (data segment) live in [PAYLOADS, SENTINEL)."""
SENTINEL = 0xC000
"""Sentinel strings and out-slots of the well-formed prologue; written by code, never by the data segment."""
HEAP = 0x10000
"""Start of the bump heap."""

VM_ID = "hardening"
ROOT_ID = "hardening-root"
SENTINEL_KEY = b"hardening.sentinel.key"
SENTINEL_VALUE = b"intact"
SENTINEL_COUNTER = b"hardening.sentinel.counter"
SENTINEL_GAUGE = b"hardening.sentinel.gauge"
SENTINEL_QUEUE = b"hardening.sentinel.queue"
SENTINEL_ITEM = b"sentinel-item"
COUNTER_VALUE = 5
GAUGE_VALUE = 42
CLUSTER = b"hardening-cluster"

_ENUM_LIMITS: dict[tuple[str, str], int] = {
    (name, p.name): p.enum_max for name, sig in HOST_FUNCTIONS.items() for p in sig.parameters if p.enum_max is not None
}
"""``(function, parameter) -> largest valid value`` of every enum the host checks (from the ABI table)."""
_KNOWN = {Status: frozenset(map(int, Status)), WasiErrno: frozenset(map(int, WasiErrno))}
"""Every value of a status type, whatever the function."""
_COPY_OUT = frozenset(name for name, sig in HOST_FUNCTIONS.items() if sig.allocates)
"""Host functions that may call the guest allocator (they return data through ``ptr**``)."""
_READS_FIRST = frozenset(name for name, sig in HOST_FUNCTIONS.items() if any(p.role == roles.IN for p in sig.parameters))
"""Host functions with an input range (``in`` in the ABI table): each reads every input buffer before
anything else but the enum check (cpp-host's ``getMemory`` at the top of the call), so a buffer
outside memory must give InvalidMemoryAccess."""


# ================================================================================================
# Choosers: one drawing interface for seeded campaigns and for hypothesis
# ================================================================================================


class Chooser(Protocol):
    """Where plans and mutants get their randomness from."""

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""

    def choice(self, options: Sequence[T]) -> T:
        """One element of ``options``."""

    def weighted(self, options: Sequence[tuple[T, float]]) -> T:
        """One element of ``(value, weight)`` pairs."""


class RandomChooser:
    """A :class:`Chooser` over ``random.Random(seed)`` (deterministic campaigns)."""

    def __init__(self, seed: int | random.Random) -> None:
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def weighted(self, options: Sequence[tuple[T, float]]) -> T:
        return self.rng.choices([o for o, _ in options], [w for _, w in options])[0]


class DataChooser:
    """A :class:`Chooser` over a hypothesis ``st.data()`` object, so failures shrink."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data = data
        self.st = st

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return options[self.data.draw(self.st.integers(0, len(options) - 1))]

    def weighted(self, options: Sequence[tuple[T, float]]) -> T:
        # Shrinks toward the first options, which callers list from most to least important.
        return self.choice([o for o, _ in options])


# ================================================================================================
# Payloads: the bytes hostile calls point at
# ================================================================================================


def _payload_catalog() -> dict[str, list[bytes]]:
    ok_headers = [(b":path", b"/x"), (b":method", b"GET"), (b":authority", b"hardening")]

    def pairs_raw(n: int, sizes: list[tuple[int, int]], tail: bytes) -> bytes:
        return struct.pack("<I", n) + b"".join(struct.pack("<II", k, v) for k, v in sizes) + tail

    return {
        "path": [
            encode_path(["plugin_root_id"]),
            encode_path(["plugin_name"]),
            encode_path(["plugin_vm_id", "x"]),
            encode_path(["node", "id"]),
            encode_path(["xds", "node"]),
            encode_path(["request", "headers", ":path"]),
            encode_path(["request", "headers"]),
            encode_path(["request", "path"]),
            encode_path(["request", "size"]),
            encode_path(["request", "time"]),
            encode_path(["request", "duration"]),
            encode_path(["request", "query"]),
            encode_path(["request"]),
            encode_path(["response", "code"]),
            encode_path(["response", "grpc_status"]),
            encode_path(["response", "total_size"]),
            encode_path(["response", "headers", ":status"]),
            encode_path(["upstream", "address"]),
            encode_path(["connection", "mtls"]),
            encode_path(["source", "port"]),
            encode_path(["metadata"]),
            encode_path(["filter_state", "wasm.x"]),
            encode_path(["wasm", "x"]),
            encode_path(["hardening", "list", "1"]),
            encode_path(["hardening", "list", "99999999999999999999"]),
            encode_path(["hardening", "nested"]),
            encode_path(["hardening", "bad"]),
            encode_path(["node", "id"], trailing_nul=True),
            b"\0",
            b"\0\0\0",
            b"request.path",
            b"\xff\xfe\0\x80",
            encode_path(["a" * 300]),
        ],
        "pairs": [
            encode_pairs(ok_headers),
            encode_pairs([*ok_headers, (b"content-type", b"application/grpc")]),
            encode_pairs([(b":status", b"200"), (b"x-ok", b"1")]),
            encode_pairs([(b":status", b"abc")]),
            encode_pairs([(b":status", b"")]),
            encode_pairs([(b":status", b"99999999999999999999999")]),
            encode_pairs([(b":method", b""), (b":path", b"")]),
            encode_pairs([(b"host", b"h"), (b"Content-Length", b"-5"), (b"X-UPPER", b"v")]),
            encode_pairs([(b"content-length", b"abc"), (b"grpc-status", b"x"), (b"grpc-status", b"99999999999")]),
            encode_pairs([(b"", b""), (b"\xff\xfe", b"\xc3\x28"), (b"a\0b", b"c\0d")]),
            encode_pairs([(b"x-inject", b"a\r\nb: c"), (b"x-long", b"v" * 4096)]),
            encode_pairs([(b"x-%d" % i, b"v") for i in range(200)]),
            encode_pairs([]),
            b"",
            b"\0",
            b"\xff\xff\xff\xff",
            pairs_raw(2, [(1, 1)], b"a\0b\0"),
            pairs_raw(1, [(5, 5)], b"ab\0c\0"),
            pairs_raw(1, [(1, 1)], b"aXbY"),
            pairs_raw(1, [(1, 1)], b"a\0b\0trailing"),
            pairs_raw(1, [(U32, U32)], b"a\0b\0"),
            pairs_raw(1025, [(0, 0)] * 1025, b"\0\0" * 1025),
        ],
        "foreign": [b"compress", b"uncompress", b"declare_property", b"set_envoy_filter_state", b"clear_route_cache", b"no_such_function", b"", b"\xff"],
        "foreign_args": [
            b"hello",
            b"\x0a\x01p\x10\x01\x18\x01\x22\x00\x28\x02",
            b"\x0a\x01x\x12\x01y\x18\x01",
            zlib.compress(b"hello " * 20),
            b"\x78\x9c not zlib",
            b"\x0a\xff",
            b"\x0b\x0c",
            b"\x1a\x80\x80\x80\x80\x10",
            b"",
        ],
        "metric": [b"counter-a", b"gauge-b", b"histogram-c", b"", b"\xff\xfe", b"wasmcustom.x"],
        "queue": [b"queue-a", b"queue-b", b"", b"\xff"],
        "shared_key": [b"k", b"key-b", b"", b"\xff\xfe", b"k" * 1000],
        "header_key": [
            b":path",
            b"content-type",
            b"x-new",
            b":status",
            b":method",
            b":authority",
            b"host",
            b"x-request-trailer",
            b"X-Upper",
            b"",
            b"\xff",
            b"grpc-status",
        ],
        "upstream": [CLUSTER, b"hardening", b"\x0a\x13\x0a\x11" + CLUSTER, b"", b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05\x0a\xff"],
        "vm_id": [b"", b"hardening", b"other-vm", b"\xff"],
        "string": [
            b"k",
            b"hardening",
            CLUSTER,
            b"compress",
            b"uncompress",
            b"declare_property",
            b"set_envoy_filter_state",
            b"clear_route_cache",
            b"no_such_function",
            b"queue-a",
            b"counter-a",
            b"\xff\xfe",
            b"\0",
            b"x" * 4096,
            b"\x0a\x13\x0a\x11" + CLUSTER,
            b"\x0a\xff\xff\xff\xff\x0f",
            b"\x0a\x05\x0a\xff",
        ],
        "bytes": [
            b"hello",
            b"\0" * 8,
            zlib.compress(b"hello " * 20),
            b"\x78\x9c not zlib",
            b"\x0a\x01p\x10\x01\x18\x01\x22\x00\x28\x02",
            b"\x0a\xff",
            b"\x0a\x01x\x12\x01y\x18\x01",
            b"\x0b\x0c",
            b"a b\tc\nd",
            b"\xc3\x28\xa0\xa1",
            bytes(range(256)),
            b"y" * 8192,
        ],
    }


_ROLE = {  # by input name; pairs and property paths come from the ABI table (see _FORMATS)
    "msg": "bytes",
    "path": "path",  # also WASI path arguments
    "value": "bytes",
    "data": "bytes",
    "key": "string",
    "details": "bytes",
    "body": "bytes",
    "upstream": "string",
    "service": "string",
    "method": "string",
    "name": "string",
    "vm_id": "vm_id",
    "args": "bytes",
    "addr": "string",
    "old_path": "string",
    "new_path": "string",
    "buf": "bytes",
}


@dataclass(frozen=True)
class _Layout:
    """Where each payload sits in guest memory, and the data segment that puts it there."""

    by_role: dict[str, list[tuple[int, int]]]
    iovecs: list[tuple[int, int]]
    data: bytes  # placed at PAYLOADS


def _build_layout() -> _Layout:
    blob = bytearray()
    where: dict[bytes, int] = {}
    by_role: dict[str, list[tuple[int, int]]] = {}

    def place(raw: bytes) -> tuple[int, int]:
        if raw not in where:
            while len(blob) % 8:
                blob.append(0)
            where[raw] = PAYLOADS + len(blob)
            blob.extend(raw)
        return where[raw], len(raw)

    for role, items in _payload_catalog().items():
        by_role[role] = [place(raw) for raw in items]
    hello, _ = place(b"hello")
    iov = [
        struct.pack("<IIII", hello, 5, hello, 5),
        struct.pack("<II", MEM + 100, 10),
        struct.pack("<II", hello, U32),
        struct.pack("<II", U32 - 2, 8),
        struct.pack("<II", 0, 0),
    ]
    iovecs = [(place(raw)[0], len(raw) // 8) for raw in iov]
    if PAYLOADS + len(blob) > SENTINEL:
        raise AssertionError("hostile payloads overflow their region")
    return _Layout(by_role, iovecs, bytes(blob))


_LAYOUT = _build_layout()


def payload(role: str, index: int = 0) -> tuple[int, int]:
    """``(ptr, size)`` of a payload every hostile module carries, for hand-written plans.

    Roles: ``path``, ``pairs``, ``string``, ``bytes``, ``foreign``, ``foreign_args``, ``metric``,
    ``queue``, ``shared_key``, ``header_key``, ``upstream``, ``vm_id``; index 0 is well-formed.
    """
    return _LAYOUT.by_role[role][index]


def slot(index: int = 0) -> int:
    """Address of out-parameter slot ``index`` (16 bytes each) in a hostile module."""
    return SLOTS + 16 * index


# ================================================================================================
# Plans
# ================================================================================================


@dataclass(frozen=True)
class HostCall:
    """One planned host call: ``module.function(*args)`` with the hostile features it has."""

    module: str
    function: str
    args: tuple[int, ...]
    tags: frozenset[str] = frozenset()

    @classmethod
    def make(cls, function: str, *args: int) -> HostCall:
        """A hand-written call (``env`` or WASI, found by name)."""
        module = "env" if function in HOST_FUNCTIONS else "wasi_snapshot_preview1"
        sig = (HOST_FUNCTIONS if module == "env" else WASI_FUNCTIONS)[function]
        if len(args) != len(sig.params):
            raise ValueError(f"{sig.describe()} takes {len(sig.params)} arguments, not {len(args)}")
        return cls(module, function, tuple(args), _tags(sig, args))

    @property
    def signature(self) -> Signature:
        return (HOST_FUNCTIONS if self.module == "env" else WASI_FUNCTIONS)[self.function]

    def __str__(self) -> str:
        args = ", ".join(hex(a) if a > 4096 or a < 0 else str(a) for a in self.args)
        return f"{self.function}({args})"


PHASES: dict[str, float] = {
    "root": 18,
    "stream_all": 12,
    "concurrent_streams": 6,
    "root_mid_stream": 6,
    "tcp_all": 4,
    "request_headers": 10,
    "request_body": 5,
    "request_trailers": 3,
    "response_headers": 6,
    "response_body": 4,
    "response_trailers": 2,
    "log": 4,
    "stream_done": 2,
    "stream_delete": 2,
    "stream_context_create": 2,
    "vm_start": 4,
    "configure": 4,
    "initialize": 3,
    "root_context_create": 2,
    "vm_context": 3,
    "bogus_context": 3,
    "tick": 3,
    "http_call_response": 4,
    "queue_ready": 3,
    "foreign_function": 2,
    "root_done": 2,
    "tcp_new_connection": 2,
    "tcp_downstream_data": 3,
    "tcp_upstream_data": 2,
    "tcp_close": 2,
}
"""Where the planned calls run, with their weights (wrong phases included on purpose)."""

ALLOCATORS: dict[str, float] = {
    "bump": 10,
    "reentrant": 4,
    "grow": 2,
    "zero": 2,
    "end": 2,
    "huge": 2,
    "random": 1,
    "alternate": 1,
    "trap": 1,
}
"""What the guest allocator does: a healthy bump allocator (growing memory when full), the same
making a host call first (re-entrancy), one that grows memory on every call, or garbage."""
_HEALTHY = frozenset({"bump", "reentrant", "grow"})

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
    "stream_all": (
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
    ),
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


@dataclass
class GuestPlan:
    """A hostile guest: where it runs its calls, what its allocator does, and the calls."""

    phase: str
    allocator: str
    calls: list[HostCall]
    reentrant: HostCall | None = None
    allocator_export: str = "malloc"
    allocator_value: int = 0
    trace: bool = True
    hostility: int = 30
    """Percent of arguments drawn hostile."""
    segments: tuple[int, ...] = ()
    """For the multi-callback phases (``stream_all``, ``tcp_all``): how many calls each callback
    makes, in order (every stream callback runs the next segment)."""
    exchange: str = "full"
    """The HTTP exchange that drives stream phases: ``full``, ``headers_only``, ``body`` or ``grpc``."""
    costs: bool = False
    """Run with ``Host(costs=True)`` (every callback metered; fuel on wasmtime)."""
    deadline: bool = False
    """Run with ``Host(callback_deadline_s=...)`` (epoch deadlines; ignored on wasmer)."""

    def wat(self) -> str:
        """The module, as WebAssembly text."""
        return _plan_wat(self)

    def wasm(self) -> bytes:
        """The module, compiled with :func:`emulator.engines.wat2wasm`."""
        return wat2wasm(self.wat())

    def describe(self) -> str:
        """A short human description (for failure reports)."""
        head = f"phase={self.phase} allocator={self.allocator}({self.allocator_export}) trace={self.trace} hostility={self.hostility}% exchange={self.exchange}"
        if self.segments:
            head += f" segments={list(self.segments)}"
        if self.costs or self.deadline:
            head += f" costs={self.costs} deadline={self.deadline}"
        if self.reentrant is not None:
            head += f" reentrant={self.reentrant}"
        return head + "".join(f"\n  {i}: {c}" for i, c in enumerate(self.calls))


def _in(ptr: int, size: int) -> bool:
    """The input buffer lies inside the initial memory."""
    return ptr + size <= MEM


def _input_pair(ch: Chooser, role: str, hostile: bool) -> tuple[tuple[int, int], str]:
    pool = _LAYOUT.by_role[role]
    if not hostile:
        # the first payloads of each role are the well-formed ones: prefer them
        return (ch.choice(pool[:3]) if ch.integer(0, 1) else ch.choice(pool)), "valid"
    pick = ch.weighted(
        [
            ("oob", 2),
            ("overflow", 2),
            ("wrap", 2),
            ("straddle", 1),
            ("huge", 1),
            ("other_payload", 2),
            ("empty", 1),
            ("zero_page", 1),
            ("overread", 1),
            ("empty_oob", 1),
            ("whole_memory", 1),
            ("random", 1),
        ]
    )
    if pick == "other_payload":
        return ch.choice(_LAYOUT.by_role[ch.choice(sorted(_LAYOUT.by_role))]), "valid"
    if pick == "empty":
        return (ch.choice([0, pool[0][0]]), 0), "valid"
    ptr = ch.choice(pool)[0]
    if pick == "oob":
        return (MEM + ch.integer(0, 4096), ch.integer(1, 64)), "oob"
    if pick == "straddle":
        return (MEM - ch.integer(1, 8), ch.integer(9, 64)), "oob"
    if pick == "overflow":
        return (U32 - ch.integer(0, 15), ch.integer(17, 64)), "oob"  # ptr + size > 2**32
    if pick == "wrap":
        return (ptr, (1 << 32) - ptr + ch.integer(1, 16)), "oob"  # ptr + size wraps to a small u32
    if pick == "huge":
        return (ptr, ch.choice([U32, 1 << 31, MEM])), "oob"
    if pick == "zero_page":
        return (0, ch.integer(1, 64)), "valid"
    if pick == "overread":
        return (ptr, ch.integer(1, 2048)), "valid"
    if pick == "empty_oob":
        return (ch.choice([MEM + 1, U32, 1 << 31]), 0), "empty_oob"
    if pick == "whole_memory":  # large but valid: bodies past Envoy's buffer limit, huge header values
        return ch.choice([(0, MEM), (HEAP, MEM - HEAP), (PAYLOADS, SENTINEL - PAYLOADS)]), "valid"
    p, s = ch.integer(0, U32), ch.integer(0, U32)
    return (p, s), ("valid" if _in(p, s) and s else "oob" if s else "empty_oob")


def _out_ptr(ch: Chooser, width: int, hostile: bool) -> tuple[int, bool]:
    if not hostile:
        return SLOTS + 16 * ch.integer(0, (PAYLOADS - SLOTS) // 16 - 1), True
    pick = ch.weighted([("oob", 2), ("straddle", 2), ("top", 2), ("zero", 1), ("payload", 1), ("random", 1)])
    if pick == "zero":
        return 0, True
    if pick == "oob":
        return MEM + ch.integer(0, 64), False
    if pick == "straddle":
        return MEM - ch.integer(1, width - 1), False
    if pick == "top":
        return U32 - ch.integer(0, width - 1), False
    if pick == "payload":
        role = ch.choice(sorted(_LAYOUT.by_role))
        return ch.choice(_LAYOUT.by_role[role])[0], True
    p = ch.integer(0, U32)
    return p, p + width <= MEM


_ENDS_THE_CALL = frozenset({"proc_exit", "envoy_resolve_dns"})
"""Calls that always end the guest's callback (drawn rarely, or plans would be short)."""
_I64_POOL = (0, 1, 5, -1, (1 << 63) - 1, -(1 << 63), 1 << 32, -(1 << 31))
_PHASE_MAP = {
    "stream_all": (0, 1, 2, 3),
    "concurrent_streams": (0, 1, 2, 3),
    "root_mid_stream": (0, 1),
    "request_headers": (0,),
    "request_body": (0, 1),
    "request_trailers": (1, 0),
    "response_headers": (2,),
    "response_body": (2, 3),
    "response_trailers": (3, 2),
    "log": (0, 2, 3),
    "http_call_response": (6, 7),
}
_PHASE_BUFFER = {
    "stream_all": (0, 1),
    "concurrent_streams": (0, 1),
    "root_mid_stream": (0,),
    "tcp_all": (2, 3),
    "request_body": (0,),
    "response_body": (1,),
    "tcp_downstream_data": (2,),
    "tcp_upstream_data": (3,),
    "http_call_response": (4,),
    "vm_start": (6,),
    "configure": (7,),
    "foreign_function": (8,),
}


def _scalar(ch: Chooser, name: str, function: str, hostile: bool, phase: str) -> int:
    """An integer argument: a sensible value for the phase, or (``hostile``) a nasty one."""

    def pick(sane: Sequence[int], nasty: Sequence[int]) -> int:
        if not hostile:
            return ch.choice(sane)
        return ch.integer(0, U32) if ch.integer(0, 4) == 0 else ch.choice(nasty)

    limit = _ENUM_LIMITS.get((function, name))
    if limit is not None:
        if not hostile:
            if name == "map_type" and phase in _PHASE_MAP and ch.integer(0, 3):
                return ch.choice(_PHASE_MAP[phase])
            if name == "buffer_type" and phase in _PHASE_BUFFER and ch.integer(0, 3):
                return ch.choice(_PHASE_BUFFER[phase])
            return ch.integer(0, limit)
        return ch.choice([limit + 1, limit + 2, 1 << 31, U32, ch.integer(limit + 1, U32)])
    if name == "token":
        if function in ("proxy_enqueue_shared_queue", "proxy_dequeue_shared_queue"):
            return ch.choice([2, 3]) if not hostile else ch.choice([4, 0, U32, 1 << 31, 5, 6])  # 1 is the sentinel queue
        return pick((5, 6, 9, 10), (1, 2, 3, 4, 0, U32, 7, 1 << 31))
    if name == "metric_id":  # 4 and 5 are the sentinels
        return ch.choice([8, 9, 10, 12, 13, 14]) if not hostile else ch.choice([0, 1, 2, 3, 7, 11, U32, 1 << 31, 0x10000008, 0xFFFFFFF8])
    if name == "context_id":
        return pick((1, 2, 3, 4), (0, 99, U32, 1 << 31))
    if name == "status_code":
        return pick((200, 403, 503), (0, 99, 600, U32, 1 << 31))
    if name == "grpc_status":
        return pick((0, 14, 16), (17, U32, 1 << 31))
    if name == "timeout_ms":
        return pick((100, 1000), (0, (1 << 31) - 1, 1 << 31, U32))
    if name == "period_ms":
        return pick((10, 1000, 0), (1, U32, 1 << 31))
    if name == "start":
        return pick((0, 1, 5), (1 << 31, U32, U32 - 3, 100))
    if name in ("max_size", "size"):
        return pick((0, 5, 100, U32), (1 << 31, U32 - 3, 1))
    if name == "end_stream":
        return pick((0, 1), (2, U32))
    if name == "cas":
        return pick((0,), (1, 2, U32))
    if name == "fd" or name.endswith("_fd") or name == "to":
        return pick((1, 2), (0, 3, 4, U32))
    if name == "clock_id":
        return pick((0, 1), (2, 3, 4, U32))
    if name == "code":
        return pick((0, 1), (255, U32))
    if name in ("iovs_len", "nsubs"):
        return pick((0, 1, 2), (3, 1 << 29, U32))
    if name == "buf_len":
        return pick((0, 16, 1024), (65536, 65537, U32))
    return pick((0, 1, 2), (3, 0x7FFFFFFF, 1 << 31, U32))


_ROLE_BY_CALL = {
    ("proxy_call_foreign_function", "name"): "foreign",
    ("proxy_define_metric", "name"): "metric",
    ("proxy_register_shared_queue", "name"): "queue",
    ("proxy_resolve_shared_queue", "name"): "queue",
    ("proxy_get_shared_data", "key"): "shared_key",
    ("proxy_set_shared_data", "key"): "shared_key",
    ("proxy_http_call", "upstream"): "upstream",
    ("proxy_grpc_call", "upstream"): "upstream",
    ("proxy_grpc_stream", "upstream"): "upstream",
    ("proxy_call_foreign_function", "args"): "foreign_args",
}


_STREAM_FUNCTIONS = frozenset(
    name for name in HOST_FUNCTIONS if "header_map" in name or "buffer" in name or name.startswith(("proxy_continue", "proxy_close", "proxy_send_local"))
)


def _function_weight(name: str, phase: str) -> float:
    """Rare for calls that end the callback; favour what the phase can really use."""
    if name in _ENDS_THE_CALL:
        return 0.05
    if name in _STREAM_FUNCTIONS and phase in (*_PHASE_MAP, *_PHASE_BUFFER, "stream_done", "stream_delete"):
        return 4.0
    return 1.0


_FORMATS = {(name, p.name.removesuffix("_ptr")): p.format for name, sig in HOST_FUNCTIONS.items() for p in sig.parameters if p.format is not None}
"""``(function, input) -> wire format`` (``pairs`` or ``path``, from the ABI table): the payloads of that name."""


def _role(function: str, base: str) -> str:
    if "header_map" in function and base == "key":
        return "header_key"
    return _ROLE_BY_CALL.get((function, base)) or _FORMATS.get((function, base)) or _ROLE.get(base, "bytes")


class _Slot(NamedTuple):
    """How one argument (or pointer/size pair) of a call is drawn, from its role in the ABI table."""

    kind: str
    """``i64``, ``in`` (a ptr/size pair), ``iovecs`` (ptr/count), ``out`` (an out-pointer) or ``scalar``."""
    name: str
    """The parameter's name (a pair with a ``_ptr`` pointer is named without it)."""
    count: int
    """How many parameters it takes (2 for a pair)."""
    width: int = 4
    """For ``out``: how many bytes the host writes there."""


_OUT_ROLES = frozenset({roles.OUT, roles.COPY_OUT, roles.SIZE_OUT, roles.MEM})
"""Drawn as out-pointers: copy-out slots are two u32 out-pointers; ``mem`` arrays get a 4-byte one."""


def _param_kinds(sig: Signature) -> list[_Slot]:
    """How each parameter of ``sig`` is drawn (see :class:`_Slot`)."""
    out = []
    i = 0
    params = sig.parameters
    while i < len(params):
        p = params[i]
        if p.type == "i64":
            out.append(_Slot("i64", p.name, 1))
        elif p.role == roles.IOV:
            out.append(_Slot("iovecs", p.name, 2))
        elif p.role in (roles.IN, roles.BUF):  # a buffer the host fills is drawn like an input: a range that may be hostile
            out.append(_Slot("in", p.name.removesuffix("_ptr"), 2))
        elif p.role in _OUT_ROLES:
            out.append(_Slot("out", p.name, 1, p.width or 4))
        else:
            out.append(_Slot("scalar", p.name, 1))
        i += out[-1].count
    return out


def _tags(sig: Signature, args: Sequence[int], mem: int = MEM) -> frozenset[str]:
    """What is hostile about ``args`` for a linear memory of ``mem`` bytes (the initial size by default)."""
    tags: set[str] = set()
    pos = 0
    for kind, name, count, width in _param_kinds(sig):
        a = args[pos : pos + count]
        pos += count
        if kind == "in":
            ptr, size = a
            # cpp-host's getMemory rejects ptr + size > memory even for an empty range
            tags.add("in_valid" if ptr + size <= mem or (ptr == 0 and size == 0) else "in_oob")
        elif kind == "iovecs":
            tags.add("iovecs")
        elif kind == "out":
            tags.add("out_valid" if a[0] + width <= mem else "out_oob")
        elif kind == "scalar":
            limit = _ENUM_LIMITS.get((sig.name, name))
            if limit is not None and a[0] > limit:
                tags.add("bad_enum")
    return frozenset(tags)


def draw_call(ch: Chooser, *, module: str | None = None, function: str | None = None, hostility: int = 30, phase: str = "root") -> HostCall:
    """One host call with arguments that are each hostile with probability ``hostility`` percent."""
    if function is None:
        module = ch.weighted([("env", 3), ("wasi_snapshot_preview1", 1)])
        table = HOST_FUNCTIONS if module == "env" else WASI_FUNCTIONS
        function = ch.weighted([(name, _function_weight(name, phase)) for name in sorted(table)])
    module = module or ("env" if function in HOST_FUNCTIONS else "wasi_snapshot_preview1")
    sig = (HOST_FUNCTIONS if module == "env" else WASI_FUNCTIONS)[function]
    args: list[int] = []

    def hostile() -> bool:
        return ch.integer(0, 99) < hostility

    for kind, name, _, width in _param_kinds(sig):
        if kind == "i64":
            if hostile():
                args.append(ch.choice(_I64_POOL) if ch.integer(0, 3) else ch.integer(-(1 << 63), (1 << 63) - 1))
            else:
                args.append(ch.choice([1, 5, 1000]))
        elif kind == "in":
            (ptr, size), _kind = _input_pair(ch, _role(function, name), hostile())
            args += [ptr, size]
        elif kind == "iovecs":
            if hostile():
                args += [ch.choice([MEM + 8, U32 - 4, 0, *(p for p, _ in _LAYOUT.iovecs)]), _scalar(ch, "iovs_len", function, True, phase)]
            else:
                args += list(_LAYOUT.iovecs[0])
        elif kind == "out":
            args.append(_out_ptr(ch, width, hostile())[0])
        else:
            args.append(_scalar(ch, name, function, hostile(), phase))
    return HostCall(module, function, tuple(args), _tags(sig, args))


def draw_plan(ch: Chooser, *, max_calls: int = 32, phase: str | None = None, allocator: str | None = None) -> GuestPlan:
    """A hostile guest plan (see :class:`GuestPlan`): each plan has its own hostility level, from
    mostly well-formed calls that reach deep host state to nearly every argument hostile."""
    phase = phase or ch.weighted(list(PHASES.items()))
    allocator = allocator or ch.weighted(list(ALLOCATORS.items()))
    hostility = ch.choice([10, 25, 50, 90])
    n = ch.integer(1, max_calls)
    calls = [draw_call(ch, hostility=hostility, phase=phase) for _ in range(n)]
    segments: list[int] = []
    if phase in _MULTI:
        left = n
        while left > 0:
            k = min(left, ch.integer(0, 6))
            segments.append(k)
            left -= k
    reentrant = None
    if allocator == "reentrant":
        if ch.integer(0, 1):
            function = ch.choice(sorted(ALLOCATOR_IMPORTS))
        else:
            function = ch.choice(["proxy_get_property", "proxy_set_shared_data", "proxy_http_call", "proxy_get_buffer_bytes", "proc_exit"])
        reentrant = draw_call(ch, function=function, hostility=hostility, phase=phase)
    return GuestPlan(
        phase=phase,
        allocator=allocator,
        calls=calls,
        reentrant=reentrant,
        allocator_export=ch.weighted([("malloc", 3), ("proxy_on_memory_allocate", 1)]),
        allocator_value=ch.choice([0, MEM, MEM - 2, U32 - 3, 1 << 31, ch.integer(0, U32)]),
        trace=ch.integer(0, 3) != 0,
        hostility=hostility,
        segments=tuple(segments),
        exchange=ch.weighted([("full", 4), ("headers_only", 1), ("body", 1), ("grpc", 1)]),
        costs=ch.integer(0, 4) == 0,
        deadline=ch.integer(0, 4) == 0,
    )


# ================================================================================================
# WAT generation
# ================================================================================================


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


# ================================================================================================
# Running a plan
# ================================================================================================


@dataclass
class PlanResult:
    """What happened to one plan: per-call statuses, the trap if any, and every problem found."""

    plan: GuestPlan
    reached: bool = False
    statuses: list[int | None] = field(default_factory=list)
    """Per planned call: the status the guest got, ``None`` if not reached (after a trap)."""
    trapped_at: int | None = None
    """Index of the call during which the guest trapped."""
    pages: list[int] = field(default_factory=list)
    """Per planned call: linear memory pages when it was made (memory may grow during a plan)."""
    trap: str | None = None
    """``restricted``, ``wasm``, ``proc_exit``, ``not_implemented`` or an emulator error name."""
    reentrant_calls: int = 0
    problems: list[str] = field(default_factory=list)
    """Oracle violations, corrupted state and reports that failed."""
    escaped: list[str] = field(default_factory=list)
    """Python exceptions that were not emulator errors (bugs)."""
    driver_errors: list[str] = field(default_factory=list)
    """Emulator errors raised to the test driver (allowed, counted)."""
    fidelity: list[str] = field(default_factory=list)
    """Answers that differ from cpp-host without hurting robustness (reported, not failures)."""
    logs_after_start: list[Any] = field(default_factory=list, repr=False)

    @property
    def calls_tried(self) -> int:
        """Host calls the guest really made (including the one it trapped in)."""
        return sum(s is not None for s in self.statuses) + (1 if self.trapped_at is not None else 0) + self.reentrant_calls

    def report(self) -> str:
        """A reproducer: the plan, what went wrong, and the WAT."""
        return "\n".join([self.plan.describe(), *self.escaped, *self.problems, "--- WAT ---", self.plan.wat()])


def _probe_program(host: Host) -> Program:
    key = host.engine.cache_key() + host.engine.name
    programs = host.session.cache("hardening.probe")
    prog = programs.get(key)
    if prog is None:
        prog = programs[key] = Program(host.engine, wat2wasm(_PROBE_WAT), cache=None, source="<hardening probe>")
    return prog


def _escaped(where: str, exc: BaseException) -> str:
    import traceback

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    return f"{where}: {type(exc).__name__}: {exc}\n{tb}"


def _classify_trap(err: CallbackError) -> tuple[str, BaseException | None]:
    cause = err.cause
    if isinstance(cause, RestrictedHostCall):
        return "restricted", None
    if isinstance(cause, ProcExit):
        return "proc_exit", None
    if isinstance(cause, HostCallNotImplemented):
        return "not_implemented", None
    if cause is None:
        return ("interrupt" if err.trap.kind in ("interrupt", "fuel") else "wasm"), None
    if isinstance(cause, EmulatorError):
        return type(cause).__name__, None
    return f"internal:{type(cause).__name__}", cause


def _global(vm: Any, name: str) -> int:
    return int(vm.instance.global_get(name)) & U32


def _exchange(shape: str) -> tuple[Request, Response]:
    headers = {":method": "POST", ":path": "/hardening?q=1", ":authority": "hardening", "content-type": "text/plain"}
    if shape == "headers_only":
        return Request({**headers, ":method": "GET"}), Response({":status": "204"})
    if shape == "body":
        return Request(headers, body="hello hostile world", chunks=7), Response({":status": "200"}, body="ok body", chunks=3)
    if shape == "grpc":
        return (
            Request({**headers, "content-type": "application/grpc", "te": "trailers"}, body=b"\0\0\0\0\x05hello"),
            Response({":status": "200", "content-type": "application/grpc"}, body=b"\0\0\0\0\x02ok", trailers={"grpc-status": "0"}),
        )
    return (
        Request(headers, body="hello hostile world", chunks=7, trailers={"x-request-trailer": "1"}),
        Response({":status": "200", "content-length": "2"}, body="ok", trailers={"x-response-trailer": "1"}),
    )


def _feed(stream: Any, side: str, message: Request | Response, *, until: str = "end") -> None:
    """Send one side of an exchange step by step, as ``Plugin.http_exchange`` does."""
    from ..http.types import as_body, chunked

    parts = chunked(as_body(message.body), message.chunks)
    trailers = message.trailers
    getattr(stream, f"send_{side}_headers")(message.headers, end_of_stream=not parts and trailers is None)
    if until == "headers":
        return
    for i, part in enumerate(parts):
        if stream.completed:
            return
        getattr(stream, f"send_{side}_body")(part, end_of_stream=i == len(parts) - 1 and trailers is None)
    if trailers is not None and not stream.completed:
        getattr(stream, f"send_{side}_trailers")(trailers)


def _finish(stream: Any, request: Request, response: Response) -> None:
    """Finish a stream whose request headers were sent: the rest of the request, the response, the end."""
    from ..http.types import as_body, chunked

    req = stream.request
    if not stream.completed and not req.ended:
        parts = chunked(as_body(request.body), request.chunks)
        for i, part in enumerate(parts):
            if stream.completed:
                break
            stream.send_request_body(part, end_of_stream=i == len(parts) - 1 and request.trailers is None)
        if request.trailers is not None and not stream.completed and not req.ended:
            stream.send_request_trailers(request.trailers)
    if not stream.completed and stream.upstream_request.headers is not None and stream.response.received_headers is None:
        _feed(stream, "response", response)
    stream.complete()


def _drive(plan: GuestPlan, host: Host, program: Program, result: PlanResult) -> Any:
    """Run the plan's phase; returns the plugin (or None if it did not start)."""
    phase = plan.phase
    vm = host.create_vm(program, vm_id=VM_ID)
    plugin = host.add_plugin(vm, root_id=ROOT_ID, name="hardening", plugin_config=b"hardening-config")
    root = plugin.root_context_id
    result.logs_after_start = list(host.logs)
    request, response = _exchange(plan.exchange)
    if phase == "root":
        vm.call("run", context_id=root)
    elif phase == "vm_context":
        vm.call("run", context_id=0)
    elif phase == "bogus_context":
        vm.call("run", context_id=4242)
    elif phase == "root_mid_stream":
        stream = plugin.http_stream()
        _feed(stream, "request", request, until="headers")
        vm.call("run", context_id=root)
        host.drain()
        _finish(stream, request, response)
    elif phase == "concurrent_streams":
        first = plugin.http_stream()
        _feed(first, "request", request, until="headers")
        second = plugin.http_stream()
        _feed(second, "request", request, until="headers")
        plugin.http_exchange(request, response)
        _finish(second, request, response)
        _finish(first, request, response)
    elif (
        phase.startswith("request_") or phase.startswith("response_") or phase in ("log", "stream_done", "stream_delete", "stream_context_create", "stream_all")
    ):
        plugin.http_exchange(request, response)
        if phase == "stream_all":
            plugin.http_exchange(request, response)
    elif phase == "tick":
        host.advance(25)
    elif phase == "http_call_response":
        for call in host.http_calls.pending():
            call.respond(200, headers={"x-callout": "1"}, body="callout-body", trailers={"x-t": "1"})
    elif phase == "foreign_function":
        host.foreign_functions.invoke_callback(plugin, 7, b"foreign-args")
    elif phase == "root_done":
        plugin.shutdown()
    elif phase.startswith("tcp_"):
        if phase == "tcp_all":
            conn = plugin.tcp_connection()
            conn.send_downstream(b"hello", end_of_stream=False)
            conn.send_upstream(b"world", end_of_stream=True)
            conn.send_downstream(b"more", end_of_stream=True)
        conn = plugin.tcp_connection()
        conn.send_downstream(b"ping", end_of_stream=False)
        conn.send_upstream(b"pong", end_of_stream=False)
        conn.close()
    host.drain()
    host.advance(10)
    return plugin


def _expected_trap_reasons(plan: GuestPlan, call: HostCall) -> set[str]:
    reasons: set[str] = set()
    if call.function == "proc_exit":
        reasons.add("proc_exit")
    if call.function == "envoy_resolve_dns":
        reasons.add("not_implemented")
    if plan.phase == "initialize" and call.function not in START_IMPORTS:
        reasons.add("restricted")
    if call.function in _COPY_OUT:
        if plan.allocator == "trap":
            reasons.add("wasm")
        if plan.allocator == "reentrant" and plan.reentrant is not None and plan.reentrant.function not in ALLOCATOR_IMPORTS:
            reasons.add("restricted")
    return reasons


def _check_statuses(plan: GuestPlan, result: PlanResult) -> None:
    """Per-call oracles on what the guest got back."""
    for i, (call, status) in enumerate(zip(plan.calls, result.statuses, strict=True)):
        if status is None:
            continue
        where = f"call {i} {call}"
        tags = _tags(call.signature, call.args, result.pages[i] * PAGE) if result.pages and result.pages[i] else call.tags
        if plan.phase == "initialize" and call.function not in START_IMPORTS:
            result.problems.append(f"{where}: returned {status} during _initialize, where cpp-host traps (RestrictedHostCall expected)")
            continue
        sig = call.signature
        if not sig.results:
            continue
        if sig.status_type is not None and status not in _KNOWN[sig.status_type]:
            kind = "a proxy-wasm status" if sig.status_type is Status else "a WASI errno the host uses"
            result.problems.append(f"{where}: returned {status}, not {kind}")
            continue
        if status not in sig.answers:  # Ok, the table's statuses, and the bad-pointer status for pointer calls
            expected = ", ".join(_status_name(call, a) for a in sorted(sig.answers))
            result.problems.append(f"{where}: returned {_status_name(call, status)}, which the ABI table does not list (expected {expected})")
            continue
        if sig.status_type is not Status:
            continue
        if "bad_enum" in tags:
            allowed = {Status.BadArgument}
            if call.function == "proxy_define_metric" and "in_oob" in tags:
                allowed.add(Status.InvalidMemoryAccess)  # cpp-host reads the name before the type check
            if status not in allowed:
                result.problems.append(f"{where}: invalid enum gave {Status(status).name}, expected {'/'.join(s.name for s in allowed)}")
            continue
        clean_ptrs = not (tags & {"in_oob", "out_oob", "iovecs"})
        if clean_ptrs and plan.allocator in _HEALTHY and status == Status.InvalidMemoryAccess:
            result.problems.append(f"{where}: InvalidMemoryAccess although every pointer is inside memory and the allocator is healthy")
        if call.function in _READS_FIRST and "in_oob" in tags and status != Status.InvalidMemoryAccess:
            result.problems.append(f"{where}: an input buffer outside memory gave {Status(status).name}, expected InvalidMemoryAccess")


def _check_state(plan: GuestPlan, host: Host, vm: Any, result: PlanResult) -> None:
    """The well-formed prologue's effects, the log and every report must survive the plan."""
    if vm is None or not _global(vm, "prologue_ok"):
        return
    entry = host.shared_data.get(SENTINEL_KEY, VM_ID)
    if entry is None or entry[0] != SENTINEL_VALUE:
        result.problems.append(f"shared data corrupted: {SENTINEL_KEY!r} is {entry!r}")
    counter = host.metrics.get(SENTINEL_COUNTER.decode())
    gauge = host.metrics.get(SENTINEL_GAUGE.decode())
    if counter != COUNTER_VALUE or gauge != GAUGE_VALUE:
        result.problems.append(f"metrics corrupted: counter={counter!r} gauge={gauge!r}")
    items = host.queues.contents(SENTINEL_QUEUE, VM_ID)
    if items[:1] != [SENTINEL_ITEM]:
        result.problems.append(f"shared queue corrupted: {items[:3]!r}")
    before = result.logs_after_start
    if host.logs[: len(before)] != before:
        result.problems.append("records of the log changed after they were written")


def _probe(host: Host, result: PlanResult) -> None:
    """A fresh, well-behaved VM in the same host still reads what the prologue wrote."""
    vm = host.create_vm(_probe_program(host), vm_id=VM_ID)
    plugin = host.add_plugin(vm, root_id="probe", name="probe")
    vm.call("probe", context_id=plugin.root_context_id)
    mem = vm.memory
    statuses = [mem.u32(0x200 + 4 * i) for i in range(5)]
    value = mem.read(mem.u32(0x100), mem.u32(0x104)) if statuses[0] == 0 else None
    if statuses != [0, 0, 0, 0, 0] or value != SENTINEL_VALUE or mem.u64(0x118) != COUNTER_VALUE or mem.u64(0x128) != GAUGE_VALUE:
        result.problems.append(
            f"a fresh VM cannot read the sentinel state: statuses={statuses} value={value!r} counter={mem.u64(0x118)} gauge={mem.u64(0x128)}"
        )


def _check_reports(host: Host, result: PlanResult) -> None:
    """Everything a test author would print must render."""
    try:
        if host.trace is not None:
            json.dumps(host.trace.to_json())
            host.trace.tail(50)
            for entry in host.trace:
                str(entry)
        for record in host.logs:
            record.envoy_line()
            json.dumps(record.to_json())
        json.dumps(host.metrics.all())
        host.shared_data.snapshot()
        for vm in host.vms:
            vm.recent_output()
    except Exception as exc:
        result.escaped.append(_escaped("rendering the trace/logs/metrics", exc))


def run_plan(plan: GuestPlan, *, engine: str = "wasmtime", wasm: bytes | None = None) -> PlanResult:
    """Run one hostile plan in a fresh host and check every property (see the module docstring)."""
    result = PlanResult(plan, statuses=[None] * len(plan.calls))
    host = Host(
        engine=engine,
        cache=False,
        trace=plan.trace,
        costs=plan.costs,
        callback_deadline_s=10.0 if plan.deadline and engine != "wasmer" else None,
        properties={"hardening": {"list": ["a", "b"], "n": 7, "nested": {"k": b"v"}, "bad": object()}},
    )
    try:
        program = Program(host.engine, wasm if wasm is not None else plan.wasm(), cache=None, source="<hostile guest>")
    except ModuleLoadError as exc:  # a generator bug, not an emulator one
        result.problems.append(f"the hostile module does not load: {exc}")
        return result
    plugin = None
    try:
        plugin = _drive(plan, host, program, result)
    except EmulatorError as exc:
        result.driver_errors.append(type(exc).__name__)
    except Exception as exc:
        result.escaped.append(_escaped(f"driving phase {plan.phase}", exc))
    vm = host.vms[0] if host.vms else None
    if vm is None:
        return result
    # the host still works: one more exchange (multi-callback plans run their next segments in it)
    failed_before = vm.failed
    try:
        if plugin is not None:
            stream = plugin.http_exchange(Request({":method": "GET", ":path": "/after", ":authority": "hardening"}), Response({":status": "200"}))
            if failed_before is not None and plugin.vm is vm and stream.local_response is not None and stream.local_response.status != 503:
                result.problems.append(f"a failed VM (fail closed) answered {stream.local_response.status}, not 503")
    except EmulatorError as exc:
        result.driver_errors.append(f"after: {type(exc).__name__}")
    except Exception as exc:
        result.escaped.append(_escaped("an exchange after the plan", exc))
    # what the guest saw
    multi = plan.phase in _MULTI
    result.reached = bool(_global(vm, "ran"))
    done = _global(vm, "n")
    for i in range(min(done, len(plan.calls))):
        result.statuses[i] = _global(vm, f"r{i}")
    result.pages = [_global(vm, f"m{i}") for i in range(len(plan.calls))]
    if plan.allocator == "reentrant":
        result.reentrant_calls = _global(vm, "na")
    if vm.failed is not None:
        result.trap, cause = _classify_trap(vm.failed)
        if cause is not None:
            result.escaped.append(_escaped(f"a host function raised inside the guest ({vm.failed.callback})", cause))
        if result.reached and done < len(plan.calls):
            result.trapped_at = done
            call = plan.calls[done]
            if result.trap not in _expected_trap_reasons(plan, call) and cause is None:
                result.problems.append(f"call {done} {call}: unexpected trap ({result.trap}): {vm.failed.reason}")
        elif result.trap not in ("restricted", "wasm", "proc_exit") and cause is None:
            result.problems.append(f"unexpected trap outside the planned calls ({result.trap}): {vm.failed.reason}")
    elif result.reached and done < len(plan.calls) and not multi:
        result.problems.append(f"the guest stopped at call {done} without a trap")
    if result.reached and plan.phase == "initialize" and vm.failed is None and any(c.function not in START_IMPORTS for c in plan.calls):
        result.problems.append("no RestrictedHostCall although the plan calls restricted functions during _initialize")
    _check_statuses(plan, result)
    # its state is intact, and a fresh VM still reads it
    try:
        _check_state(plan, host, vm, result)
        if _global(vm, "prologue_ok"):
            _probe(host, result)
    except EmulatorError as exc:
        result.driver_errors.append(f"probe: {type(exc).__name__}")
    except Exception as exc:
        result.escaped.append(_escaped("checking the host state after the plan", exc))
    _check_reports(host, result)
    return result


# ================================================================================================
# The hostile campaign
# ================================================================================================


def _status_name(call: HostCall, status: int) -> str:
    if call.module == "env" and call.signature.results and call.signature.status_type is not None:
        try:
            return Status(status).name
        except ValueError:
            return f"status {status}"
    if call.module != "env":
        try:
            return "wasi:" + WasiErrno(status).name
        except ValueError:
            return f"wasi:{status}"
    return "returned"


def run_hostile_campaign(
    calls: int,
    seed: int,
    *,
    engine: str = "wasmtime",
    max_calls_per_plan: int = 32,
    max_failures: int = 10,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run hostile plans until ``calls`` host calls were tried; returns the counts.

    ``{"calls", "plans", "crashes", "escaped_exceptions", "problems", "statuses": {name: n},
    "traps": {reason: n}, "phases": {...}, "driver_errors": {...}, "failures": [reports], "seconds",
    "engine", "seed"}``. ``crashes`` is 0 when this returns (a crash kills the process; run with
    ``--isolate`` from the command line to count crashes instead).
    """
    ch = RandomChooser(seed)
    statuses: Counter[str] = Counter()
    traps: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    drivers: Counter[str] = Counter()
    tried = plans = escaped = problems = fidelity = 0
    fidelity_examples: list[str] = []
    failures: list[str] = []
    start = time.perf_counter()
    while tried < calls:
        plan = draw_plan(ch, max_calls=max_calls_per_plan)
        result = run_plan(plan, engine=engine)
        plans += 1
        tried += result.calls_tried
        phases[plan.phase] += 1
        for call, status in zip(plan.calls, result.statuses, strict=True):
            if status is not None:
                statuses[_status_name(call, status)] += 1
        if result.trap is not None:
            traps[result.trap] += 1
            if result.trapped_at is not None:
                statuses[f"trap:{result.trap}"] += 1
        if result.reentrant_calls:
            statuses["reentrant"] += result.reentrant_calls
        for d in result.driver_errors:
            drivers[d] += 1
        escaped += len(result.escaped)
        problems += len(result.problems)
        fidelity += len(result.fidelity)
        if result.fidelity and len(fidelity_examples) < 3:
            fidelity_examples.append(result.fidelity[0])
        if (result.escaped or result.problems) and len(failures) < max_failures:
            failures.append(result.report())
        if progress is not None and plans % 50 == 0:
            progress({"calls": tried, "plans": plans, "escaped_exceptions": escaped, "problems": problems})
    return {
        "engine": engine,
        "seed": seed,
        "calls": tried,
        "plans": plans,
        "crashes": 0,
        "escaped_exceptions": escaped,
        "problems": problems,
        "fidelity_notes": fidelity,
        "fidelity_examples": fidelity_examples,
        "statuses": dict(statuses.most_common()),
        "traps": dict(traps.most_common()),
        "phases": dict(phases.most_common()),
        "driver_errors": dict(drivers.most_common()),
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 2),
    }


# ================================================================================================
# Malformed modules
# ================================================================================================

ROOT = Path(__file__).resolve().parents[2]


def fixture_modules(root: Path | None = None) -> list[Path]:
    """Every well-formed fixture module (``fixtures/*/*.wasm``), smallest first."""
    from ..vm.module import ModuleFormatError, parse_module

    base = (root or ROOT) / "fixtures"
    out = []
    for path in sorted(base.glob("*/*.wasm"), key=lambda p: (p.stat().st_size, str(p))):
        try:
            parse_module(path.read_bytes())
        except (ModuleFormatError, OSError):
            continue  # e.g. a fixture being rebuilt right now
        out.append(path)
    return out


@dataclass(frozen=True)
class Mutant:
    """One malformed module: its bytes, how it was made and from what."""

    wasm: bytes
    strategy: str
    source: str
    detail: str = ""
    expect_refused: bool = False
    """True for wrong-signature modules cpp-host refuses: starting one is a fidelity bug."""


def _sections(data: bytes) -> list[tuple[int, int, int, int]]:
    """``(id, header_start, payload_start, end)`` of each section (stops at the first malformed one)."""
    out = []
    pos = 8
    while pos < len(data):
        if not _section_fits(data, pos):
            break
        start = pos
        sid = data[pos]
        pos += 1
        size = shift = 0
        while True:
            b = data[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((sid, start, pos, pos + size))
        pos += size
    return out


def _section_fits(data: bytes, pos: int) -> bool:
    i = pos + 1
    size = shift = 0
    while i < len(data) and shift < 35:
        b = data[i]
        i += 1
        size |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return i + size <= len(data)
    return False


MUTATION_STRATEGIES: dict[str, float] = {
    "truncate": 3,
    "truncate_at_section": 1,
    "bitflip": 4,
    "section_bitflip": 5,
    "byteset": 2,
    "section_shuffle": 2,
    "section_drop": 2,
    "section_duplicate": 1,
    "section_size": 2,
    "splice": 1,
    "signature": 3,
}
"""How mutants are made, with their weights."""


def _weight(size: int) -> float:
    """Small modules compile in milliseconds, the Go ones in seconds: pick big ones rarely."""
    return 1.0 if size < 64_000 else 0.1 if size < 1_000_000 else 0.01


_INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0x60, 0x0B, 0x41)


def mutate(ch: Chooser, sources: Sequence[Path] | None = None, *, strategy: str | None = None) -> Mutant:
    """One mutant of a fixture (small fixtures are picked far more often: they compile fast)."""
    strategy = strategy or ch.weighted(list(MUTATION_STRATEGIES.items()))
    if strategy == "signature":
        return _signature_mutant(ch)
    paths = list(sources or fixture_modules())
    weights = [_weight(p.stat().st_size) for p in paths]
    path = ch.weighted(list(zip(paths, weights, strict=True)))
    data = path.read_bytes()
    if len(data) < 9 or not _sections(data):
        return Mutant(data, "identity", str(path), "unusable source")
    src = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    secs = _sections(data)
    if strategy == "truncate":
        n = ch.integer(0, len(data) - 1)
        return Mutant(data[:n], strategy, src, f"first {n} bytes")
    if strategy == "truncate_at_section":
        sec = ch.choice(secs)
        return Mutant(data[: sec[1]], strategy, src, f"cut before section {sec[0]} at {sec[1]}")
    if strategy == "bitflip":
        out = bytearray(data)
        flips = [ch.integer(0, len(data) * 8 - 1) for _ in range(ch.integer(1, 8))]
        for bit in flips:
            out[bit // 8] ^= 1 << (bit % 8)
        return Mutant(bytes(out), strategy, src, f"bits {flips}")
    if strategy == "section_bitflip":
        sec = ch.choice(secs)
        lo, hi = sec[2], sec[3]
        out = bytearray(data)
        if hi <= lo:
            return Mutant(bytes(out), strategy, src, f"empty section {sec[0]}")
        flips = [ch.integer(lo * 8, hi * 8 - 1) for _ in range(ch.integer(1, 4))]
        for bit in flips:
            out[bit // 8] ^= 1 << (bit % 8)
        return Mutant(bytes(out), strategy, src, f"section {sec[0]} bits {flips}")
    if strategy == "byteset":
        out = bytearray(data)
        spots = []
        for _ in range(ch.integer(1, 4)):
            pos = ch.integer(0, len(data) - 1)
            out[pos] = ch.choice(_INTERESTING_BYTES)
            spots.append(pos)
        return Mutant(bytes(out), strategy, src, f"bytes at {spots}")
    head = data[:8]
    chunks = [data[s[1] : s[3]] for s in secs]
    if strategy == "section_shuffle" and len(chunks) > 1:
        i, j = ch.integer(0, len(chunks) - 1), ch.integer(0, len(chunks) - 1)
        chunks[i], chunks[j] = chunks[j], chunks[i]
        return Mutant(head + b"".join(chunks), strategy, src, f"swap sections {secs[i][0]} and {secs[j][0]}")
    if strategy == "section_drop":
        i = ch.integer(0, len(chunks) - 1)
        del chunks[i]
        return Mutant(head + b"".join(chunks), strategy, src, f"drop section {secs[i][0]}")
    if strategy == "section_duplicate":
        i = ch.integer(0, len(chunks) - 1)
        chunks.insert(ch.integer(0, len(chunks)), chunks[i])
        return Mutant(head + b"".join(chunks), strategy, src, f"duplicate section {secs[i][0]}")
    if strategy == "section_size":
        i = ch.integer(0, len(secs) - 1)
        sid, _hstart, pstart, end = secs[i]
        size = end - pstart
        new = ch.choice([0, size - 1, size + 1, size * 2, U32, 1 << 40, max(0, size - ch.integer(1, 64))])
        chunks[i] = bytes([sid]) + encode_uleb(max(0, new)) + data[pstart:end]
        return Mutant(head + b"".join(chunks), strategy, src, f"section {sid} size {size} -> {new}")
    if strategy == "splice":
        other = ch.choice(paths)
        odata = other.read_bytes()
        osecs = {s[0]: odata[s[1] : s[3]] for s in _sections(odata)}
        ids = [s[0] for s in secs if s[0] in osecs and s[0] != 0]
        if not ids:
            return Mutant(data, strategy, src, "nothing to splice")
        sid = ch.choice(ids)
        chunks = [osecs[sid] if s[0] == sid else c for s, c in zip(secs, chunks, strict=True)]
        return Mutant(head + b"".join(chunks), strategy, src, f"section {sid} from {other.name}")
    return Mutant(data, "identity", src)


_CALLBACK_SIGS = callbacks_for("0.2.1")
_WRONG_TYPES = ("i32", "i64", "f32", "f64")


def _wrong_sig(ch: Chooser, params: tuple[str, ...], results: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    while True:
        p, r = list(params), list(results)
        how = ch.choice(["add", "drop", "retype", "result", "swap_result"])
        if how == "add":
            p.insert(ch.integer(0, len(p)), ch.choice(_WRONG_TYPES))
        elif how == "drop" and p:
            del p[ch.integer(0, len(p) - 1)]
        elif how == "retype" and p:
            i = ch.integer(0, len(p) - 1)
            p[i] = ch.choice([t for t in _WRONG_TYPES if t != p[i]])
        elif how == "result":
            r = [] if r else [ch.choice(_WRONG_TYPES)]
        elif how == "swap_result" and r:
            r = [ch.choice([t for t in _WRONG_TYPES if t != r[0]])]
        if (tuple(p), tuple(r)) != (params, results):
            return tuple(p), tuple(r)


def _dummy_body(results: Sequence[str]) -> str:
    return "".join(f" ({t}.const 0)" for t in results)


def _signature_mutant(ch: Chooser) -> Mutant:
    """A small module with one wrong signature (or a wrong kind) for a known import or export."""
    kind = ch.weighted(
        [("import", 4), ("wasi_import", 1), ("callback", 4), ("allocator", 2), ("entry", 1), ("no_memory", 1), ("memory_import", 1), ("global_import", 1)]
    )
    imports: list[str] = []
    exports: dict[str, str] = {}
    memory = '(memory (export "memory") 1)'
    expect = True
    detail = kind
    if kind in ("import", "wasi_import"):
        table = HOST_FUNCTIONS if kind == "import" else WASI_FUNCTIONS
        module = "env" if kind == "import" else "wasi_snapshot_preview1"
        name = ch.choice(sorted(table))
        p, r = _wrong_sig(ch, table[name].params, table[name].results)
        imports.append(f'(import "{module}" "{name}" (func $imp{_wat_sig(p, r)}))')
        detail = f"{module}.{name} imported as {p} -> {r}"
    elif kind == "callback":
        name = ch.choice(sorted(_CALLBACK_SIGS))
        p, r = _wrong_sig(ch, _CALLBACK_SIGS[name].params, _CALLBACK_SIGS[name].results)
        exports[name] = f'(func (export "{name}"){_wat_sig(p, r)}{_dummy_body(r)})'
        detail = f"{name} exported as {p} -> {r}"
        if name in ("proxy_on_request_headers", "proxy_on_response_headers") and p in (("i32",) * 2, ("i32",) * 3) and r == ("i32",):
            expect = False  # the emulator deliberately calls 2- or 3-argument headers callbacks
    elif kind == "allocator":
        name = ch.choice(["malloc", "proxy_on_memory_allocate"])
        p, r = _wrong_sig(ch, ("i32",), ("i32",))
        exports[name] = f'(func (export "{name}"){_wat_sig(p, r)}{_dummy_body(r)})'
        detail = f"{name} exported as {p} -> {r}"
    elif kind == "entry":
        name = ch.choice(["_initialize", "_start", "main"])
        base = (("i32", "i32"), ("i32",)) if name == "main" else ((), ())
        p, r = _wrong_sig(ch, *base)
        exports[name] = f'(func (export "{name}"){_wat_sig(p, r)}{_dummy_body(r)})'
        detail = f"{name} exported as {p} -> {r}"
    elif kind == "no_memory":
        memory = "(memory 1)"
    elif kind == "memory_import":
        memory = '(import "env" "memory" (memory 1))'
    elif kind == "global_import":
        imports.append(f'(import "env" "{ch.choice(sorted(HOST_FUNCTIONS))}" (global i32))')
    exports.setdefault("malloc", '(func (export "malloc") (param i32) (result i32) (i32.const 1024))')
    exports.setdefault("proxy_on_vm_start", '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))')
    exports.setdefault("proxy_on_configure", '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))')
    exports.setdefault("proxy_on_context_create", '(func (export "proxy_on_context_create") (param i32 i32))')
    exports.setdefault("proxy_abi_version_0_2_1", '(func (export "proxy_abi_version_0_2_1"))')
    wat = "(module\n  " + "\n  ".join([*imports, memory, *exports.values()]) + "\n)"
    return Mutant(wat2wasm(wat), "signature", "<generated>", detail, expect_refused=expect)


@dataclass
class MutantResult:
    """How the emulator took one mutant."""

    mutant: Mutant
    outcome: str = "?"
    """``load_error``, ``start_error``, ``started`` or ``other_exception``."""
    error: str = ""
    exercise: str = ""
    """For a started module: ``ok``, ``trap``, ``interrupt`` or ``exception``."""
    problems: list[str] = field(default_factory=list)
    runaway: bool = False
    """Guest code hit the deadline (an infinite loop): stopped cleanly."""
    max_memory: int = 0


MUTANT_MAX_PAGES = 16384
"""1 GiB, cpp-host's default limit: a memory bomb stops there."""


def _mutant_engine(engine: str) -> Any:
    if engine == "wasmer":
        return get_engine("wasmer", EngineConfig(max_memory_pages=MUTANT_MAX_PAGES))
    return get_engine(engine, EngineConfig(epoch=True, max_memory_pages=MUTANT_MAX_PAGES))


def load_mutant(mutant: Mutant, *, engine: str = "wasmtime", deadline_s: float = 2.0, exercise: bool = True) -> MutantResult:
    """Load one mutant the way Envoy would, then (if it started) run one HTTP exchange and ticks."""
    result = MutantResult(mutant)
    eng = _mutant_engine(engine)
    deadlines = engine != "wasmer"
    host = Host(engine=eng, cache=False, trace=False, callback_deadline_s=deadline_s if deadlines else None)
    plugin = None
    try:
        program = Program(eng, mutant.wasm, cache=None, source=f"<{mutant.strategy} of {mutant.source}>")
        vm = host.create_vm(program, vm_id="mutant")
        plugin = host.add_plugin(vm, root_id="", name="mutant")
        result.outcome = "started"
    except ModuleLoadError as exc:
        result.outcome, result.error = "load_error", str(exc).splitlines()[0][:300]
        result.runaway = "interrupt" in str(exc)
    except PluginStartError as exc:
        result.outcome, result.error = "start_error", f"{exc.phase}: {exc.reason.splitlines()[0][:300]}"
        result.runaway = (isinstance(exc.cause, CallbackError) and exc.cause.trap.kind == "interrupt") or "interrupt" in exc.reason.lower()
    except Exception as exc:
        result.outcome, result.error = "other_exception", _escaped("loading", exc)
        result.problems.append(result.error)
    if result.outcome == "started" and mutant.expect_refused:
        result.problems.append(f"a module with a wrong signature started ({mutant.detail}); cpp-host refuses it")
    if plugin is not None and exercise:
        try:
            stream = plugin.http_exchange(
                Request({":method": "POST", ":path": "/m", ":authority": "mutant"}, body="hello", trailers={"x-t": "1"}),
                Response({":status": "200"}, body="ok"),
            )
            host.advance(2500)
            err = stream.error or (plugin.failures[-1] if plugin.failures else None)
            if err is None:
                result.exercise = "ok"
            else:
                result.exercise = "interrupt" if err.trap.kind == "interrupt" else "trap"
                result.runaway = result.runaway or err.trap.kind == "interrupt"
                if err.trap.kind == "host" and not isinstance(err.cause, EmulatorError):
                    result.problems.append(_escaped("a host function raised while exercising", err.cause or err))
        except EmulatorError as exc:
            result.exercise = f"emulator_error:{type(exc).__name__}"
        except Exception as exc:
            result.exercise = "exception"
            result.problems.append(_escaped("exercising a started mutant", exc))
    for vm in host.vms:
        if vm.memory is not None:
            try:
                result.max_memory = max(result.max_memory, vm.memory.size)
            except Exception as exc:
                result.problems.append(_escaped("reading memory size", exc))
    return result


def run_mutation_campaign(
    mutants: int,
    seed: int,
    *,
    engine: str = "wasmtime",
    deadline_s: float = 2.0,
    exercise: bool = True,
    sources: Sequence[Path] | None = None,
    save_last: str | os.PathLike[str] | None = None,
    max_failures: int = 10,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Load ``mutants`` malformed modules; returns the counts.

    ``{"mutants", "load_errors", "start_errors", "started", "crashes", "other_exceptions",
    "problems", "runaway_stopped", "exercise": {...}, "outcomes": {...}, "strategies": {strategy:
    {outcome: n}}, "failures": [...], "seconds", "engine", "seed"}``. ``other_exceptions`` counts
    every exception that is not an emulator error, while loading or while exercising a started
    mutant; ``outcomes`` partitions the mutants (``load_error``, ``start_error``, ``started``,
    ``other_exception``). On wasmer (no deadlines) every mutant is first
    run on wasmtime: one that loops or bombs memory there is only compiled and loaded on wasmer,
    never run (``runaway_skipped``). ``save_last`` writes each mutant to that path before it runs,
    so the input that killed a process can be found.
    """
    ch = RandomChooser(seed)
    outcomes: Counter[str] = Counter()
    exercises: Counter[str] = Counter()
    strategies: dict[str, Counter[str]] = {}
    failures: list[str] = []
    problems = runaway = skipped = 0
    src = list(sources or fixture_modules())
    start = time.perf_counter()
    for i in range(mutants):
        mutant = mutate(ch, src)
        if save_last is not None:
            Path(save_last).write_bytes(mutant.wasm)
        run_it = True
        if engine == "wasmer" and not screen_on_wasmtime(mutant, deadline_s=deadline_s):
            run_it = False
            skipped += 1
        result = load_mutant(mutant, engine=engine, deadline_s=deadline_s, exercise=run_it) if run_it or engine != "wasmer" else _load_only(mutant, engine)
        outcomes[result.outcome] += 1
        if result.exercise:
            exercises[result.exercise] += 1
        runaway += result.runaway
        strategies.setdefault(mutant.strategy, Counter())[result.outcome] += 1
        problems += len(result.problems)
        if result.problems and len(failures) < max_failures:
            failures.append(f"mutant {i} ({mutant.strategy} of {mutant.source}: {mutant.detail}):\n" + "\n".join(result.problems))
        if progress is not None and (i + 1) % 100 == 0:
            progress({"mutants": i + 1, **outcomes, "problems": problems})
    return {
        "engine": engine,
        "seed": seed,
        "mutants": mutants,
        "load_errors": outcomes["load_error"],
        "start_errors": outcomes["start_error"],
        "started": outcomes["started"],
        "crashes": 0,
        "other_exceptions": outcomes["other_exception"] + exercises["exception"],
        "linked_not_run": outcomes["linked_not_run"],
        "outcomes": dict(outcomes.most_common()),
        "problems": problems,
        "runaway_stopped": runaway,
        "runaway_skipped": skipped,
        "exercise": dict(exercises.most_common()),
        "strategies": {k: dict(v.most_common()) for k, v in sorted(strategies.items())},
        "failures": failures,
        "seconds": round(time.perf_counter() - start, 2),
    }


def screen_on_wasmtime(mutant: Mutant, *, deadline_s: float = 2.0) -> bool:
    """Whether a mutant is safe to run on an engine without deadlines: on wasmtime it neither hits
    the deadline (an endless loop) nor grows its memory past 256 MiB."""
    pre = load_mutant(mutant, engine="wasmtime", deadline_s=deadline_s)
    return not pre.runaway and pre.max_memory <= 256 << 20


def _load_only(mutant: Mutant, engine: str) -> MutantResult:
    """Compile and link on ``engine`` without running any guest code (wasmer, for runaway mutants)."""
    result = MutantResult(mutant, exercise="not run (it runs away on wasmtime)")
    try:
        Program(_mutant_engine(engine), mutant.wasm, cache=None, source=f"<{mutant.strategy} of {mutant.source}>")
        result.outcome = "linked_not_run"
    except ModuleLoadError as exc:
        result.outcome, result.error = "load_error", str(exc).splitlines()[0]
    except Exception as exc:
        result.outcome, result.error = "other_exception", _escaped("compiling", exc)
        result.problems.append(result.error)
    return result


# ================================================================================================
# Command line: long runs, optionally isolated in child processes
# ================================================================================================


def _merge(total: dict[str, Any], part: dict[str, Any]) -> None:
    for k, v in part.items():
        if isinstance(v, bool) or k in ("engine", "seed"):
            continue
        if isinstance(v, int | float):
            total[k] = total.get(k, 0) + v
        elif isinstance(v, dict):
            sub = total.setdefault(k, {})
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    inner = sub.setdefault(kk, {})
                    for k3, v3 in vv.items():
                        inner[k3] = inner.get(k3, 0) + v3
                else:
                    sub[kk] = sub.get(kk, 0) + vv
        elif isinstance(v, list):
            total.setdefault(k, []).extend(v[: max(0, 10 - len(total.get(k, [])))])


def _isolated(kind: str, count: int, seed: int, chunk: int, engine: str, crash_dir: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run the campaign in chunks, each in a child process; a child that dies counts as a crash."""
    total: dict[str, Any] = {"engine": engine, "seed": seed, "crashes": 0, "child_errors": 0}
    crash_dir.mkdir(parents=True, exist_ok=True)
    done = 0
    index = 0
    while done < count:
        n = min(chunk, count - done)
        sub_seed = seed * 1_000_003 + index
        last = crash_dir / f"last_{kind}_{os.getpid()}.wasm"
        cmd = [sys.executable, "-m", "emulator.hardening", kind, "--count", str(n), "--seed", str(sub_seed), "--engine", engine, "--json", *extra]
        if kind == "mutants":
            cmd += ["--save-last", str(last)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode == 0:
            part = json.loads(proc.stdout)
            _merge(total, part)
            done += part["calls"] if kind == "hostile" else part["mutants"]
        else:
            # killed by a signal (segfault, abort): a crash; an exit status > 0 is a runner error
            what = "crash" if proc.returncode < 0 else "error"
            total["crashes" if what == "crash" else "child_errors"] += 1
            note = crash_dir / f"{what}_{kind}_seed{sub_seed}.txt"
            note.write_text(f"{' '.join(cmd)}\nreturn code {proc.returncode}\n{proc.stderr[-4000:]}")
            if last.exists():
                last.rename(crash_dir / f"{what}_{kind}_seed{sub_seed}.wasm")
            total.setdefault("crash_reports", []).append(str(note))
            done += n
        index += 1
        print(f"[{kind}] {done}/{count} crashes={total['crashes']} child_errors={total['child_errors']}", file=sys.stderr, flush=True)
    last = crash_dir / f"last_{kind}_{os.getpid()}.wasm"
    if last.exists():
        last.unlink()
    return total


def main(argv: list[str] | None = None) -> int:
    """``python -m emulator.hardening hostile|mutants --count N --seed S [--engine E] [--isolate CHUNK]``."""
    parser = argparse.ArgumentParser(prog="python -m emulator.hardening", description="hardening fuzz campaigns (issue #8)")
    parser.add_argument("kind", choices=["hostile", "mutants"])
    parser.add_argument("--count", "--calls", "--mutants", type=int, default=2000, dest="count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", default="wasmtime")
    parser.add_argument("--isolate", type=int, default=0, help="run chunks of this size in child processes and count crashes")
    parser.add_argument("--save-last", default=None, help="(mutants) write each mutant here before running it")
    parser.add_argument("--crash-dir", default=str(ROOT / "tests" / "hardening" / "crashers"))
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--abort-for-test", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.abort_for_test:
        os.abort()  # lets the tests check that --isolate counts a child that dies

    def progress(p: dict[str, Any]) -> None:
        if not args.json:
            print(json.dumps(p), file=sys.stderr, flush=True)

    if args.isolate:
        result = _isolated(args.kind, args.count, args.seed, args.isolate, args.engine, Path(args.crash_dir))
    elif args.kind == "hostile":
        result = run_hostile_campaign(args.count, args.seed, engine=args.engine, progress=progress)
    else:
        result = run_mutation_campaign(args.count, args.seed, engine=args.engine, save_last=args.save_last, progress=progress)
    print(json.dumps(result, indent=None if args.json else 1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
