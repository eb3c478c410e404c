"""Dataclasses that cost nothing to declare: :func:`record`, the decorator the import path uses.

``@dataclass`` writes each class's ``__init__``, ``__repr__`` and ``__eq__`` as source text and
compiles it, about 260 µs a class, and ``import dataclasses`` brings ``inspect``, ``ast`` and
``dis`` (5 ms). ``import emulator`` declared 37 dataclasses: 15 of its 42 ms. :func:`record`
makes the same classes from closures, with nothing compiled, and stays a dataclass to every
caller that asks:

- the constructor, its defaults and factories, ``__post_init__``, ``repr``, ``==``, the hash of a
  frozen record and :class:`dataclasses.FrozenInstanceError` are a dataclass's;
- ``dataclasses.fields``, ``asdict``, ``astuple``, ``replace`` and ``is_dataclass`` work: the
  first to ask reads ``__dataclass_fields__``, which builds a dataclass twin then (and imports
  :mod:`dataclasses` only then);
- ``inspect.signature`` gives the dataclass's signature, built the same way;
- type checkers read :func:`record` as ``@dataclass`` (``typing.dataclass_transform``).

It takes the options this project uses (``frozen``, ``eq``, ``repr``) and :func:`field` takes
``default``, ``default_factory``, ``repr`` and ``compare``; anything else is a ``TypeError``.
A record's constructor is a generic one, about 1 µs slower than a dataclass's: the request path
makes none (its records are extension types in the compiled mode, see :func:`fields_repr`).

This module sits in ``abi``, the lowest layer, so that both packages share it.
"""

from __future__ import annotations

import _thread
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    dataclass_transform = getattr(typing, "dataclass_transform", lambda **_: lambda f: f)

__all__ = ["Field", "field", "fields_eq", "fields_repr", "record", "record_fields", "record_values", "replace"]

