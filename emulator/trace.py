"""The host-call trace: every ``env`` host call a filter makes, decoded, with its status and results.

Each entry names the function, its decoded arguments (strings, header pairs, property paths and
enum names instead of pointers), the status, the data returned through out-pointers, the context
and the callback it was made from. A trace renders as readable text (its tail goes into pytest
failure reports), exports as JSON, and compares with another trace for golden tests.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from abi import HOST_FUNCTIONS, Signature, Status, decode_pairs, decode_path
from abi.records import record
from abi.roles import COPY_OUT, ENUM, IN, OUT

from .engines import MemoryAccessError, accelerator
from .engines._codegen import build

if TYPE_CHECKING:
    from .vm.instance import Vm

__all__ = ["PYTHON_RECORDERS", "RECORDERS", "Trace", "TraceEntry", "TraceLog", "capture_args", "capture_results", "captured", "decode_call"]


def _text(raw: bytes) -> Any:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _value(fmt: str | None, raw: bytes) -> Any:
    if fmt == "pairs":
        return [(_text(k), _text(v)) for k, v in decode_pairs(raw)]
    if fmt == "path":
        return [_text(s) for s in decode_path(raw)]
    return _text(raw)


@record(frozen=True)
class _Arg:
    """How one argument of a call is decoded, from its role in the ABI table."""

    name: str
    """The argument's name in a trace (a pair is named after its pointer without ``_ptr``)."""
    index: int
    size_index: int | None
    role: str
    enum: Any = None
    width: int | None = None
    format: str | None = None

    @property
    def result_key(self) -> str:
        """The key of an out-parameter in :attr:`TraceEntry.results` (``ret_ptr`` gives ``data``)."""
        return "data" if self.name == "ret" else self.name.removeprefix("ret_")


def _plan(sig: Signature) -> tuple[_Arg, ...]:
    """How to decode each argument of ``sig``: a pair is one argument, its size is not another."""
    plan = []
    for i, p in enumerate(sig.parameters):
        if p.role in (IN, COPY_OUT):
            plan.append(_Arg(p.name.removesuffix("_ptr"), i, p.pair, p.role, format=p.format))
        elif p.pair is None:
            plan.append(_Arg(p.name, i, None, p.role, p.enum, p.width))
    return tuple(plan)


_PLANS: Mapping[str, tuple[_Arg, ...]] = MappingProxyType({name: _plan(sig) for name, sig in HOST_FUNCTIONS.items()})
"""Every ``env`` function's decoding plan, built once from the ABI table (read-only)."""


def decode_call(vm: Vm, function: str, args: tuple[int, ...]) -> dict[str, Any]:
    """The arguments of a host call as a filter author reads them (before the call runs)."""
    return _decode_args(function, args, capture_args(vm, function, args))


def decode_results(vm: Vm, function: str, args: tuple[int, ...]) -> dict[str, Any]:
    """What the host wrote through the out-pointers (after an Ok call)."""
    return _decode_results(function, capture_results(vm, function, args))


_INVALID = object()


def capture_args(vm: Vm, function: str, args: tuple[int, ...]) -> tuple[Any, ...]:
    """The raw input ranges of a call (bytes, or an ``<invalid pointer>`` text), read before it runs:
    what :class:`TraceEntry` decodes later, only if someone reads the entry."""
    mem = vm.memory
    try:
        return _CAPTURE_IN[function](mem.read, args)
    except Exception:  # a bad pointer: the slow path says which
        pass
    out = []
    for a in _PLANS[function]:
        if a.size_index is None or a.role in (OUT, COPY_OUT):
            continue
        ptr, size = args[a.index], args[a.size_index]
        try:
            out.append(mem.read(ptr, size) if size else b"")
        except Exception:
            out.append(f"<invalid pointer {ptr}+{size}>")
    return tuple(out)


