"""The linear memory of a hostile guest: its regions (out-parameter slots, payloads, sentinels, the
heap), the sentinel state its prologue writes, and the payloads its data segment carries
(:func:`payload`, :func:`slot`).
"""

from __future__ import annotations

import struct
import zlib

from abi import encode_pairs, encode_path
from abi.records import record

__all__ = ["payload", "slot"]


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


@record(frozen=True)
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
