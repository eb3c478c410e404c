"""`proxy-wasm-emulator fuzz`: exit statuses, the files it writes, text and JSON output, progress."""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest

from emulator import cli
from emulator.cli.fuzz import add_fuzz_command
from tests.conftest import FIXTURES, ROOT, wat_module

PITFALLS = str(wat_module("pitfalls"))
QUIET = str(wat_module("minimal"))


def fuzz(*argv: str) -> int:
    """Parse and run ``fuzz ARGV`` through a parser of our own (as cli.py will build it)."""
    parser = argparse.ArgumentParser(prog="proxy-wasm-emulator")
    add_fuzz_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fuzz", *argv])
    return args.func(args)


@pytest.mark.slow
def test_finds_writes_and_the_written_file_replays(tmp_path, capsys):
    out = tmp_path / "failure.json"
    status = fuzz(PITFALLS, "--examples", "2000", "--well-formed", "--leak-repeats", "0", "--max-streams", "2", "--out", str(out))
    text = capsys.readouterr().out
    assert status == 1
    assert text.startswith(f"fuzzing {PITFALLS}: 2000 executions, seed 0, guided fuzzer, engine wasmtime\n")
    assert "found 4 broken invariant(s):" in text
    assert f"[1] scenario: {out}" in text and f"replay: proxy-wasm-emulator run {PITFALLS} {out}" in text
    assert "last host calls:" in text
    written = [out, *(tmp_path / f"failure-{i}.json" for i in (2, 3, 4))]
    assert all(p.is_file() for p in written)
    assert cli.main(["run", PITFALLS, str(out)]) == 0
    assert "error: proxy_on_request_headers (context 2) failed: wasm trap" in capsys.readouterr().out


def test_json_output(tmp_path, capsys):
    out = tmp_path / "f.json"
    status = fuzz(
        PITFALLS, "--json", "--examples", "100", "--well-formed", "--invariant", "local_reply_then_continue", "--leak-repeats", "0", "--out", str(out)
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["found"] is True and report["invariants"] == ["local_reply_then_continue"]
    (finding,) = report["findings"]
    assert finding["invariant"] == "local_reply_then_continue" and finding["file"] == str(out)
    assert finding["reproduces"] is True
    assert json.loads(out.read_text()) == finding["scenario"]
    assert report["written"] == [str(out)]


def test_nothing_found_is_exit_status_0(tmp_path, capsys):
    out = tmp_path / "none.json"
    assert fuzz(QUIET, "--examples", "15", "--out", str(out)) == 0
    assert "no invariant broken" in capsys.readouterr().out
    assert not out.exists()


def test_a_seed_scenario_alone(tmp_path, capsys):
    scenario = ROOT / "tests/scenarios/pitfalls.yaml"
    assert fuzz(PITFALLS, str(scenario), "--examples", "0", "--out", str(tmp_path / "s.json")) == 1
    assert "found 3 broken invariant(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.wasm"], "cannot read missing.wasm"),
        ([PITFALLS, "no-such-scenario.json"], "no-such-scenario.json"),
        ([PITFALLS, "--invariant", "nope"], "unknown invariant 'nope'"),
        ([str(FIXTURES / "rust/headers_rust.wasm"), "--plugin-config", str(ROOT / "fixtures/demo/plugin_config.txt"), "--examples", "-1"], ">= 0"),
        ([PITFALLS, "--plugin-config", "nowhere.txt"], "--plugin-config: cannot read nowhere.txt"),
    ],
)
def test_bad_input_is_exit_status_2(argv, message, capsys):
    assert fuzz(*argv) == 2
    assert message in capsys.readouterr().err


def test_a_filter_that_does_not_load_or_start_is_exit_status_3(tmp_path, capsys):
    config = tmp_path / "config.txt"
    config.write_text("fail-configure")
    assert fuzz(str(FIXTURES / "rust/headers_rust.wasm"), "--plugin-config", str(config), "--json") == 3
    report = json.loads(capsys.readouterr().out)
    assert "does not start" in report["error"] and report["kind"] == "filter"
    assert fuzz(str(ROOT / "README.md")) == 3
    assert "does not load" in capsys.readouterr().err


def test_progress_on_a_terminal(tmp_path, monkeypatch, capsys):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr("sys.stderr", err)
    assert fuzz(QUIET, "--examples", "5", "--out", str(tmp_path / "x.json")) == 0
    bar = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue())  # the rich bar, without its terminal codes
    assert re.search(r"searching .*5/5 executions, \d+/s, ETA .*0 found, \d+ blocks covered", bar), bar


