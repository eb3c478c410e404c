"""The README is short and the guide is docs/pages/: every link resolves, on GitHub (files) and on the
site (docs/hooks.py rewrites them), and the site's navigation lists every page."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

from tests.conftest import ROOT

PAGES = ROOT / "docs/pages"
# the project guide's front door: these sections, in the README itself
README_SECTIONS = ["Quickstart", "Status", "Python API", "CLI", "pytest plugin", "Fuzzing", "Benchmarking", "Documentation", "ABI coverage"]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _links(text):
    hooks = _hooks()
    return [m.group(2) for line, fenced in hooks._lines(text) if not fenced for m in hooks._LINK.finditer(line)]


def _readme():
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_the_short_front_door():
    text = _readme()
    titles = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    assert titles == README_SECTIONS
    before_the_table = text[: text.index("## ABI coverage")]
    assert len(before_the_table.splitlines()) <= 250  # the rest is the guide's


@pytest.mark.parametrize("source", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in PAGES.glob("*.md"))])
def test_every_link_resolves_in_the_repository(source):
    """What a reader of the files (GitHub, an editor) follows: files exist, anchors are headings."""
    hooks = _hooks()
    here = (ROOT / source).parent
    for target in _links((ROOT / source).read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (here / path).resolve() if path else ROOT / source
        assert file.exists(), f"{source}: link to {target}: no such file"
        if anchor:
            assert anchor in hooks.headings(file.read_text(encoding="utf-8")), f"{source}: link to {target}: no such heading"


def test_every_link_resolves_on_the_site():
    hooks = _hooks()
    readme_pages = hooks.readme_pages(_readme())
    anchors = hooks.readme_anchors(readme_pages)
    sources = {**readme_pages, **{p.name: p.read_text(encoding="utf-8") for p in PAGES.glob("*.md")}}
    site = {page: hooks.site_links(page, text, anchors) for page, text in sources.items()}
    reference = {p.relative_to(PAGES).as_posix() for p in PAGES.glob("reference/*.md")}
    for page, text in site.items():
        for target in _links(text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            path = path or page
            assert path in site or path in reference, f"{page}: link to {target}"
            assert not anchor or anchor in hooks.headings(site[path]), f"{page}: no heading #{anchor} on {path}"
        assert "../../" not in text and "docs/pages/" not in re.sub(r"`[^`]*`", "", text), page


def test_the_navigation_lists_every_page():
    config = yaml.safe_load((ROOT / "docs/mkdocs.yml").read_text(encoding="utf-8"))

    def walk(items):
        for item in items:
            for value in item.values():
                yield from walk(value) if isinstance(value, list) else [value]

    listed = set(walk(config["nav"]))
    on_disk = {p.relative_to(PAGES).as_posix() for p in PAGES.rglob("*.md")} | {"index.md", "abi-coverage.md"}
    assert listed == on_disk


def test_links_are_rewritten_for_the_site():
    hooks = _hooks()
    anchors = {"abi-coverage": "abi-coverage.md", "quickstart": "index.md"}
    readme = "[table](#abi-coverage), [start](#quickstart), [guide](docs/pages/cli.md#scenario-files), [contract](fixtures/CONTRACT.md)\n"
    assert hooks.site_links("index.md", readme, anchors) == (
        "[table](abi-coverage.md#abi-coverage), [start](#quickstart), [guide](cli.md#scenario-files), contract (`fixtures/CONTRACT.md` in the repository)\n"
    )
    guide = "[table](../../README.md#abi-coverage), [home](../../README.md), [test](../../tests/examples/test_first.py), [cli](cli.md#cli)\n"
    assert hooks.site_links("fuzzing.md", guide, anchors) == (
        "[table](abi-coverage.md#abi-coverage), [home](index.md), test (`tests/examples/test_first.py` in the repository), [cli](cli.md#cli)\n"
    )
    assert hooks.site_links("cli.md", "```\n[not](a/link)\n```\n", anchors) == "```\n[not](a/link)\n```\n"


def test_a_readme_without_the_abi_table_is_refused():
    with pytest.raises(ValueError, match="ABI coverage"):
        _hooks().readme_pages("# x\n\n## Quickstart\n")
