"""Every Python example of the README and the guide (docs/pages/) runs, or is a checked excerpt.

The examples of a page run in order in one namespace (a later one may use what an earlier one
made), in a scratch folder where ``fixtures/`` is the repository's and the placeholder files the
examples name exist: ``filter.wasm`` (the planted Rust bug, so fuzzing finds something) and
``envoy.yaml`` (``fixtures/demo/envoy.yaml``). An HTML comment before a block changes that:
``<!-- example: schematic -->`` (call shapes with ``...``, not run) or
``<!-- example: excerpt FILE -->`` (every line of the block is a line of FILE, which the suite runs).
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs/pages").glob("*.md"))]
_FENCE = re.compile(r"^( *)```python\n(.*?)^\1```$", re.M | re.S)
_MARK = re.compile(r"<!-- example: (schematic|excerpt (\S+)) -->\s*$")


def examples(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, mark)`` of each Python block of ``page``, in order."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        out.append((line, textwrap.dedent(m.group(2)), mark.group(1) if mark else None))
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs-examples")
    (folder / "fixtures").symlink_to(ROOT / "fixtures", target_is_directory=True)
    shutil.copy(ROOT / "fixtures/bugs/rust_panic/bug_rust_panic.wasm", folder / "filter.wasm")
    shutil.copy(ROOT / "fixtures/demo/envoy.yaml", folder / "envoy.yaml")
    return folder


def test_the_pages_have_examples_and_few_are_not_run():
    found = [(page, mark) for page in PAGES for _, _, mark in examples(page)]
    assert len(found) >= 15
    assert sum(1 for _, mark in found if mark is not None) <= 3


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_example_runs(page, scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for line, code, mark in examples(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if mark == "schematic":
            continue
        if mark is not None:  # an excerpt of a file the suite runs
            source = {s.rstrip() for s in (ROOT / mark.split(" ", 1)[1]).read_text(encoding="utf-8").splitlines()}
            missing = [s for s in code.splitlines() if s.strip() and s.rstrip() not in source]
            assert not missing, f"{where}: not in {mark}: {missing}"
            continue
        try:
            exec(compile(code, where, "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"the example at {where} failed: {type(exc).__name__}: {exc}") from exc