def capture_results(vm: Vm, function: str, args: tuple[int, ...]) -> tuple[Any, ...]:
    """The raw out-parameters of an Ok call: copied-out bytes, or the integers written."""
    mem = vm.memory
    try:
        return _CAPTURE_OUT[function](mem.read, mem.u32, mem.u64, args)
    except Exception:
        pass
    out: list[Any] = []
    for a in _PLANS[function]:
        if a.role not in (OUT, COPY_OUT):
            continue
        try:
            if a.role == COPY_OUT:
                ptr, size = mem.u32(args[a.index]), mem.u32(args[a.size_index])
                out.append(mem.read(ptr, size) if size else b"")
            elif a.width == 8:
                out.append(mem.u64(args[a.index]))
            else:
                out.append(mem.u32(args[a.index]))
        except Exception:
            out.append(_INVALID)
    return tuple(out)


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


_COPY, _U32, _U64 = 0, 4, 8
"""The kinds of out-parameter in :func:`_ranges` (the numbers the C recorder takes)."""


def _ranges(plan: tuple[_Arg, ...]) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int, int], ...]]:
    """Where a call's data is, from its plan: the input ranges as ``(pointer, size)`` argument
    indexes, and the out-parameters as ``(kind, index, size index)`` (kind :data:`_COPY` for a
    ``ptr**``/``size*`` pair, :data:`_U32` or :data:`_U64`; the size index of a plain one is -1)."""
    ins = tuple((x.index, x.size_index) for x in plan if x.size_index is not None and x.role not in (OUT, COPY_OUT))
    outs = tuple(
        (_COPY, x.index, x.size_index) if x.role == COPY_OUT else (_U64 if x.width == 8 else _U32, x.index, -1) for x in plan if x.role in (OUT, COPY_OUT)
    )
    return ins, outs


def _reads(plan: tuple[_Arg, ...], arg: Any) -> tuple[list[str], list[str], list[str]]:
    """The code that reads a call from its plan (:func:`_ranges`), for the generated capture
    functions and recorders: the input ranges' expressions, the statements that load the copy-outs'
    pointers and sizes, and the out-parameters' expressions; ``read``, ``u32`` and ``u64`` are in
    scope and ``arg(i)`` is argument ``i``."""
    ranges, outputs = _ranges(plan)
    ins = [f"read({arg(ptr)}, {arg(size)})" for ptr, size in ranges]
    loads, outs = [], []
    for i, (kind, index, size) in enumerate(outputs):
        if kind == _COPY:
            loads.append(f"p{i} = u32({arg(index)}); n{i} = u32({arg(size)})")
            outs.append(f"(read(p{i}, n{i}) if n{i} else b'')")
        else:
            outs.append(f"{'u64' if kind == _U64 else 'u32'}({arg(index)})")
    return ins, loads, outs


def _capture_in(plan: tuple[_Arg, ...]) -> Any:
    """One function per import that reads its input ranges in one frame (from the ABI table's roles)."""
    ins, _, _ = _reads(plan, lambda i: f"a[{i}]")
    return build("cap", f"def cap(read, a):\n    return {_tuple(ins)}\n", {})


def _capture_out(plan: tuple[_Arg, ...]) -> Any:
    """One function per import that reads what the host wrote through its out-pointers, in one frame."""
    _, loads, outs = _reads(plan, lambda i: f"a[{i}]")
    body = "\n".join([*(f"    {line}" for line in loads), f"    return {_tuple(outs)}"])
    return build("cap", f"def cap(read, u32, u64, a):\n{body}\n", {})


class _Generated(dict[str, Any]):
    """Capture functions, generated for an import the first time it is called (not at import time)."""

    def __init__(self, make: Any) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, name: str) -> Any:
        fn = self[name] = self.make(_PLANS[name])
        return fn


_CAPTURE_IN = _Generated(_capture_in)
_CAPTURE_OUT = _Generated(_capture_out)


