"""One FuzzOptions for fuzz_filter, fuzz_test, the state machine and the command line."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from hypothesis import HealthCheck, settings

from emulator.cli.fuzz import add_fuzz_command, fuzz_options
from emulator.fuzz.options import FUZZ_TEST_DEFAULTS, STATE_MACHINE_DEFAULTS, FuzzOptions
from emulator.fuzz.runner import fuzz_filter, fuzz_test
from emulator.fuzz.stateful import filter_state_machine, run_filter_state_machine
from tests.conftest import FIXTURES, wat_module

PITFALLS = wat_module("pitfalls")
QUIET = wat_module("minimal")
RUST = FIXTURES / "rust/headers_rust.wasm"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="proxy-wasm-emulator")
    add_fuzz_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["fuzz", *argv])


def test_options_are_frozen_validated_and_normalized():
    opts = FuzzOptions(invariants=["trap"], exclude=["memory_growth"], vocabulary=(w for w in ["x-a"]))
    assert opts.invariants == ("trap",) and opts.exclude == ("memory_growth",) and opts.vocabulary == ("x-a",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.seed = 1  # type: ignore[misc]
    assert opts.replace(seed=2).seed == 2 and opts.seed == 0
    for bad in ({"examples": -1}, {"max_streams": 0}, {"leak_repeats": -1}, {"steps": 0}, {"examples": True}):
        with pytest.raises(ValueError, match=f"FuzzOptions.{next(iter(bad))}"):
            FuzzOptions(**bad)
    with pytest.raises(TypeError, match="one string"):
        FuzzOptions(exclude="trap")
    assert FuzzOptions(plugin_config="a").plugin_config_bytes() == b"a"


def test_the_front_doors_differ_only_where_documented():
    base = FuzzOptions()
    assert base.replace(leak_repeats=0) == FUZZ_TEST_DEFAULTS
    assert base.replace(examples=50, adversarial=False, max_streams=4) == STATE_MACHINE_DEFAULTS


def test_the_command_line_defaults_are_the_options_defaults():
    args = parse(str(QUIET))
    assert fuzz_options(args) == FuzzOptions()
    args = parse(str(QUIET), "x.yaml", "--examples", "7", "--seed", "3", "--root-id", "r", "--well-formed", "--invariant", "trap", "--skip", "memory_growth")
    args2 = parse(str(QUIET), "--max-streams", "2", "--leak-repeats", "0", "--fuzz-config", "--faults", "--engine", "wasmtime")
    assert fuzz_options(args, plugin_config=b"cfg") == FuzzOptions(
        examples=7, seed=3, root_id="r", plugin_config=b"cfg", scenario="x.yaml", invariants=("trap",), exclude=("memory_growth",), adversarial=False
    )
    assert fuzz_options(args2, config_schema={"type": "object"}) == FuzzOptions(
        max_streams=2, leak_repeats=0, fuzz_config=True, faults=True, config_schema={"type": "object"}
    )


def test_options_and_keywords_are_the_same_run():
    opts = FuzzOptions(examples=12, seed=4, adversarial=False, harvest=False, leak_repeats=0, max_streams=2)
    a = fuzz_filter(RUST, opts).to_json()
    b = fuzz_filter(RUST, examples=12, seed=4, adversarial=False, harvest=False, leak_repeats=0, max_streams=2).to_json()
    c = fuzz_filter(RUST, FuzzOptions(examples=12, seed=9), seed=4, adversarial=False, harvest=False, leak_repeats=0, max_streams=2).to_json()
    for r in (a, b, c):
        r.pop("elapsed_s")
    assert a == b == c


def test_front_doors_refuse_unknown_keywords_and_what_they_cannot_apply():
    with pytest.raises(TypeError, match=r"fuzz_filter\(\) got an unexpected keyword argument 'exampels'"):
        fuzz_filter(QUIET, exampels=3)
    with pytest.raises(TypeError, match="takes a FuzzOptions"):
        fuzz_test(QUIET, {"examples": 3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="properties"):
        fuzz_filter(QUIET, properties={"a": "b"})
    with pytest.raises(ValueError, match="scenario"):
        filter_state_machine(QUIET, scenario={"streams": []})


def test_shrink_off_reports_unshrunk_findings():
    report = fuzz_filter(PITFALLS, examples=40, seed=0, adversarial=False, leak_repeats=0, max_streams=1, shrink=False, find_all=False)
    assert report.found and not any(f.shrunk for f in report.findings)


def test_fuzz_test_takes_options():
    target = fuzz_test(RUST, FuzzOptions(adversarial=False, harvest=False, leak_repeats=0))
    settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))(target)()


def test_the_state_machine_takes_options_and_its_older_keyword():
    machine = filter_state_machine(RUST, STATE_MACHINE_DEFAULTS.replace(harvest=False), max_open_streams=2)
    assert machine.__name__ == "FilterStateMachine_headers_rust"
    run_filter_state_machine(RUST, FuzzOptions(examples=3, steps=5, harvest=False, adversarial=False, exclude=["trap"]), max_open_streams=1)


def test_coverage_guided_fuzzing_reports_how_much_of_the_guest_ran():
    from emulator.fuzz import fuzz_filter

    report = fuzz_filter(RUST, examples=40, seed=1, coverage=True, exclude=["trap"], leak_repeats=0)
    sites, covered = report.coverage["sites"], report.coverage["covered"]
    assert sites > 1000 and 100 < covered < sites  # the Rust fixture has thousands of blocks; a run enters hundreds
    assert report.to_json()["coverage"] == report.coverage
    assert f"guest coverage {covered} of {sites} basic blocks" in report.summary()
    plain = fuzz_filter(RUST, examples=5, seed=1, exclude=["trap"], leak_repeats=0)
    assert plain.coverage is None and "coverage" not in plain.to_json()
