"""The documentation site's guide pages are the README's sections (docs/hooks.py): every section on a page, every link resolved."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.conftest import ROOT


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_readme_section_is_on_a_page_and_every_link_resolves():
    hooks = _hooks()
    pages = hooks.build_pages((ROOT / "README.md").read_text(encoding="utf-8"))
    assert set(pages) == set(hooks.PAGES)
    anchors = {page: {hooks.slug(m.group(2)) for m in hooks._HEADING.finditer(text)} for page, text in pages.items()}
    for page, text in pages.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            name = name or page
            assert name in pages, f"{page}: link to {target}"
            assert not anchor or anchor in anchors[name], f"{page}: no heading #{anchor} on {name}"
    assert "## Fuzzing" not in pages["fuzzing.md"] and pages["fuzzing.md"].startswith("# Fuzzing")


def test_a_section_missing_from_the_pages_is_an_error():
    hooks = _hooks()
    with pytest.raises(ValueError, match="on no page"):
        hooks.build_pages((ROOT / "README.md").read_text(encoding="utf-8") + "\n## A new section\n\ntext\n")


def test_links_are_rewritten_across_pages_and_files_become_code():
    hooks = _hooks()
    text = hooks._relink(
        "cli.md", "see [the table](#abi-coverage), [here](#cli) and [contract](fixtures/CONTRACT.md)\n", {"abi-coverage": "abi-coverage.md", "cli": "cli.md"}
    )
    assert text == "see [the table](abi-coverage.md#abi-coverage), [here](#cli) and contract (`fixtures/CONTRACT.md` in the repository)\n"
