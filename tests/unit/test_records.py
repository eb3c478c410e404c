"""``abi.records.record`` behaves as ``dataclasses.dataclass``: each check builds the same class
both ways and compares what the standard library's dataclass does with what the record does."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from abi import records

ROOT = Path(__file__).resolve().parents[2]


def _twins(frozen: bool = False) -> tuple[Any, Any]:
    """One class body, declared as a dataclass and as a record (the same qualified name)."""

    def declare(decorate: Any, field: Any) -> Any:
        @decorate(frozen=frozen)
        class Point:
            x: int
            y: int = 2
            tags: list[str] = field(default_factory=list)
            note: str = field(default="n", repr=False)
            weight: float = field(default=1.0, compare=False)

        return Point

    return declare(dataclasses.dataclass, dataclasses.field), declare(records.record, records.field)


def _outcome(make: Any) -> tuple[str, Any]:
    try:
        value = make()
    except Exception as e:  # the error's type and text are part of the behaviour
        return type(e).__name__, str(e).replace("__init__", "").split("() ")[-1]
    return "ok", repr(value)


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}),
    ((1, 5), {}),
    ((1, 5, ["a"], "z", 3.0), {}),
    ((), {"x": 1, "note": "q"}),
    ((1,), {"weight": 0.5, "y": 7}),
    ((), {}),
    ((1, 2, [], "n", 1.0, "extra"), {}),
    ((1,), {"x": 2}),
    ((1,), {"nope": 2}),
]


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_constructor_and_repr_match_a_dataclass(frozen: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    dc, rec = _twins(frozen)
    assert _outcome(lambda: rec(*args, **kwargs)) == _outcome(lambda: dc(*args, **kwargs))


@pytest.mark.parametrize("frozen", [False, True])
def test_equality_hash_and_factories_match_a_dataclass(frozen: bool) -> None:
    dc, rec = _twins(frozen)
    for cls in (dc, rec):
        a, b = cls(1, weight=9.0), cls(1)
        assert a == b  # weight is not compared
        assert a != cls(2)
        assert a.tags is not b.tags  # a new list per instance
        assert (a == "other") is False
        assert a.__eq__("other") is NotImplemented
    assert (rec.__hash__ is None) == (dc.__hash__ is None) == (not frozen)
    if frozen:
        assert hash(rec(1, tags=())) == hash(dc(1, tags=()))  # type: ignore[arg-type]
        assert hash(rec(1, tags=())) == hash(rec(1, tags=(), weight=5.0))  # type: ignore[arg-type]
    nan = float("nan")
    assert rec(1, note=nan) == rec(1, note=nan)  # type: ignore[arg-type]  # tuples compare identity first
    assert rec.__match_args__ == dc.__match_args__


def test_a_frozen_record_refuses_assignment_as_a_dataclass_does() -> None:
    dc, rec = _twins(frozen=True)
    for cls in (dc, rec):
        p = cls(1)
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
            p.x = 3
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
            del p.y
    _, plain = _twins(frozen=False)
    p = plain(1)
    p.x = 3
    assert p.x == 3


@pytest.mark.parametrize("frozen", [False, True])
def test_the_dataclasses_module_reads_a_record(frozen: bool) -> None:
    dc, rec = _twins(frozen)

    def shape(f: dataclasses.Field[Any]) -> tuple[Any, ...]:
        return (f.name, f.type, f.default, f.default_factory, f.repr, f.compare, f.init)

    assert dataclasses.is_dataclass(rec) and dataclasses.is_dataclass(rec(1))
    assert [shape(f) for f in dataclasses.fields(rec)] == [shape(f) for f in dataclasses.fields(dc)]
    assert dataclasses.asdict(rec(1, tags=["t"])) == dataclasses.asdict(dc(1, tags=["t"]))
    assert dataclasses.astuple(rec(1)) == dataclasses.astuple(dc(1))
    changed = dataclasses.replace(rec(1, tags=["t"]), y=9)
    assert repr(changed) == repr(dataclasses.replace(dc(1, tags=["t"]), y=9))
    assert repr(records.replace(rec(1, tags=["t"]), y=9)) == repr(changed)
    assert rec.__dataclass_params__.frozen is frozen
    assert str(inspect.signature(rec)) == str(inspect.signature(dc))


@pytest.mark.parametrize("frozen", [False, True])
def test_pickle_and_deepcopy_round_trip(frozen: bool) -> None:
    _, rec = _twins(frozen)
    globals()["Point"] = rec  # pickle finds a class by its module and name
    rec.__qualname__ = "Point"
    try:
        p = rec(1, tags=["t"])
        assert pickle.loads(pickle.dumps(p)) == p
        assert copy.deepcopy(p) == p and copy.deepcopy(p).tags is not p.tags
    finally:
        del globals()["Point"]


def test_inheritance_post_init_and_overrides_match_a_dataclass() -> None:
    def declare(decorate: Any) -> tuple[Any, Any]:
        @decorate
        class Base:
            a: int
            b: str = "b"

            def __repr__(self) -> str:  # a body's own method is kept
                return f"<{self.a}>"

        @decorate
        class Sub(Base):
            c: int = 0
            b: str = "sub"  # keeps its place, takes the new default

            def __post_init__(self) -> None:
                self.c += 100

        return Base, Sub

    (dbase, dsub), (rbase, rsub) = declare(dataclasses.dataclass), declare(records.record)
    assert repr(rbase(1)) == repr(dbase(1)) == "<1>"
    assert vars(rsub(1)) == vars(dsub(1)) == {"a": 1, "b": "sub", "c": 100}
    assert [f.name for f in records.record_fields(rsub)] == [f.name for f in dataclasses.fields(dsub)]
    assert rsub(1) != rbase(1)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("x: list = []", ValueError),  # a mutable default
        ("x: int = 1\n    y: int", TypeError),  # no default after a default
    ],
)
def test_declarations_a_dataclass_refuses_are_refused(body: str, error: type[Exception]) -> None:
    for decorate in ("dataclasses.dataclass", "records.record"):
        with pytest.raises(error):
            exec(f"@{decorate}\nclass C:\n    {body}\n", {"dataclasses": dataclasses, "records": records})


def test_frozen_and_plain_records_do_not_mix() -> None:
    @records.record(frozen=True)
    class Frozen:
        a: int

    with pytest.raises(TypeError, match="cannot inherit"):

        @records.record
        class Thawed(Frozen):
            b: int = 0


def test_the_package_declares_its_classes_with_record() -> None:
    """One way to declare a data class: ``dataclasses`` is imported by ``abi.records`` alone."""
    users = [
        str(p.relative_to(ROOT))
        for package in ("abi", "emulator")
        for p in (ROOT / package).rglob("*.py")
        if "from dataclasses import" in p.read_text() or "import dataclasses" in p.read_text()
    ]
    assert users == ["abi/records.py"]


SLOW_IMPORTS = ("dataclasses", "inspect", "ast", "dis", "pickle", "json", "hashlib", "datetime", "copy", "threading", "tempfile")
"""Modules a new process does without until it needs them (each costs 0.5-5 ms to import)."""


def test_import_emulator_loads_none_of_the_slow_imports() -> None:
    code = f"import sys, emulator; print(sorted(m for m in {SLOW_IMPORTS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_process_that_loads_a_module_seen_before_imports_none_of_them(tmp_path: Path) -> None:
    """The second process finds the compiled module, its outline and its sha256 in the cache."""
    code = (
        "import sys, emulator\n"
        f"emulator.Host(trace=False, cache={str(tmp_path / 'cache')!r}).load({str(ROOT / 'fixtures/rust/headers_rust.wasm')!r})\n"
        f"print(sorted(m for m in {SLOW_IMPORTS!r} if m in sys.modules))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip() for _ in range(2)]
    assert runs[0] != "[]"  # the control: the first load compiles, hashes and writes the cache
    assert runs[1] == "[]"


@pytest.mark.parametrize("before", [True, False])
def test_import_emulator_leaves_the_collector_as_it_found_it(before: bool) -> None:
    """The package pauses the garbage collector while it imports (see ``emulator/__init__.py``)."""
    code = f"import gc; {'' if before else 'gc.disable(); '}import emulator; print(gc.isenabled())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(before)


def test_a_plain_subclass_of_a_record_is_read_as_its_base_by_dataclasses() -> None:
    dc, rec = _twins(frozen=True)

    class DcSub(dc):  # type: ignore[misc,valid-type]
        pass

    class RecSub(rec):  # type: ignore[misc,valid-type]
        pass

    assert [f.name for f in dataclasses.fields(RecSub)] == [f.name for f in dataclasses.fields(DcSub)]
    assert dataclasses.asdict(RecSub(1)) == dataclasses.asdict(DcSub(1))
    assert repr(RecSub(1)).split("(", 1)[1] == repr(DcSub(1)).split("(", 1)[1]


def test_a_subclass_setter_of_a_field_runs_as_under_a_dataclass() -> None:
    seen: dict[str, list[Any]] = {}

    def subclass(base: Any, key: str) -> Any:
        class Checked(base):  # type: ignore[misc,valid-type]
            @property
            def y(self) -> Any:
                return self.__dict__["_y"]

            @y.setter
            def y(self, value: Any) -> None:
                seen.setdefault(key, []).append(value)
                self.__dict__["_y"] = value * 10

        return Checked

    dc, rec = _twins(frozen=False)
    assert subclass(rec, "rec")(1, 3).y == subclass(dc, "dc")(1, 3).y == 30
    assert subclass(rec, "rec")(1).y == subclass(dc, "dc")(1).y == 20
    assert seen["rec"] == seen["dc"] == [3, 2]


def test_the_record_a_callback_begins_with_is_the_one_the_constructor_makes():
    from emulator.http.types import CallbackRecord, begun_record

    begun, made = begun_record("proxy_on_log", (3,), 17), CallbackRecord("proxy_on_log", (3,), None, None, seq=17)
    assert begun == made and repr(begun) == repr(made) and type(begun) is CallbackRecord
    assert (begun.raw, begun.action, begun.cost, begun.notes) == (None, None, None, [])
    begun.notes.append("noted")
    begun.raw, begun.action = 0, "Continue"
    assert begun.to_json() == {"name": "proxy_on_log", "args": [3], "raw": 0, "action": "Continue", "notes": ["noted"]}