def _recorder(function: str) -> Any:
    """One function per import that counts, captures, runs and records a host call in one frame.

    ``rec(vm, observer, impl, *args)`` does what :class:`~emulator.observer.HostCallObserver` does
    for a host that only records (a trace, no expectations), with the input and output reads of
    the ABI table's plan written inline. A bad pointer falls back to the generic capture, which
    says which range was invalid. The record, a flat tuple (see :func:`_from_flat`), is packed into
    :attr:`Trace.pending` (a :class:`TraceLog`), and becomes a :class:`TraceEntry` only when the
    trace is read.
    """
    plan = _PLANS[function]
    n = len(HOST_FUNCTIONS[function].params)
    params = ", ".join(f"a{i}" for i in range(n))
    args = f"({params}{',' if n == 1 else ''})"
    reads, loads, outs = _reads(plan, lambda i: f"a{i}")
    out_block = (
        "        u32, u64 = mem.u32, mem.u64\n"
        "        try:\n" + "".join(f"            {line}\n" for line in loads) + f"            res = {_tuple(outs)}\n"
        "        except Exception:\n"
        f"            res = capture_results(vm, name, {args})\n"
        if outs
        else "        res = ()\n"
    )
    src = (
        f"def rec(vm, obs, impl, {params}):\n"
        "    obs._counts[name] += 1\n"
        "    mem = vm.memory\n"
        "    read = mem.read\n"
        "    try:\n"
        f"        raw = {_tuple(reads)}\n"
        "    except Exception:\n"
        f"        raw = capture_args(vm, name, {args})\n"
        "    try:\n"
        f"        status = impl({params})\n"
        "    except MemoryAccessError as exc:\n"
        "        vm.note(f'{name}: {exc}')\n"
        "        status = fault\n"
        "    if status == 0:\n"
        f"{out_block}"
        "    else:\n"
        "        res = ()\n"
        "    host = obs.host\n"
        "    host._seq = seq = host._seq + 1\n"
        "    trace = host.trace\n"
        # the status as a plain int: what a packed record takes, and a whole one the collector stops tracking
        "    st = plain(status, status)\n"
        "    ctx = vm.active.id\n"
        "    cb = vm.current_callback\n"
        "    pending = getattr(trace, 'pending', None)\n"
        f"    if type(pending) is TraceLog and pack(pending, seq, st, ctx, cb, {params}{', ' if n else ''}raw, res):\n"
        "        pass\n"
        "    else:\n"
        f"        flat = (seq, name, st, ctx, cb, {params}{', ' if n else ''}*raw, *res)\n"
        "        if pending is None:  # not a Trace (a plain list put in host.trace): the entry itself\n"
        "            trace.append(from_flat(flat))\n"
        "            return status\n"
        "        pending.append(flat)\n"
        "    if len(pending) + llen(trace) > 2 * host.trace_limit:\n"
        "        trace.trim(host.trace_limit)\n"
        "    return status\n"
    )
    namespace = {
        "name": function,
        "capture_args": capture_args,
        "capture_results": capture_results,
        "MemoryAccessError": MemoryAccessError,
        "fault": int(Status.InvalidMemoryAccess),
        "llen": list.__len__,
        "from_flat": _from_flat,
        "plain": _PLAIN_STATUS.get,
        "TraceLog": TraceLog,
        "pack": _PACKERS[function],
    }
    return build("rec", src, namespace)


def _c_recorder(function: str) -> Any:
    """The C accelerator's recorder of ``function`` (``emulator.engines._crossing.TraceRecorder``):
    the same steps and record as :func:`_recorder`, which stays the reference; None without it."""
    c = accelerator()
    if c is None:
        return None
    inputs, outputs = _ranges(_PLANS[function])
    return c.TraceRecorder(
        function,
        _FUNCTION_INDEX[function],
        inputs,
        outputs,
        capture_args=capture_args,
        capture_results=capture_results,
        access_error=MemoryAccessError,
        from_flat=_from_flat,
        plain=_PLAIN_STATUS,
        fault=int(Status.InvalidMemoryAccess),
    )


class _Recorders(dict[str, Any]):
    """Recorders, made for an import the first time it is recorded: the C accelerator's where it is
    built (``accelerated``), else the generated Python one."""

    def __init__(self, *, accelerated: bool) -> None:
        super().__init__()
        self.accelerated = accelerated

    def __missing__(self, name: str) -> Any:
        fn = self[name] = (_c_recorder(name) if self.accelerated else None) or _recorder(name)
        return fn


