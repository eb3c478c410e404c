"""The fuzzer's dictionary: printable strings of a wasm module's data segments, cut into header-name
and value words, so generated traffic reaches the headers a filter looks for without being told.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abi.records import field, record

if TYPE_CHECKING:
    from ..host import ModuleSource

__all__ = ["Vocabulary", "data_segments", "harvest_strings", "host_call_vocabulary", "literal_pieces", "module_vocabulary", "own_strings"]


def _read_wasm(module: ModuleSource) -> bytes:
    if isinstance(module, bytes | bytearray):
        return bytes(module)
    return Path(module).read_bytes()


def data_segments(module: ModuleSource) -> list[bytes]:
    """The bytes of every data segment of a wasm module (active and passive)."""
    from ..vm.module import parse_module

    data = _read_wasm(module)
    return [data[start:end] for start, end in parse_module(data).data_segments]


_PRINTABLE = re.compile(rb"[\x20-\x7e]+")
_WORD_AS_WRITTEN = re.compile(r"^:?[A-Za-z0-9][A-Za-z0-9_.:/=-]*$")
_SPLIT = re.compile(rb"[\s\"'=<>,;(){}\[\]|\\`]+")
_NAME_LIKE = re.compile(r"^:?[a-z0-9][a-z0-9_.-]*[a-z0-9]$")


def literal_pieces(module: ModuleSource, *, max_len: int = 64) -> list[bytes]:
    """The module's data segments cut where the code says literals are.

    Toolchains store string literals back to back: Go packs them sorted by length, so
    ``x-mirror-to30517578125/dev/stdout`` is three literals, and Rust and C++ put them end to
    end. The code names each literal it uses with constants
    (:mod:`emulator.vm.instructions`): an address and, next to it, a length. So the pieces are:
    first every ``(address, length)`` pair of constants that lands in an active segment (the
    literals exactly), then the segments cut at every constant address that points into them.
    Segments whose address is not a constant stay whole.
    """
    literals, pieces, _ = _pieces(_read_wasm(module), max_len)
    return literals + pieces


_OWN_CODE = ("main.",)
"""Name prefixes of the functions a filter's author wrote, where a toolchain makes them plain: Go
names the program's own package ``main``. Literals named in those functions rank first."""


