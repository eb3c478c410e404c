"""Progress of long fuzz and bench runs: a bar on a terminal, a plain line now and then in a log."""

from __future__ import annotations

import io
import re

from emulator.cli import progress
from emulator.cli.main import main
from emulator.cli.progress import Progress
from tests.conftest import FIXTURES

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SCENARIO = FIXTURES / "scenarios/bench.yaml"
RUST = FIXTURES / "rust/headers_rust.wasm"


def test_a_terminal_gets_a_bar_with_counts_rate_and_findings():
    out = io.StringIO()
    with Progress("executions", 10, stream=out, terminal=True) as p:
        p.update(4, 10, found=1, covered=123)
        p.update(10, 10, found=2, covered=150)
    text = ANSI.sub("", out.getvalue())
    assert re.search(r"searching .*10/10 executions, \d+/s, ETA .*2 found, 150 blocks covered", text), text


def test_a_log_gets_plain_lines_and_the_phase_past_the_plan():
    out = io.StringIO()
    with Progress("examples", 3, stream=out, terminal=False, plain_every_s=0.0) as p:
        p.update(3, 3, found=0)
        p.update(5, 3, found=1)  # hypothesis shrinking a finding runs past the plan
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"  3 examples \(3 planned, \d+/s\), 0 found, searching\.\.\.", lines[0])
    assert re.fullmatch(r"  5 examples \(3 planned, \d+/s\), 1 found, shrinking\.\.\.", lines[1])
    assert len(lines) == 3 and lines[2].startswith("  5 examples")  # the last state once more at the end
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_a_short_run_in_a_log_prints_nothing():
    out = io.StringIO()
    with Progress("rounds", 5, stream=out, terminal=False, findings=False) as p:
        p.update(5, 5)
    assert out.getvalue() == ""  # under PLAIN_EVERY_S: no line, not even at the end


def test_bench_shows_its_rounds(capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    assert main(["bench", str(RUST), str(SCENARIO), "--rounds", "3"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^  3 rounds \(3 planned, \d+/s\), timing\.\.\.$", err, re.M), err
    assert "found" not in err


def test_bench_json_prints_no_progress(capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    assert main(["bench", str(RUST), str(SCENARIO), "--rounds", "3", "--json"]) == 0
    assert capsys.readouterr().err == ""