RECORDERS: Mapping[str, Any] = _Recorders(accelerated=True)
"""``RECORDERS[name](vm, observer, impl, *args)``: the one-frame recorder of each ``env`` import
(in C where the speed mode's accelerator is built)."""

PYTHON_RECORDERS: Mapping[str, Any] = _Recorders(accelerated=False)
"""The generated Python recorders only: the reference path, which tests run too."""


class _Layouts(dict[str, tuple[int, int, tuple[int, ...]]]):
    """Each import's record layout: its number of arguments, of input ranges, and the kinds of its
    out-parameters (:func:`_ranges`)."""

    def __missing__(self, name: str) -> tuple[int, int, tuple[int, ...]]:
        ins, outs = _ranges(_PLANS[name])
        layout = self[name] = (len(HOST_FUNCTIONS[name].params), len(ins), tuple(kind for kind, _, _ in outs))
        return layout


_LAYOUTS = _Layouts()

FUNCTIONS: tuple[str, ...] = tuple(HOST_FUNCTIONS)
"""The ``env`` imports in the order a packed record numbers them (:class:`TraceLog`)."""

_FUNCTION_INDEX: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(FUNCTIONS)})

_HEAD = "<IHHqqq"
"""A packed record's head: its size in bytes (head included), the import (:data:`FUNCTIONS`),
the callback (:attr:`TraceLog.callbacks`), the sequence number, the status and the context."""
_HEAD_SIZE = struct.calcsize(_HEAD)
_LEN = struct.Struct("<I")
_WORD = struct.Struct("<Q")
_WHOLE = 0xFFFF
"""The import number of a record kept whole in :attr:`TraceLog.objects` (a head and nothing else)."""
_ROOM = 1 << 16
"""The least a :class:`TraceLog` grows by."""
_WHOLE_HEAD = struct.pack(_HEAD, _HEAD_SIZE, _WHOLE, 0, 0, 0, 0)


def _packer(function: str) -> Any:
    """One function per import that packs a record into a :class:`TraceLog`, in one frame:
    ``pack(log, seq, status, context, callback, *args, inputs, outputs)``, the inputs and outputs
    as tuples (the outputs empty unless the call returned Ok). It returns False, and appends
    nothing, for a record with a value the layout does not take (a value of another type, an int
    out of range)."""
    n, k, kinds = _LAYOUTS[function]
    args = [f"a{i}" for i in range(n)]
    ins = [f"r{i}" for i in range(k)]
    outs = [f"o{i}" for i in range(len(kinds))]
    fixed = " + ".join([str(_HEAD_SIZE + 8 * n + 4 * k), *(f"len({r})" for r in ins)])
    body = "".join(f" + LEN(len({r})) + {r}" for r in ins)
    out_size = "".join(f" + 4 + len({o})" if kind == _COPY else " + 8" for o, kind in zip(outs, kinds, strict=True))
    out_body = "".join(f" + LEN(len({o})) + {o}" if kind == _COPY else f" + WORD({o})" for o, kind in zip(outs, kinds, strict=True))
    sized = [f"        size = {fixed}", "        tail = b''"]
    if outs:  # an Ok call's out-parameters follow its inputs
        sized = [
            "        if outs:",
            f"            {', '.join(outs)}, = outs",
            f"            size = {fixed}{out_size}",
            f"            tail = b''{out_body}",
            "        else:",
            *(f"    {line}" for line in sized),
        ]
    lines = [
        f"def pack(log, seq, st, ctx, cb, {''.join(a + ', ' for a in args)}raw, outs):",
        "    if type(seq) is not int or type(st) is not int or type(ctx) is not int:",
        "        return False",
        "    c = log.callback_index.get(cb) if cb is None or type(cb) is str else None",
        "    if c is None:",
        "        c = log.intern(cb)",
        "        if c < 0:",
        "            return False",
        "    try:",
        f"        {''.join(r + ', ' for r in ins)}= raw" if ins else "        if raw:\n            return False",
        *sized,
        f"        record = HEAD(size, {_FUNCTION_INDEX[function]}, c, seq, st, ctx{''.join(f', {a}' for a in args)}){body} + tail",
        "    except (struct.error, TypeError, ValueError):",
        "        return False",
        *_PUT,
        "    return True",
    ]
    namespace = {"struct": struct, "HEAD": struct.Struct(f"{_HEAD}{n}q").pack, "LEN": _LEN.pack, "WORD": _WORD.pack, "ROOM": _ROOM}
    return build("pack", "\n".join(lines) + "\n", namespace)


