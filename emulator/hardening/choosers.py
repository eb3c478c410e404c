"""Where plans and mutants get their randomness: one drawing interface (:class:`Chooser`) over
``random.Random`` for seeded campaigns (:class:`RandomChooser`) and over a hypothesis ``data`` object
for tests that shrink (:class:`DataChooser`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["Chooser", "DataChooser", "RandomChooser"]


T = TypeVar("T")


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