_T = TypeVar("_T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""No default given (``dataclasses.MISSING``'s role)."""


class Field:
    """One field of a record: what :func:`field` declared, with its name and annotation."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr", "type")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True, compare: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.name = ""
        self.type: Any = None

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, type={self.type!r}, default={self.default!r}, default_factory={self.default_factory!r}, repr={self.repr}, compare={self.compare})"


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING, repr: bool = True, compare: bool = True) -> Any:
    """A field's options, as :func:`dataclasses.field` takes them (the subset records support)."""
    return Field(default, default_factory, repr, compare)


# -- repr and == (the records, and the plain classes the compiled request path makes) ----------------

_in_repr: set[tuple[int, int]] = set()


def fields_repr(obj: object, names: tuple[str, ...]) -> str:
    """A dataclass's repr: ``Name(field=value, ...)`` over ``names`` in order (``...`` for an
    object already being repr'd in this thread, as ``dataclasses`` guards recursion)."""
    key = (id(obj), _thread.get_ident())
    if key in _in_repr:
        return "..."
    _in_repr.add(key)
    try:
        return f"{type(obj).__qualname__}({', '.join(f'{n}={getattr(obj, n)!r}' for n in names)})"
    finally:
        _in_repr.discard(key)


def fields_eq(obj: object, other: object, names: tuple[str, ...]) -> Any:
    """A dataclass's ``==``: ``NotImplemented`` for another class, else the tuples of fields
    compared (so a field identical to itself counts as equal, as in a tuple, even a NaN)."""
    if type(other) is not type(obj):
        return NotImplemented
    return tuple(getattr(obj, n) for n in names) == tuple(getattr(other, n) for n in names)


# -- the decorator ------------------------------------------------------------------------------------


def record_fields(cls: type) -> tuple[Field, ...]:
    """A record class's fields in constructor order (inherited ones first)."""
    fields = getattr(cls, "__record_fields__", None)
    if fields is None:
        raise TypeError(f"{getattr(cls, '__qualname__', cls)!r} is not a record")
    return fields  # type: ignore[no-any-return]


def record_values(obj: object) -> tuple[Any, ...]:
    """A record's field values in constructor order (shallow: ``type(obj)(*values)`` rebuilds it)."""
    return tuple(getattr(obj, f.name) for f in record_fields(type(obj)))


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record ``obj`` with ``changes``, as :func:`dataclasses.replace` makes it (the
    constructor runs again, ``__post_init__`` too)."""
    for f in record_fields(type(obj)):
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return type(obj)(**changes)


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is typing.ClassVar or getattr(annotation, "__origin__", None) is typing.ClassVar


def _collect(cls: type, frozen: bool) -> tuple[Field, ...]:
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited = base.__dict__.get("__record_fields__")
        if inherited is None:
            continue
        if base.__dict__["__record_frozen__"] != frozen:
            raise TypeError(
                f"cannot inherit {'non-frozen' if frozen else 'frozen'} record {cls.__qualname__} from {'' if frozen else 'non-'}frozen {base.__qualname__}"
            )
        for f in inherited:
            found[f.name] = f
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 (inspect costs 4 ms to import)
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, Field):
            f = value
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        else:
            f = Field(default=value)
        if f.default is not MISSING and type(f.default).__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        f.name, f.type = name, annotation
        found[name] = f
    fields = tuple(found.values())
    seen_default = False
    for f in fields:
        if f.default is MISSING and f.default_factory is MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            seen_default = True
    return fields


def _stored_plainly(cls: type, names: tuple[str, ...], frozen: bool) -> bool:
    """Whether assigning a field is writing it into the instance's ``__dict__`` (no ``__slots__``,
    no data descriptor of that name, and ``object.__setattr__`` for a plain record)."""
    if not frozen and cls.__setattr__ is not object.__setattr__:  # type: ignore[comparison-overlap]
        return False
    for klass in cls.__mro__[:-1]:
        if "__slots__" in klass.__dict__:
            return False
        if any(hasattr(type(klass.__dict__.get(n)), "__set__") for n in names):
            return False
    return True


def _make_init(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    names = tuple(f.name for f in fields)
    known = frozenset(names)
    fallbacks = tuple((f.name, f.default, f.default_factory) for f in fields)
    count = len(names)
    required = sum(1 for f in fields if f.default is MISSING and f.default_factory is MISSING)
    takes = f"{count + 1}" if required == count else f"from {required + 1} to {count + 1}"
    plainly = _stored_plainly(cls, names, frozen)
    assign = object.__setattr__ if frozen else setattr
    post_init = hasattr(cls, "__post_init__")
    qualname = f"{cls.__qualname__}.__init__()"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        given = len(args)
        direct = plainly and type(self) is cls  # a subclass may give a field a setter: assign through it
        if given == count and not kwargs:  # every field given in order: the common call, made short
            if direct:
                self.__dict__.update(zip(names, args, strict=True))
            else:
                for name, value in zip(names, args, strict=True):
                    assign(self, name, value)
            if post_init:
                self.__post_init__()
            return
        if given > count:
            raise TypeError(f"{qualname} takes {takes} positional arguments but {given + 1} were given")
        values = dict(zip(names, args, strict=False))  # fewer args than names: the rest below
        if kwargs:
            if not known.issuperset(kwargs):
                raise TypeError(f"{qualname} got an unexpected keyword argument {next(k for k in kwargs if k not in known)!r}")
            if given and not values.keys().isdisjoint(kwargs):
                raise TypeError(f"{qualname} got multiple values for argument {next(k for k in kwargs if k in values)!r}")
            values.update(kwargs)
        if len(values) < count:
            missing: list[str] = []
            for name, default, factory in fallbacks:
                if name in values:
                    continue
                if factory is not MISSING:
                    values[name] = factory()
                elif default is not MISSING:
                    values[name] = default
                else:
                    missing.append(name)
            if missing:
                quoted = [repr(m) for m in missing]
                listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
                raise TypeError(f"{qualname} missing {len(missing)} required positional argument{'s' * (len(missing) > 1)}: {listed}")
        if direct:
            state = self.__dict__
            for name in names:  # in the fields' order, as a dataclass's __init__ assigns them
                state[name] = values[name]
        else:
            for name in names:
                assign(self, name, values[name])
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = qualname[:-2]
    return __init__


def _frozen_error(name: str, verb: str = "assign to") -> Exception:
    from dataclasses import FrozenInstanceError  # only when a frozen record is assigned to

    return FrozenInstanceError(f"cannot {verb} field {name!r}")


def _make_frozen(cls: type, names: frozenset[str]) -> tuple[Callable[..., None], Callable[..., None]]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(name)
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(name, "delete")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__


class _DataclassTwin:
    """``__dataclass_fields__``, ``__dataclass_params__`` and ``__signature__`` of a record, built
    on first use from a dataclass made with the same fields (then cached on the class)."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, obj: object, owner: type) -> Any:
        import dataclasses
        import inspect

        fields = record_fields(owner)

        def spec(f: Field) -> Any:
            default = dataclasses.MISSING if f.default is MISSING else f.default
            factory = dataclasses.MISSING if f.default_factory is MISSING else f.default_factory
            return dataclasses.field(default=default, default_factory=factory, repr=f.repr, compare=f.compare)

        specs = [(f.name, f.type, spec(f)) for f in fields]
        twin = dataclasses.make_dataclass(owner.__name__, specs, frozen=owner.__record_frozen__, eq=owner.__record_eq__)
        values = {
            "__dataclass_fields__": twin.__dataclass_fields__,  # type: ignore[attr-defined]
            "__dataclass_params__": twin.__dataclass_params__,  # type: ignore[attr-defined]
            "__signature__": inspect.signature(twin),
        }
        for name, value in values.items():
            type.__setattr__(owner, name, value)
        return values[self.attribute]


