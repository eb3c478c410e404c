"""mkdocs hook: the guide pages are the README's ``##`` sections, cut out when the site is built.

The README stays the one text (its examples are run by the test suite); this hook serves its
sections as pages, rewrites links between sections to the page that holds the heading, and turns
links to repository files (which the site does not carry) into plain code spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"

#: page -> the README's ``##`` sections it holds, in order ("" is the text before the first one).
PAGES: dict[str, tuple[str, ...]] = {
    "index.md": ("", "Quickstart", "Status"),
    "python-api.md": ("Python API",),
    "cli.md": ("CLI",),
    "testing.md": ("Testing your filter", "pytest plugin", "Resetting between examples"),
    "fuzzing.md": ("Fuzzing",),
    "reliability.md": ("Reliability",),
    "ci.md": ("In your CI",),
    "benchmarking.md": ("Benchmarking",),
    "engines.md": ("Engines",),
    "fixtures.md": ("Fixtures",),
    "architecture.md": ("How the code is organised", "Tests and CI"),
    "abi-coverage.md": ("ABI coverage",),
}

_HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.M)
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


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


def sections(text: str) -> dict[str, str]:
    """The README split at its ``## `` headings (outside code blocks): title -> text with the heading."""
    out: dict[str, str] = {}
    title, lines = "", []
    for line, fenced in _lines(text):
        if not fenced and line.startswith("## "):
            out[title] = "".join(lines)
            title, lines = line[3:].strip(), []
        lines.append(line)
    out[title] = "".join(lines)
    return out


def _anchors(pages: dict[str, str]) -> dict[str, str]:
    """Every heading's anchor -> the page that holds it."""
    where: dict[str, str] = {}
    for page, text in pages.items():
        for line, fenced in _lines(text):
            m = None if fenced else _HEADING.match(line)
            if m:
                where.setdefault(slug(m.group(2)), page)
    return where


def _relink(page: str, text: str, anchors: dict[str, str]) -> str:
    def link(m: re.Match[str]) -> str:
        label, target = m.group(1), m.group(2)
        if target.startswith("#"):
            holder = anchors.get(target[1:])
            if holder is None:
                return label
            return f"[{label}]({target})" if holder == page else f"[{label}]({holder}{target})"
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            return m.group(0)
        return f"{label} (`{target}` in the repository)"

    return "".join(line if fenced else _LINK.sub(link, line) for line, fenced in _lines(text))


def build_pages(readme: str) -> dict[str, str]:
    """Page name -> markdown, from the README's text."""
    parts = sections(readme)
    missing = [t for titles in PAGES.values() for t in titles if t not in parts]
    if missing:
        raise ValueError(f"docs/hooks.py: the README has no section {missing!r}; update PAGES")
    unplaced = [t for t in parts if t and not any(t in titles for titles in PAGES.values())]
    if unplaced:
        raise ValueError(f"docs/hooks.py: README sections on no page: {unplaced!r}; add them to PAGES")
    pages = {}
    for page, titles in PAGES.items():
        body = "".join(parts[t] for t in titles)
        if page != "index.md":  # the page's title is its first section's; its sections are the page's headings
            body = re.sub(r"^## ", "# ", body, count=1, flags=re.M)
        pages[page] = body
    anchors = _anchors(pages)
    return {page: _relink(page, body, anchors) for page, body in pages.items()}


def on_files(files: Any, config: Any) -> Any:
    """Add the README's sections as pages."""
    from mkdocs.structure.files import File  # mkdocs only: the tests import this module without it

    for name, content in build_pages(README.read_text(encoding="utf-8")).items():
        files.append(File.generated(config, name, content=content))
    return files