def _pieces(data: bytes, max_len: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """The exact literals (from address and length pairs), the segments cut at addresses, and
    the literals named in the author's own functions (:data:`_OWN_CODE`)."""
    from bisect import bisect_left, bisect_right

    from ..vm.instructions import code_constants, nearby_pairs
    from ..vm.module import parse_module

    info = parse_module(data)
    placed = sorted((address, start, end) for (start, end), address in zip(info.data_segments, info.data_addresses, strict=True) if address is not None)
    constants = code_constants(data, info)
    own_functions = {i for i, name in info.function_names.items() if name.startswith(_OWN_CODE)}
    # short literals a compiler compares inline: the bytes of an integer constant ("sandbox-" as
    # one i64.const), joined with the constants right after it in the same function
    immediates = _immediate_words(constants)
    own_immediates = _own_immediates(constants, own_functions)
    if not placed:
        return immediates, [data[start:end] for start, end in info.data_segments], [w for w in immediates if w in own_immediates]
    bases = [base for base, _, _ in placed]
    starts = {value for value, _, _ in constants}
    literals: list[bytes] = []
    own: list[bytes] = []
    for (address, size), functions in sorted(nearby_pairs(constants).items()):
        if not 0 < size <= max_len:
            continue
        i = bisect_right(bases, address) - 1
        if i < 0:
            continue
        base, start, end = placed[i]
        at = start + address - base
        # a length is the literal's when the next literal starts there (the code names it too),
        # or when it does not stop in the middle of a word
        fits = address + size in starts or not _continues_token(data, at + size, end)
        if at + size > end or 0 in data[at : at + size]:
            continue
        if fits:
            literals.append(data[at : at + size])
        if functions & own_functions:  # few, and the author's: every candidate length is kept
            own.append(data[at : at + size])
    consts = sorted(starts)
    pieces: list[bytes] = []
    for (start, end), address in zip(info.data_segments, info.data_addresses, strict=True):
        seg = data[start:end]
        if address is None:
            pieces.append(seg)
            continue
        cuts = [c - address for c in consts[bisect_right(consts, address) : bisect_left(consts, address + len(seg))]]
        pieces += [seg[a:b] for a, b in zip([0, *cuts], [*cuts, len(seg)], strict=True)]
    return literals + immediates, pieces, own + [w for w in immediates if w in own_immediates]


_IMMEDIATE_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/")


def _immediate_bytes(value: int) -> bytes | None:
    """The little-endian bytes of a constant when they are all word characters (at least 3)."""
    raw = (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little").rstrip(b"\0")
    if len(raw) >= 3 and all(b in _IMMEDIATE_CHARS for b in raw):
        return raw
    return None


def _immediate_words(constants: list[tuple[int, int, int]]) -> list[bytes]:
    out: dict[bytes, None] = {}
    run: list[bytes] = []
    last: tuple[int, int] | None = None
    for value, at, func in constants:
        raw = _immediate_bytes(value)
        if raw is None:
            continue
        if last is not None and last[1] == func and at - last[0] <= 8 and len(run[-1]) == 8:
            run.append(raw)  # a longer literal compared 8 bytes at a time
        else:
            run = [raw]
        out[raw] = None
        if len(run) > 1:
            out[b"".join(run)] = None
        last = (at, func)
    return list(out)


def _own_immediates(constants: list[tuple[int, int, int]], own_functions: set[int]) -> set[bytes]:
    return set(_immediate_words([c for c in constants if c[2] in own_functions])) if own_functions else set()


_TOKEN = frozenset(b"abcdefghijklmnopqrstuvwxyz-_")


def _continues_token(data: bytes, pos: int, end: int) -> bool:
    """Whether the byte at ``pos`` would continue a lower-case word: a length that stops there
    cuts a literal in the middle, so it is not the literal's length."""
    return pos < end and data[pos] in _TOKEN


def harvest_strings(module: ModuleSource, *, min_len: int = 3, max_len: int = 64, limit: int = 4096) -> list[str]:
    """Printable strings of the module's data segments, cut into dictionary words.

    The segments are first cut where the code says literals start (:func:`literal_pieces`); runs
    of printable ASCII (and of UTF-16 ASCII, as AssemblyScript stores strings) are then split at
    whitespace and punctuation, and before every ``x-``. The words of the whole segments follow,
    for literals the code addresses in ways the cut does not see. Words keep their first-seen
    order; at most ``limit``.
    """
    data = _read_wasm(module)
    key = hashlib.sha256(data).hexdigest(), min_len, max_len, limit
    cached = _HARVESTS.get(key)
    if cached is None:
        cached = _HARVESTS[key] = _harvest(data, min_len, max_len, limit)
        while len(_HARVESTS) > 8:
            _HARVESTS.pop(next(iter(_HARVESTS)))
    return list(cached)


_HARVESTS: dict[tuple[Any, ...], list[str]] = {}


def own_strings(module: ModuleSource, *, min_len: int = 3, max_len: int = 64) -> list[str]:
    """The words of the literals the filter's author's own functions name (Go: package ``main``),
    in code order; empty where a toolchain does not make the author's code plain."""
    data = _read_wasm(module)
    key = hashlib.sha256(data).hexdigest(), "own", min_len, max_len
    cached = _HARVESTS.get(key)
    if cached is None:
        words: dict[str, None] = {}
        _add_literal_words(words, _pieces(data, max_len)[2], min_len, max_len)
        cached = _HARVESTS[key] = list(words)
    return list(cached)


def _add_literal_words(seen: dict[str, None], literals: list[bytes], min_len: int, max_len: int) -> None:
    for literal in literals:  # split at punctuation only: a literal the code names holds no glued neighbour
        if not _PRINTABLE.fullmatch(literal):
            continue
        raw = literal.decode()
        if min_len <= len(raw) <= max_len and _WORD_AS_WRITTEN.match(raw):
            seen.setdefault(raw, None)  # as written, e.g. a prefix the code compares against ("sandbox-")
        for piece in _SPLIT.split(literal):
            w = piece.decode()
            w = w.rstrip(":.") if w.startswith(":") else w.strip(":.-_/")
            if min_len <= len(w) <= max_len and w not in seen:
                seen[w] = None


def _harvest(data: bytes, min_len: int, max_len: int, limit: int) -> list[str]:
    seen: dict[str, None] = {}
    literals, pieces, _ = _pieces(data, max_len)
    _add_literal_words(seen, literals, min_len, max_len)
    for seg in [*pieces, *data_segments(data)]:
        runs = re.findall(rb"[\x20-\x7e]{%d,}" % min_len, seg)
        # UTF-16 (AssemblyScript); a segment loses its trailing zero bytes, so the last character may lack its \0
        wide = re.findall(rb"(?:[\x20-\x7e]\x00){%d,}(?:[\x20-\x7e]\Z)?" % (min_len - 1), seg)
        runs += [(r + b"\0" * (len(r) % 2)).decode("utf-16-le").encode() for r in wide]
        for run in runs:
            for piece in _SPLIT.split(run):
                for word in re.split(rb"(?=x-)", piece):
                    w = word.decode()
                    w = w.rstrip(":.") if w.startswith(":") else w.strip(":.-_/")
                    if min_len <= len(w) <= max_len and w not in seen:
                        seen[w] = None
                        if len(seen) >= limit:
                            return list(seen)
    return list(seen)


@record
class Vocabulary:
    """Dictionary words for header names and values."""

    names: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    def merged(self, other: Vocabulary) -> Vocabulary:
        """Both vocabularies, ``other``'s words first, without repeats."""
        return Vocabulary(list(dict.fromkeys([*other.names, *self.names])), list(dict.fromkeys([*other.values, *self.values])))


def module_vocabulary(module: ModuleSource, *, max_names: int = 256, max_values: int = 256) -> Vocabulary:
    """Header-name-like words (lower-case tokens; hyphenated and pseudo-header ones first) and
    short value words harvested from the module's data segments."""
    words = harvest_strings(module)
    names = [w for w in words if _NAME_LIKE.match(w) and len(w) <= 40]
    # custom headers first (the ``x-`` convention), then other hyphenated and pseudo-header words
    names.sort(key=lambda w: 0 if w.startswith("x-") else 1 if ("-" in w or w.startswith(":")) else 2)
    values = [w for w in words if len(w) <= 32]
    return Vocabulary(names[:max_names], values[:max_values])


# host calls whose key argument names a header the filter looks at
_HEADER_KEY_CALLS = ("proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_replace_header_map_value", "proxy_remove_header_map_value")


def host_call_vocabulary(trace: Any) -> Vocabulary:
    """Words the filter itself asked the host for, read from a host-call trace: the header names it
    looked up, added, replaced or removed (names), and the values it wrote (values).

    These come from the module's own behaviour on the seed traffic, so a header the filter checks
    is in the dictionary whatever its string literal looks like in the binary.
    """
    names: dict[str, None] = {}
    values: dict[str, None] = {}
    for entry in trace:
        if entry.function not in _HEADER_KEY_CALLS:
            continue
        args = entry.args
        key = args.get("key")
        if isinstance(key, str) and 0 < len(key) <= 64:
            names[key.lower()] = None
        value = args.get("value")
        if isinstance(value, str) and 0 < len(value) <= 32:
            values[value] = None
    return Vocabulary(list(names), list(values))
