"""mkdocs hook: the site's home page and its ABI coverage page are the README's sections (one text,
two readers); the guide pages are the files of ``docs/pages/``, written to read right on GitHub too.

Links are written for the repository and rewritten here for the site:

- in the README, ``docs/pages/X.md#a`` becomes ``X.md#a``, and an anchor held by the other README
  page becomes a link to it;
- in a guide page, ``../../README.md#a`` becomes the README page that holds the heading;
- a link to any other repository file (which the site does not carry) becomes a code span.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"

ABI_COVERAGE = "ABI coverage"
"""The README section that is a page of its own; the rest of the README is the home page."""

_HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.M)
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
_GUIDE = "docs/pages/"
_UP = "../../"


def slug(title: str) -> str:
    """The anchor Python-Markdown's toc extension gives a heading (and GitHub, for these titles)."""
    text = re.sub(r"[`*_]", "", title).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text)


def _lines(text: str) -> Iterator[tuple[str, bool]]:
    """Each line (with its end) and whether it is inside a fenced code block (the fences count as inside)."""
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
            yield line, True
        else:
            yield line, fenced


def headings(text: str) -> set[str]:
    """The anchors of a markdown text's headings (outside code blocks)."""
    out = set()
    for line, fenced in _lines(text):
        m = None if fenced else _HEADING.match(line)
        if m:
            out.add(slug(m.group(2)))
    return out


def readme_pages(readme: str) -> dict[str, str]:
    """``index.md`` (the README without its ABI coverage section) and ``abi-coverage.md`` (that
    section, as the page's title)."""
    home: list[str] = []
    table: list[str] = []
    into = home
    for line, fenced in _lines(readme):
        if not fenced and line.startswith("## "):
            into = table if line[3:].strip() == ABI_COVERAGE else home
        into.append(line)
    if not table:
        raise ValueError(f"docs/hooks.py: the README has no '## {ABI_COVERAGE}' section")
    return {"index.md": "".join(home), "abi-coverage.md": "# " + "".join(table)[3:]}


def site_links(page: str, text: str, readme_anchors: dict[str, str]) -> str:
    """``text`` of ``page`` with its repository links made site links (see the module's docstring).

    ``readme_anchors`` maps each heading anchor of the README pages to the page that holds it.
    """
    from_readme = page in ("index.md", "abi-coverage.md")

    def link(m: re.Match[str]) -> str:
        label, target = m.group(1), m.group(2)
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            return m.group(0)
        path, _, anchor = target.partition("#")
        if from_readme and not path:
            holder = readme_anchors.get(anchor, page)
            return m.group(0) if holder == page else f"[{label}]({holder}#{anchor})"
        if from_readme and path.startswith(_GUIDE):
            return f"[{label}]({path[len(_GUIDE) :]}{'#' + anchor if anchor else ''})"
        if not from_readme and path == _UP + "README.md":
            return f"[{label}]({readme_anchors.get(anchor, 'index.md')}{'#' + anchor if anchor else ''})"
        if from_readme or path.startswith(_UP):
            return f"{label} (`{path.removeprefix(_UP)}` in the repository)"
        return m.group(0)  # another guide page or the reference

    return "".join(line if fenced else _LINK.sub(link, line) for line, fenced in _lines(text))


def readme_anchors(pages: dict[str, str]) -> dict[str, str]:
    """Each heading anchor of the README pages (:func:`readme_pages`) -> the page that holds it."""
    return {a: page for page, text in pages.items() for a in headings(text)}


_ANCHORS: dict[str, str] = {}
"""The README pages' anchors of the build under way (set by :func:`on_files`, read per page)."""


def on_files(files: Any, config: Any) -> Any:
    """Add the README's two pages (read once per build)."""
    from mkdocs.structure.files import File  # mkdocs only: the tests import this module without it

    pages = readme_pages(README.read_text(encoding="utf-8"))
    _ANCHORS.clear()
    _ANCHORS.update(readme_anchors(pages))
    for name, content in pages.items():
        files.append(File.generated(config, name, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite the links of every page for the site."""
    return site_links(page.file.src_uri, markdown, _ANCHORS)
