"""Reports for CI systems from ``fuzz`` and ``bench``: JUnit XML (``--junit-xml FILE``), so findings
and regressions show up as failed tests in any CI, and a Markdown summary (``--summary FILE``,
appended, as GitHub's ``$GITHUB_STEP_SUMMARY`` expects).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

from abi.records import record

__all__ = ["Case", "add_ci_report_options", "write_ci_reports"]


@record
class Case:
    """One JUnit test case: ``failure`` (a one-line message) and ``details`` make it failed."""

    name: str
    failure: str | None = None
    details: str = ""
    time_s: float = 0.0


def add_ci_report_options(parser: argparse.ArgumentParser) -> None:
    """``--junit-xml FILE`` and ``--summary FILE``, spelled the same on every sub-command that has them."""
    parser.add_argument("--junit-xml", metavar="FILE", help="also write the result as JUnit XML (a failure per finding or regression)")
    parser.add_argument("--summary", metavar="FILE", help="also append a Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)")


def junit_xml(suite: str, cases: Sequence[Case], *, time_s: float = 0.0) -> str:
    """A JUnit XML document with one ``testsuite`` of ``cases``."""
    failures = sum(1 for c in cases if c.failure is not None)
    root = ET.Element("testsuites", name="proxy-wasm-emulator", tests=str(len(cases)), failures=str(failures), time=f"{time_s:.3f}")
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures), errors="0", skipped="0", time=f"{time_s:.3f}")
    for case in cases:
        el = ET.SubElement(node, "testcase", classname=suite, name=case.name, time=f"{case.time_s:.3f}")
        if case.failure is not None:
            fail = ET.SubElement(el, "failure", message=case.failure, type="finding")
            fail.text = case.details
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_ci_reports(args: argparse.Namespace, suite: str, cases: Sequence[Case], markdown: str, *, time_s: float = 0.0) -> None:
    """Write what ``--junit-xml`` and ``--summary`` ask for (``OSError`` for an unwritable file)."""
    if getattr(args, "junit_xml", None):
        Path(args.junit_xml).write_text(junit_xml(suite, cases, time_s=time_s))
    if getattr(args, "summary", None):
        with open(args.summary, "a", encoding="utf-8") as fh:
            fh.write(markdown.rstrip("\n") + "\n\n")


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
