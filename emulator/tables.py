"""The tables of the ``inspect`` and ``bench`` reports: rich's tables on a terminal, the same rows as
aligned plain text anywhere else (a CI log, a pipe, a test), so one description gives both.

A report is a list of parts: a line of text, or a :class:`Table` (a title, column names, rows).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from abi.records import field, record

__all__ = ["Part", "Table", "plain", "show"]


@record
class Table:
    """Rows under column names; ``title`` is printed above them (plain text: as a line)."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)


Part = str | Table


def plain(parts: Sequence[Part]) -> str:
    """The report as plain text: lines as they are, a table as its title and its rows indented by
    two spaces, each column padded to its widest cell (the column names are not printed)."""
    lines: list[str] = []
    for part in parts:
        if isinstance(part, str):
            lines.append(part)
            continue
        lines.append(part.title)
        widths = [max((len(row[i]) for row in part.rows), default=0) for i in range(len(part.columns))]
        for row in part.rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def show(parts: Sequence[Part], *, stream: TextIO | None = None, terminal: bool | None = None) -> None:
    """Print the report: rich's tables when ``stream`` (default stdout) is a terminal (or
    ``terminal=True``), :func:`plain` text otherwise."""
    out = stream if stream is not None else sys.stdout
    if not (out.isatty() if terminal is None else terminal):
        print(plain(parts), file=out)
        return
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = Console(file=out, force_terminal=True, highlight=False)
    for part in parts:
        if isinstance(part, str):
            console.print(part, markup=False)
            continue
        table = RichTable(title=part.title, title_justify="left", title_style="bold")
        for name in part.columns:
            table.add_column(name)
        for row in part.rows:
            table.add_row(*(Text(cell) for cell in row))  # cells are data, not rich markup
        console.print(table)
