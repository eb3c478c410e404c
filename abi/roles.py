"""What each parameter of a host function is for: the role column of the ABI table.

A parameter of the table in :mod:`abi.signatures` is written ``name`` or ``name:spec``:

============  ==========================================================================================
``spec``      meaning
============  ==========================================================================================
(none)        an ``i32`` scalar (a count, an id, a token, a flag...)
``i64``       an ``i64`` scalar
``MapType``   an ``i32`` enum of :mod:`abi.enums` that the host checks: past its last member the call
              answers ``BadArgument`` (abi-spec.md §1.5, §1.6, §1.7, §1.12)
``in``        the pointer of an input byte range; the **next** parameter is its size (abi-spec.md §4.1)
``in.pairs``  the same, holding serialized pairs (abi-spec.md §4.2)
``in.path``   the same, holding a property path (abi-spec.md §4.3)
``out4``      an out-pointer to the ``N`` bytes the host writes (``out4`` a u32, ``out8`` a u64, ``out24``
              a WASI fdstat...)
``copyout``   the ``ptr**`` of a copy-out pair: the host allocates in the guest (re-entering its
              allocator), writes the address here and the size through the **next** parameter (§4.1)
``iov``       a WASI iovec array; the next parameter is the number of iovecs
``buf``       a guest buffer the host writes into; the next parameter is its size
``mem``       a pointer whose extent comes from elsewhere (a count parameter, or an earlier
              ``*_sizes_get`` call): the WASI environ/argv arrays, ``poll_oneoff``'s subscriptions
============  ==========================================================================================

The parameter after ``in``, ``buf``, ``iov`` or ``copyout`` takes its role from the pair (``size``,
``count`` or ``size_out``) and is written without a spec. Everything here is data: the trace decoder,
the hostile-guest fuzzer and fault injection read it instead of guessing from parameter names.
"""

from __future__ import annotations

from enum import IntEnum

from . import enums
from .records import record

__all__ = [
    "BUF",
    "COPY_OUT",
    "COUNT",
    "ENUM",
    "IN",
    "IOV",
    "MEM",
    "OUT",
    "POINTER_ROLES",
    "SCALAR",
    "SIZE",
    "SIZE_OUT",
    "Param",
    "parse_params",
]

SCALAR = "scalar"
ENUM = "enum"
IN = "in"
SIZE = "size"
OUT = "out"
COPY_OUT = "copyout"
SIZE_OUT = "size_out"
IOV = "iov"
COUNT = "count"
BUF = "buf"
MEM = "mem"

_PARTNER = {IN: SIZE, BUF: SIZE, IOV: COUNT, COPY_OUT: SIZE_OUT}
"""Roles that take the next parameter along, and the role that parameter gets."""
POINTER_ROLES = frozenset({IN, OUT, COPY_OUT, SIZE_OUT, IOV, BUF, MEM})
"""Roles whose value is a guest address: a bad one gives InvalidMemoryAccess (WASI: FAULT)."""
_FORMATS = frozenset({"pairs", "path"})


@record(frozen=True)
class Param:
    """One parameter of a host function, with its role (see the module docstring)."""

    name: str
    type: str
    """``i32`` or ``i64`` (the wasm type)."""
    role: str
    enum: type[IntEnum] | None = None
    """For ``enum``: the enumeration the host checks the value against."""
    width: int | None = None
    """For ``out``: how many bytes the host writes; ``copyout`` and ``size_out`` slots are u32s (4)."""
    format: str | None = None
    """For ``in``: ``pairs`` or ``path`` when the bytes have a wire format, else ``None``."""
    pair: int | None = None
    """For the two parameters of a pair: the index of the other one."""

    @property
    def is_pointer(self) -> bool:
        """Whether the value is a guest address."""
        return self.role in POINTER_ROLES

    @property
    def is_output(self) -> bool:
        """Whether the host writes through it (an out-pointer, either half of a copy-out pair)."""
        return self.role in (OUT, COPY_OUT, SIZE_OUT)

    @property
    def enum_max(self) -> int | None:
        """The largest value the host accepts for an ``enum`` parameter."""
        return int(max(self.enum)) if self.enum is not None else None


_SEEN: dict[tuple[str | int, ...], tuple[Param, ...]] = {}
"""Parameters already parsed, by their tokens and place: the tables repeat them (``context_id``,
``return_value_data:copyout return_value_size``...), and a Param is immutable, so they share it."""


def parse_params(function: str, tokens: list[str]) -> tuple[Param, ...]:
    """Parse the parameter tokens of one table line (``name`` or ``name:spec``)."""
    out: list[Param] = []
    i = 0
    while i < len(tokens):
        name, _, spec = tokens[i].partition(":")
        role, _, fmt = spec.partition(".")
        if role in _PARTNER:
            if fmt and (role not in (IN, COPY_OUT) or fmt not in _FORMATS):
                raise ValueError(f"{function}: unknown format {fmt!r} of {name}:{role} (inputs and copy-outs know {sorted(_FORMATS)})")
            if i + 1 >= len(tokens) or ":" in tokens[i + 1]:
                raise ValueError(f"{function}: {name}:{spec} must be followed by its plain partner parameter")
            key = (tokens[i], tokens[i + 1], i)  # a pair's params name their partner by place
            pair = _SEEN.get(key)
            if pair is None:
                width = 4 if role == COPY_OUT else None
                pair = _SEEN[key] = (
                    Param(name, "i32", role, width=width, format=fmt or None, pair=i + 1),
                    Param(tokens[i + 1], "i32", _PARTNER[role], width=width, pair=i),
                )
            out += pair
            i += 2
            continue
        single = _SEEN.get((tokens[i],))
        if single is None:
            single = _SEEN[(tokens[i],)] = (_single(function, name, spec),)
        out += single
        i += 1
    return tuple(out)


def _single(function: str, name: str, spec: str) -> Param:
    if not spec:
        return Param(name, "i32", SCALAR)
    if spec == "i64":
        return Param(name, "i64", SCALAR)
    if spec == MEM:
        return Param(name, "i32", MEM)
    if spec.startswith(OUT) and spec[len(OUT) :].isdigit():
        width = int(spec[len(OUT) :])
        if width < 1:
            raise ValueError(f"{function}: {name}:{spec} writes no bytes")
        return Param(name, "i32", OUT, width=width)
    enum = getattr(enums, spec, None) if spec in enums.__all__ else None
    if isinstance(enum, type) and issubclass(enum, IntEnum):
        return Param(name, "i32", ENUM, enum=enum)
    raise ValueError(f"{function}: unknown parameter role {spec!r} of {name}")