_PUT = [
    "    data = log.data",
    "    start = log.size",
    "    end = start + len(record)",
    "    if end > len(data):  # room for this record and as many bytes again: no copy per record",
    "        data += bytes(max(end, ROOM))",
    "    data[start:end] = record",
    "    log.size = end",
    "    log.count += 1",
]
"""Append ``record`` (packed bytes) to ``log``: the lines every packer ends with (the C recorder
grows the log by the same rule)."""

_put_whole = build("put", "def put(log, record):\n" + "\n".join(_PUT) + "\n", {"ROOM": _ROOM})


class _Packers(dict[str, Any]):
    def __missing__(self, name: str) -> Any:
        fn = self[name] = _packer(name) if name in _FUNCTION_INDEX else None
        return fn


_PACKERS = _Packers()


_SIZE_AND_FUNCTION = struct.Struct("<IH").unpack_from


def _skip(data: bytearray, n: int) -> tuple[int, int]:
    """Where the first ``n`` records of a packed log end, and how many of them are kept whole (the
    C accelerator's ``skip_records`` takes the same walk)."""
    at = whole = 0
    for _ in range(n):
        size, function = _SIZE_AND_FUNCTION(data, at)
        whole += function == _WHOLE
        at += size
    return at, whole


class TraceLog:
    """A trace's records not read yet, packed one after another into one byte string.

    The recorders append every host call here: no Python object per call, so a long trace costs
    neither allocations nor garbage-collection time, and trimming it is one ``del``. A record is
    the head (:data:`_HEAD`), then each argument as an i64, each input range as a u32 length and
    its bytes, and (for a call that returned Ok) each out-parameter: a copy-out as a u32 length and
    its bytes, a u32 or u64 as a u64. :meth:`drain` turns the records back into the flat tuples
    ``(seq, name, status, context, callback, *args, *inputs, *outputs)`` they were made of (see
    :func:`_from_flat`). A record with a value this layout does not take (an unreadable pointer's
    text, a status that is not an int) is kept whole, in :attr:`objects`, in its place.

    The C recorder (``emulator.engines._crossing.TraceRecorder``) writes the same bytes as
    :meth:`append`, which stays the reference.
    """

    def __init__(self) -> None:
        self.data = bytearray()
        """The packed records, oldest first, in its first :attr:`size` bytes (the rest is room to
        grow into: it doubles when full, so a record costs no copy of the others)."""
        self.size = 0
        self.count = 0
        """How many records :attr:`data` holds."""
        self.objects: list[tuple[Any, ...]] = []
        """The records kept whole, oldest first."""
        self.callbacks: list[str | None] = [None]
        """The callback names records number, in the order first seen (0 is none)."""
        self.callback_index: dict[str | None, int] = {None: 0}

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def intern(self, callback: Any) -> int:
        """The number records give ``callback`` (a name, or None), or -1 for anything else."""
        if callback is not None and type(callback) is not str:
            return -1
        found = self.callback_index.get(callback)
        if found is not None:
            return found
        if len(self.callbacks) >= _WHOLE:
            return -1
        n = self.callback_index[callback] = len(self.callbacks)
        self.callbacks.append(callback)
        return n

    def append(self, flat: tuple[Any, ...]) -> None:
        """Add one record, a flat tuple: packed where every value fits the layout, else whole."""
        name = flat[1]
        pack = _PACKERS[name] if type(name) is str else None
        if pack is not None:
            n, k, kinds = _LAYOUTS[name]
            rest = len(flat) - 5 - n - k
            if rest in (0, len(kinds)) and pack(self, *flat[:1], *flat[2 : 5 + n], flat[5 + n : 5 + n + k], flat[5 + n + k :]):
                return
        self.objects.append(flat)
        _put_whole(self, _WHOLE_HEAD)

    def drain(self) -> list[tuple[Any, ...]]:
        """Every record as its flat tuple, oldest first; the log is empty afterwards."""
        data, whole, callbacks = self.data, iter(self.objects), self.callbacks
        out: list[tuple[Any, ...]] = []
        at, end = 0, self.size
        while at < end:
            size, function, cb, seq, status, context = struct.unpack_from(_HEAD, data, at)
            if function == _WHOLE:
                out.append(next(whole))
                at += size
                continue
            name = FUNCTIONS[function]
            n, k, kinds = _LAYOUTS[name]
            p = at + _HEAD_SIZE
            values: list[Any] = [seq, name, status, context, callbacks[cb], *struct.unpack_from(f"<{n}q", data, p)]
            p += 8 * n
            for _ in range(k):
                (length,) = _LEN.unpack_from(data, p)
                values.append(bytes(data[p + 4 : p + 4 + length]))
                p += 4 + length
            if p < at + size:  # an Ok call's out-parameters
                for kind in kinds:
                    if kind == _COPY:
                        (length,) = _LEN.unpack_from(data, p)
                        values.append(bytes(data[p + 4 : p + 4 + length]))
                        p += 4 + length
                    else:
                        values.append(_WORD.unpack_from(data, p)[0])
                        p += 8
            out.append(tuple(values))
            at += size
        self.clear()
        return out

    def drop(self, n: int) -> None:
        """Forget the ``n`` oldest records."""
        if n >= self.count:
            self.clear()
            return
        c = accelerator()
        data = self.data
        at, whole = (c.skip_records if c is not None else _skip)(data, n)
        rest = self.size - at
        data[:rest] = data[at : self.size]  # the rest moved to the front, in place: the room stays
        del self.objects[:whole]
        self.size = rest
        self.count -= n

    def clear(self) -> None:
        """Forget every record (the callback numbers stay)."""
        self.data = bytearray()
        self.size = 0
        self.objects.clear()
        self.count = 0


