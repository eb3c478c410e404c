"""A dataclass's repr and ``==`` for the plain classes the request path makes.

Every request makes several records (one per callback, one per side, one cost per metered
callback). As dataclasses, their generated ``__init__`` runs as interpreted Python even in the
compiled speed mode; as plain classes with ``__slots__`` they compile into extension types (a
``.pxd`` beside their module). These two functions keep what the dataclass gave them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fields_eq", "fields_repr"]


def fields_repr(obj: object, names: tuple[str, ...]) -> str:
    """A dataclass's repr: ``Name(field=value, ...)`` over ``names`` in order."""
    return f"{type(obj).__name__}({', '.join(f'{n}={getattr(obj, n)!r}' for n in names)})"


def fields_eq(obj: object, other: object, names: tuple[str, ...]) -> Any:
    """A dataclass's ``==``: ``NotImplemented`` for another class, else the tuples of fields
    compared (so a field identical to itself counts as equal, as in a tuple, even a NaN)."""
    if type(other) is not type(obj):
        return NotImplemented
    return tuple(getattr(obj, n) for n in names) == tuple(getattr(other, n) for n in names)