def test_progress_in_a_ci_log_is_a_plain_line_now_and_then(tmp_path, monkeypatch, capsys):
    from emulator.cli import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # every execution, for the test
    assert fuzz(QUIET, "--examples", "3", "--out", str(tmp_path / "x.json")) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and re.search(r"^  3 executions \(3 planned, \d+/s\), 0 found, \d+ blocks covered, searching\.\.\.$", err, re.M)


def test_guided_json_keeps_the_contract(capsys, tmp_path):
    bug = FIXTURES / "bugs/rust_panic/bug_rust_panic.wasm"
    corpus = tmp_path / "corpus"
    status = fuzz(str(bug), "--guided", "--corpus", str(corpus), "--examples", "1500", "--seed", "1", "--json", "--out", str(tmp_path / "finding.json"))
    out = json.loads(capsys.readouterr().out)
    assert status == 1 and out["found"] and out["examples"] == 1500 and "elapsed_s" in out
    assert out["coverage"]["covered"] > 0 and any(corpus.glob("*.json"))


def test_vm_config_and_env_reach_the_vm_and_the_written_finding(tmp_path, capsys):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"streams": [{"request": {"headers": {":method": "GET", ":path": "/", ":authority": "a", "x-trap": "1"}}}]}))
    vm_config = tmp_path / "vm.cfg"
    vm_config.write_text("from-fuzz")
    out = tmp_path / "failure.json"
    rust = str(FIXTURES / "rust/headers_rust.wasm")
    status = fuzz(rust, str(seed), "--examples", "0", "--vm-config", str(vm_config), "--env", "A=1", "--leak-repeats", "0", "--out", str(out), "--json")
    assert status == 1, capsys.readouterr()
    finding = json.loads(out.read_text())
    assert finding["plugin"]["vm_configuration"] == "from-fuzz" and finding["plugin"]["environment"] == {"A": "1"}
    capsys.readouterr()
    assert cli.main(["run", rust, str(out), "--json"]) == 0
    assert {"level": "info", "message": "vm_start: from-fuzz"} in [{k: r[k] for k in ("level", "message")} for r in json.loads(capsys.readouterr().out)["logs"]]
    assert fuzz(rust, "--env", "NOEQUALS", "--json") == 2 and "KEY=VALUE" in json.loads(capsys.readouterr().out)["error"]


def test_the_guided_fuzzer_is_the_default_and_hypothesis_is_one_option_away(tmp_path, capsys):
    common = ("--json", "--examples", "30", "--leak-repeats", "0", "--out", str(tmp_path / "f.json"))
    fuzz(QUIET, *common)
    assert json.loads(capsys.readouterr().out)["fuzzer"] == "guided"
    fuzz(QUIET, "--fuzzer", "hypothesis", *common)
    report = json.loads(capsys.readouterr().out)
    assert report["fuzzer"] == "hypothesis" and "fuzzer_note" not in report and report["examples"] >= 30


def test_what_only_hypothesis_does_falls_back_to_it_and_says_why(tmp_path, capsys):
    common = ("--json", "--examples", "5", "--leak-repeats", "0", "--out", str(tmp_path / "f.json"))
    fuzz(QUIET, "--fuzz-config", *common)
    report = json.loads(capsys.readouterr().out)
    assert report["fuzzer"] == "hypothesis" and "configuration" in report["fuzzer_note"]
    assert fuzz(QUIET, "--fuzzer", "guided", "--fuzz-config", *common) == 2  # asked for by name: refused, not switched
    assert "--fuzzer hypothesis" in json.loads(capsys.readouterr().out)["error"]
    assert fuzz(QUIET, "--fuzzer", "hypothesis", "--corpus", str(tmp_path / "c"), *common) == 2
    assert "corpus" in json.loads(capsys.readouterr().out)["error"]


def test_a_time_budget_stops_the_guided_engine_early(tmp_path, capsys):
    status = fuzz(
        str(FIXTURES / "rust/headers_rust.wasm"), "--examples", "1000000", "--time-budget", "1", "--skip", "trap", "--json", "--out", str(tmp_path / "f.json")
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and 0 < report["examples"] < 1000000 and report["elapsed_s"] < 10
    assert fuzz(QUIET, "--fuzzer", "hypothesis", "--time-budget", "1", "--json") == 2
    assert "--time-budget" in json.loads(capsys.readouterr().out)["error"]
