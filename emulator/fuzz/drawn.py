"""One hypothesis draw for a whole value: a drawn byte string decoded into a header name, a header
value, a map entry, a path or a body.

Hypothesis's cost is per draw (about 20 µs each with its span bookkeeping), not per byte. A
composite of ``one_of``, ``sampled_from`` and ``text`` makes five to twenty draws for one header
name; the strategies of :mod:`emulator.fuzz.strategies` draw one ``st.binary`` instead and decode it
here. The decoding keeps what shrinking needs: a byte past the end reads as 0, and 0 decodes to the
first, simplest choice (the first branch, the first word, the first character of an alphabet), so a
byte string shrunk toward ``b""`` gives the simplest value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

Branch = Callable[[bytes], T]
"""Decodes a payload (the bytes after the selector) into a value."""

__all__: list[str] = []  # the strategies' decoding, not an API


def number(p: bytes, n: int) -> int:
    """An index below ``n`` from the payload's first two bytes (0 for an empty payload)."""
    return int.from_bytes(p[:2], "big") % n


def choose(branches: Sequence[Branch[T]], raw: bytes) -> T:
    """Decode ``raw``: its first byte picks the branch, the rest is that branch's payload."""
    return branches[(raw[0] if raw else 0) % len(branches)](raw[1:])


def word(words: Sequence[T]) -> Branch[T]:
    """A branch that picks one of ``words`` (a copy is kept) by its payload's first two bytes."""
    kept = tuple(words)
    return lambda p: kept[number(p, len(kept))]


def over(alphabet: str) -> bytes:
    """A ``bytes.translate`` table mapping every byte onto ``alphabet`` (0 onto its first character)."""
    return bytes(ord(alphabet[b % len(alphabet)]) for b in range(256))


def text(alphabet: str, *, max_size: int, min_size: int = 0) -> Branch[bytes]:
    """A branch giving the payload's first ``max_size`` bytes spelled over ``alphabet`` (ASCII),
    padded to ``min_size`` with its first character."""
    table = over(alphabet)
    pad = alphabet[0].encode()
    return lambda p: p[:max_size].translate(table).ljust(min_size, pad)


def fill(p: bytes, sizes: Sequence[int], fills: Sequence[bytes]) -> bytes:
    """A long value: one of ``sizes`` (first payload byte) of one of ``fills`` repeated (second byte)."""
    size = sizes[(p[0] if p else 0) % len(sizes)]
    unit = fills[(p[1] if len(p) > 1 else 0) % len(fills)]
    return (unit * (size // len(unit) + 1))[:size]


def codepoints(p: bytes, *, lo: int, hi: int, most: int, keep: Callable[[str], bool] = lambda c: True) -> str:
    """Between 1 and ``most`` characters from ``lo`` to ``hi``, three payload bytes each.

    Surrogates, and characters ``keep`` refuses, move on to the next code point that passes (or to
    ``lo``), so every payload decodes.
    """
    out = []
    span = hi - lo + 1
    for i in range(0, max(3, min(len(p), 3 * most)), 3):
        cp = lo + int.from_bytes(p[i : i + 3], "big") % span
        for _ in range(span):
            if not 0xD800 <= cp <= 0xDFFF and keep(chr(cp)):
                break
            cp = lo if cp >= hi else cp + 1
        out.append(chr(cp))
    return "".join(out)


def case_variant(name: str, p: bytes) -> str:
    """``name`` with at least one ASCII letter upper-cased, which ones chosen by the payload."""
    letters = [i for i, c in enumerate(name) if c.isascii() and c.isalpha()]
    if not letters:
        return name
    mask = int.from_bytes(p[:8], "big") % ((1 << len(letters)) - 1) + 1
    upper = {i for bit, i in enumerate(letters) if mask >> bit & 1}
    return "".join(c.upper() if i in upper else c for i, c in enumerate(name))