_PLAIN_STATUS: Mapping[Any, int] = MappingProxyType({member: int(member) for member in Status})
"""A :class:`Status` as the plain int a flat record keeps. An enum member is an object the garbage
collector tracks, and a tuple holding one stays tracked: with it, a long trace was traversed by
every collection (4 µs a request at 10 host calls)."""

_STATUS_OF: Mapping[int, Status] = MappingProxyType({int(member): member for member in Status})
"""The :class:`Status` of a flat record's plain status (another value is kept as it is)."""


def _from_flat(flat: tuple[Any, ...]) -> TraceEntry:
    """The :class:`TraceEntry` of a recorder's flat record ``(seq, name, status, context, callback,
    *args, *inputs, *outputs)``: the same entry the generic observer path builds, with a
    :class:`Status` for a status that is one."""
    seq, name, status, ctx, callback = flat[:5]
    status = _STATUS_OF.get(status, status)
    n, k, _ = _LAYOUTS[name]
    args = flat[5 : 5 + n]
    results: Any = (name, args, flat[5 + n + k :]) if status == 0 else {}
    return tuple.__new__(TraceEntry, (seq, name, (name, args, flat[5 + n : 5 + n + k]), status, results, ctx, callback, False))


def _decode_args(function: str, args: tuple[int, ...], raw: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ranges = iter(raw)
    for a in _PLANS[function]:
        if a.role in (OUT, COPY_OUT):
            continue
        if a.size_index is None:
            value = args[a.index]
            if a.role == ENUM:
                try:
                    value = a.enum(value).name
                except ValueError:
                    pass
            out[a.name] = value
            continue
        data = next(ranges)
        out[a.name] = data if isinstance(data, str) else _value(a.format, data)
    return out


def _decode_results(function: str, raw: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    values = iter(raw)
    for a in _PLANS[function]:
        if a.role not in (OUT, COPY_OUT):
            continue
        value = next(values)
        if value is _INVALID:
            out[a.name] = "<unreadable>"
        elif a.role == COPY_OUT:
            out[a.result_key] = (_value(a.format, value) if a.format else _text(value)) if value else ([] if a.format == "pairs" else "")
        else:
            out[a.result_key] = value
    return out


def captured(function: str, args: tuple[int, ...], raw: tuple[Any, ...]) -> tuple[Any, ...]:
    """A host call's raw record: ``(function, args, raw)``, a tuple of plain values (bytes, ints),
    which Python's collector stops tracking, so a long trace costs no garbage-collection time."""
    return (function, args, raw)


class TraceEntry(tuple):
    """One host call: what the filter passed (decoded), the status, and what came back.

    The arguments and results may be held raw (see :func:`captured`) and are decoded each time
    they are read: reading is for tests and reports, recording is on every host call.
    """

    __slots__ = ()

    def __new__(
        cls,
        seq: int,
        function: str,
        args: dict[str, Any] | tuple[Any, ...],
        status: Any,
        results: dict[str, Any] | tuple[Any, ...] | None = None,
        context_id: int | None = None,
        callback: str | None = None,
        injected: bool = False,
    ) -> TraceEntry:
        return tuple.__new__(cls, (seq, function, args, status, {} if results is None else results, context_id, callback, injected))

    seq = property(lambda self: self[0], doc="Host-wide order of the call.")
    function = property(lambda self: self[1], doc="The import's name.")
    status = property(lambda self: self[3], doc="The status the call returned.")
    context_id = property(lambda self: self[5], doc="The context the call acted on.")
    callback = property(lambda self: self[6], doc="The callback it was made from.")
    injected = property(lambda self: self[7], doc="Whether an expectation answered it instead of the host.")

    @property
    def args(self) -> dict[str, Any]:
        """The decoded arguments (strings, header pairs, paths and enum names instead of pointers)."""
        a = self[2]
        return _decode_args(*a) if type(a) is tuple else a

    @property
    def results(self) -> dict[str, Any]:
        """What the host wrote through the out-pointers (Ok calls only)."""
        r = self[4]
        return _decode_results(r[0], r[2]) if type(r) is tuple else r

    def _key(self) -> tuple[Any, ...]:
        return (self.seq, self.function, self.args, self.status, self.results, self.context_id, self.callback, self.injected)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TraceEntry) and self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return (
            f"TraceEntry(seq={self.seq!r}, function={self.function!r}, args={self.args!r}, status={self.status!r}, "
            f"results={self.results!r}, context_id={self.context_id!r}, callback={self.callback!r}, injected={self.injected!r})"
        )

    @property
    def status_name(self) -> str:
        """``Ok``, ``NotFound``, ... (or the raw value)."""
        if isinstance(self.status, int):
            try:
                return Status(self.status).name
            except ValueError:
                return str(self.status)
        return "-" if self.status is None else str(self.status)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (bytes become ``{"base64": ...}``)."""
        return _jsonable(
            {
                "function": self.function,
                "args": self.args,
                "status": self.status_name,
                "results": self.results,
                "context_id": self.context_id,
                "callback": self.callback,
                "injected": self.injected,
            }
        )

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        res = ", ".join(f"{k}={_short(v)}" for k, v in self.results.items())
        where = f"[{self.callback or '-'} ctx={self.context_id}]"
        tail = f" -> {res}" if res else ""
        mark = " (injected)" if self.injected else ""
        return f"{where} {self.function}({args}) = {self.status_name}{mark}{tail}"


def _short(v: Any, n: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        import base64

        return {"base64": base64.b64encode(v).decode()}
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def _flushing(method: Any) -> Any:
    def wrapper(self: Trace, *args: Any, **kwargs: Any) -> Any:
        if self.pending:
            self.flush()
        return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class Trace(list[TraceEntry]):
    """The list of host calls of a host, with rendering, export and comparison.

    The recorders append packed records to :attr:`pending` (a :class:`TraceLog`); every read of
    the list turns them into :class:`TraceEntry` objects first, in order, so a trace reads as a
    plain list of entries.
    """

    __slots__ = ("pending",)

    def __init__(self, entries: Any = ()) -> None:
        super().__init__(entries)
        self.pending = TraceLog()
        """Records not read yet."""

    def flush(self) -> None:
        """Turn the pending records into entries (every read does this first)."""
        list.extend(self, map(_from_flat, self.pending.drain()))

    def trim(self, limit: int) -> None:
        """Keep only the ``limit`` most recent calls (the oldest go first, read or not)."""
        drop = list.__len__(self) + len(self.pending) - limit
        if drop <= 0:
            return
        head = min(drop, list.__len__(self))
        list.__delitem__(self, slice(0, head))
        self.pending.drop(drop - head)

    def __len__(self) -> int:
        return list.__len__(self) + self.pending.count

    def __bool__(self) -> bool:
        return bool(list.__len__(self) or self.pending.count)

    def clear(self) -> None:
        """Forget every call, pending ones too."""
        self.pending.clear()
        list.clear(self)

    __iter__ = _flushing(list.__iter__)
    __reversed__ = _flushing(list.__reversed__)
    __getitem__ = _flushing(list.__getitem__)
    __setitem__ = _flushing(list.__setitem__)
    __delitem__ = _flushing(list.__delitem__)
    __contains__ = _flushing(list.__contains__)
    __eq__ = _flushing(list.__eq__)
    __ne__ = _flushing(list.__ne__)
    __lt__ = _flushing(list.__lt__)
    __le__ = _flushing(list.__le__)
    __gt__ = _flushing(list.__gt__)
    __ge__ = _flushing(list.__ge__)
    __add__ = _flushing(list.__add__)
    __iadd__ = _flushing(list.__iadd__)
    __mul__ = _flushing(list.__mul__)
    __imul__ = _flushing(list.__imul__)
    __repr__ = _flushing(list.__repr__)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        """Pickle and copy as ``Trace(entries)``, pending records turned into entries first."""
        if self.pending:
            self.flush()
        return (type(self), ([*list.__iter__(self)],))

    append = _flushing(list.append)
    extend = _flushing(list.extend)
    insert = _flushing(list.insert)
    pop = _flushing(list.pop)
    remove = _flushing(list.remove)
    index = _flushing(list.index)
    count = _flushing(list.count)
    copy = _flushing(list.copy)
    sort = _flushing(list.sort)
    reverse = _flushing(list.reverse)
    __hash__ = None  # type: ignore[assignment]

    def calls(self, function: str) -> list[TraceEntry]:
        """Entries of one function."""
        return [e for e in self if e.function == function]

    def tail(self, n: int = 20) -> str:
        """The last ``n`` entries as text, one per line."""
        lines = [str(e) for e in self[-n:]]
        skipped = len(self) - len(lines)
        head = [f"... {skipped} earlier host calls"] if skipped > 0 else []
        return "\n".join(head + lines)

    def to_json(self) -> list[dict[str, Any]]:
        """JSON-ready list."""
        return [e.to_json() for e in self]

    def dump(self, path: str) -> None:
        """Write the trace as a JSON file (a golden file)."""
        import json  # here: only a golden file needs it (1 ms of ``import emulator``)

        with open(path, "w") as fh:
            json.dump(self.to_json(), fh, indent=1)

    def diff(self, other: Trace | list[dict[str, Any]], *, ignore: tuple[str, ...] = ("context_id",)) -> list[str]:
        """Differences with another trace or a loaded golden file; ``[]`` means equal.

        ``ignore`` names entry fields left out of the comparison.
        """
        mine = [_strip(e, ignore) for e in self.to_json()]
        theirs = [_strip(e if isinstance(e, dict) else e.to_json(), ignore) for e in other]
        out = []
        for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                out.append(f"call {i}: expected {b}\n        got {a}")
        if len(mine) != len(theirs):
            out.append(f"expected {len(theirs)} host calls, got {len(mine)}")
        return out


def _strip(entry: dict[str, Any], ignore: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ignore}