@typing.overload
def record(cls: type[_T], /) -> type[_T]: ...
@typing.overload
def record(*, frozen: bool = False, eq: bool = True, repr: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: type[_T] | None = None, /, *, frozen: bool = False, eq: bool = True, repr: bool = True) -> Any:
    """Make ``cls`` a dataclass as ``@dataclass(frozen=..., eq=..., repr=...)`` would, without
    compiling code (see the module docstring). The class is changed in place and returned."""

    def wrap(cls: type[_T]) -> type[_T]:
        fields = _collect(cls, frozen)
        body = cls.__dict__
        added: dict[str, Any] = {"__record_fields__": fields, "__record_frozen__": frozen, "__record_eq__": eq}
        added.update((name, _DataclassTwin(name)) for name in ("__dataclass_fields__", "__dataclass_params__", "__signature__"))
        added["__init__"] = _make_init(cls, fields, frozen)
        if repr and "__repr__" not in body:
            shown = tuple(f.name for f in fields if f.repr)
            added["__repr__"] = lambda self: fields_repr(self, shown)
        compared = tuple(f.name for f in fields if f.compare)
        if eq and "__eq__" not in body:
            added["__eq__"] = lambda self, other: fields_eq(self, other, compared)
        explicit_hash = "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body)
        if eq and not explicit_hash:  # dataclasses' rule (without unsafe_hash)
            added["__hash__"] = (lambda self: hash(tuple(getattr(self, n) for n in compared))) if frozen else None
        if frozen:
            if "__setattr__" in body or "__delattr__" in body:
                raise TypeError(f"cannot overwrite __setattr__ or __delattr__ in frozen record {cls.__qualname__}")
            added["__setattr__"], added["__delattr__"] = _make_frozen(cls, frozenset(f.name for f in fields))
        if "__match_args__" not in body:
            added["__match_args__"] = tuple(f.name for f in fields)
        for name, value in added.items():
            setattr(cls, name, value)
        return cls

    return wrap if cls is None else wrap(cls)
