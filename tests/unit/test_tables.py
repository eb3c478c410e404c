"""inspect and bench print tables: rich's on a terminal, aligned plain text elsewhere (emulator.tables)."""

from __future__ import annotations

import io
import re
import sys

from emulator.cli.main import main
from emulator.tables import Table, plain, show
from tests.conftest import FIXTURES, wat_module

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_plain_text_pads_each_column_to_its_widest_cell():
    table = Table("imports (2):", ("import", "signature"), [("env.proxy_log", "(i32) -> (i32)"), ("x.y", "() -> ()")])
    assert plain(["head", table, "tail"]) == "head\nimports (2):\n  env.proxy_log  (i32) -> (i32)\n  x.y            () -> ()\ntail"


def test_on_a_terminal_a_table_has_its_column_names_and_cells_stay_literal():
    out = io.StringIO()
    show(["a line [bold]as is[/bold]", Table("t:", ("name", "value"), [("[red]x[/red]", "1")])], stream=out, terminal=True)
    text = ANSI.sub("", out.getvalue())
    assert "a line [bold]as is[/bold]" in text
    assert re.search(r"┃ name\s+┃ value ┃", text) and re.search(r"│ \[red\]x\[/red\] │ 1\s+│", text)


def test_off_a_terminal_show_prints_the_plain_text():
    out = io.StringIO()
    parts = ["x", Table("t:", ("a", "b"), [("1", "2")])]
    show(parts, stream=out)  # a StringIO is not a terminal
    assert out.getvalue() == plain(parts) + "\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_inspect_and_bench_print_rich_tables_on_a_terminal(monkeypatch):
    for argv, header in (
        (["inspect", str(wat_module("unknown_imports"))], r"┃ import\s+┃ signature\s+┃ status\s+┃"),
        (["bench", str(FIXTURES / "rust/headers_rust.wasm"), str(FIXTURES / "demo/request.yaml"), "--rounds", "3"], r"┃ figure\s+┃ value\s+┃"),
    ):
        out = _Terminal()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", io.StringIO())  # bench's progress bar
        assert main(argv) == 0
        text = ANSI.sub("", out.getvalue())
        assert re.search(header, text), text
        assert "│ env.proxy_log" in text or "│ host_calls" in text
