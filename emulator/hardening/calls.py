"""One hostile host call: :class:`HostCall` (the function, its arguments and what is hostile about
them) and :func:`draw_call`, which draws each argument from its role in the ABI table, well-formed
or hostile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from abi import HOST_FUNCTIONS, WASI_FUNCTIONS, roles
from abi.records import record
from abi.signatures import Signature

from .choosers import Chooser
from .layout import _LAYOUT, HEAP, MEM, PAYLOADS, SENTINEL, SLOTS, U32

__all__ = ["HostCall", "draw_call"]


_ENUM_LIMITS: dict[tuple[str, str], int] = {
    (name, p.name): p.enum_max for name, sig in HOST_FUNCTIONS.items() for p in sig.parameters if p.enum_max is not None
}
"""``(function, parameter) -> largest valid value`` of every enum the host checks (from the ABI table)."""


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


@record(frozen=True)
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
