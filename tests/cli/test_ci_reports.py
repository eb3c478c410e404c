"""``fuzz`` and ``bench`` write JUnit XML (a failed test per finding or regression) and append a
Markdown summary, for any CI and for GitHub's $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from emulator.cli.main import main
from tests.conftest import FIXTURES, wat_module

PITFALLS = str(wat_module("pitfalls"))
QUIET = str(wat_module("minimal"))
SCENARIO = str(FIXTURES / "scenarios/bench.yaml")


def _cases(path):
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    return suite, {c.get("name"): c for c in suite.findall("testcase")}


def test_fuzz_findings_are_failed_test_cases(tmp_path, capsys):
    junit, summary = tmp_path / "fuzz.xml", tmp_path / "summary.md"
    argv = ["fuzz", PITFALLS, "--examples", "2000", "--well-formed", "--leak-repeats", "0", "--max-streams", "2", "--seed", "0"]
    code = main([*argv, "--out", str(tmp_path / "f.json"), "--junit-xml", str(junit), "--summary", str(summary)])
    capsys.readouterr()
    assert code == 1
    suite, cases = _cases(junit)
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"trap", "local_reply_then_continue", "removed_pseudo_header", "continue_not_paused"}
    assert int(suite.get("failures")) == 4 and int(suite.get("tests")) == len(cases) > 4
    assert "replay: proxy-wasm-emulator run" in cases["trap"].find("failure").text
    text = summary.read_text()
    assert text.startswith(f"### proxy-wasm-emulator fuzz `{PITFALLS}`") and "| `trap` |" in text


def test_a_clean_fuzz_run_is_all_passed_and_summaries_append(tmp_path, capsys):
    junit, summary = tmp_path / "fuzz.xml", tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    assert (
        main(
            ["fuzz", QUIET, "--examples", "20", "--leak-repeats", "0", "--out", str(tmp_path / "f.json"), "--junit-xml", str(junit), "--summary", str(summary)]
        )
        == 0
    )
    capsys.readouterr()
    suite, cases = _cases(junit)
    assert suite.get("failures") == "0" and cases and all(c.find("failure") is None for c in cases.values())
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "No invariant broken" in text


def test_bench_regressions_are_failed_test_cases(tmp_path, capsys):
    baseline, junit, summary = tmp_path / "baseline.json", tmp_path / "bench.xml", tmp_path / "summary.md"
    fast, slow = tmp_path / "fast" / "filter.wasm", tmp_path / "slow" / "filter.wasm"  # two builds of one filter
    for build, source in ((fast, "bench_fast"), (slow, "bench_slow")):
        build.parent.mkdir()
        build.write_bytes(wat_module(source).read_bytes())
    assert main(["bench", str(fast), SCENARIO, "--save", str(baseline), "--rounds", "1"]) == 0
    code = main(["bench", str(slow), SCENARIO, "--baseline", str(baseline), "--rounds", "1", "--junit-xml", str(junit), "--summary", str(summary)])
    capsys.readouterr()
    assert code == 1
    _, cases = _cases(junit)
    assert cases["instructions"].find("failure") is not None
    assert "| `instructions` |" in summary.read_text() and "regressed" in summary.read_text()


def test_the_readme_ci_recipe_runs_twice_and_continues_from_its_corpus(tmp_path, capsys):
    # the workflow lines of docs/pages/ci.md, on a fixture: a time-boxed fuzz with a corpus, then the bench gate
    clean = str(FIXTURES / "bugs/c_control_buffering/bug_c_control_buffering.wasm")  # a filter with nothing to find
    corpus, summary = tmp_path / "fuzz-corpus", tmp_path / "summary.md"
    reports = ["--junit-xml", str(tmp_path / "fuzz.xml"), "--summary", str(summary), "--out", str(tmp_path / "f.json")]
    for run in (1, 2):
        argv = ["fuzz", clean, "--examples", "10000000", "--time-budget", "2", "--corpus", str(corpus), "--seed", str(run), *reports]
        assert main(argv) == 0, capsys.readouterr()
        assert list(corpus.glob("*.json"))
    assert summary.read_text().count("### proxy-wasm-emulator fuzz") == 2
    baseline = tmp_path / "bench-baseline.json"
    assert main(["bench", str(wat_module("bench_fast")), SCENARIO, "--save", str(baseline), "--rounds", "1"]) == 0
    gate = ["--baseline", str(baseline), "--save", str(tmp_path / "bench-new.json"), "--junit-xml", str(tmp_path / "bench.xml"), "--summary", str(summary)]
    assert main(["bench", str(wat_module("bench_fast")), SCENARIO, *gate, "--rounds", "1"]) == 0
    capsys.readouterr()
    assert "### proxy-wasm-emulator bench" in summary.read_text()
