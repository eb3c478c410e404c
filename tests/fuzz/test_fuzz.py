"""fuzz_filter finds planted bugs without being told their triggers, shrinks each to a minimal
scenario, and `proxy-wasm-emulator run` replays it; the stateful fuzzer interleaves everything."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, settings

from emulator import Host, cli
from emulator.fuzz.execution import execute_scenario
from emulator.fuzz.harvest import harvest_strings, module_vocabulary
from emulator.fuzz.invariants import Invariant
from emulator.fuzz.runner import FuzzSetupError, fuzz_filter, fuzz_test
from emulator.fuzz.stateful import filter_state_machine, run_filter_state_machine
from tests.conftest import FIXTURES, ROOT, wat_module
from tests.fuzz.modules import LEAK_ON_CHUNKING, compile_wat

PITFALLS = wat_module("pitfalls")
RUST = FIXTURES / "rust/headers_rust.wasm"
REQUIRED = {":method", ":path", ":authority"}


def test_the_dictionary_comes_from_the_data_segments():
    words = harvest_strings(PITFALLS)
    assert {"x-trap", "x-local-continue", "x-remove-status", "x-continue-twice", ":status"} <= set(words)
    rust = module_vocabulary(RUST)
    assert {"x-deny", "x-body-mode", "x-pause"} <= set(rust.names)  # split out of Rust's back-to-back literals
    assert all(n == n.strip() and n for n in rust.names)


@pytest.fixture(scope="module")
def pitfalls_report():
    return fuzz_filter(PITFALLS, examples=150, seed=0, leak_repeats=0, adversarial=False, max_streams=2)


def test_finds_every_pitfall_without_knowing_the_triggers(pitfalls_report):
    found = {f.invariant for f in pitfalls_report.findings}
    assert found == {"trap", "local_reply_then_continue", "removed_pseudo_header", "continue_not_paused"}
    assert pitfalls_report.found and pitfalls_report.scenario == pitfalls_report.findings[0].scenario


def test_each_finding_is_shrunk_to_one_minimal_exchange(pitfalls_report):
    for f in pitfalls_report.findings:
        assert f.reproduces, f.invariant
        (stream,) = f.scenario["streams"]
        request = stream["request"]
        names = [k for k, _ in request["headers"]]
        assert set(names) >= REQUIRED and len(names) <= len(REQUIRED) + 1, (f.invariant, names)
        assert "chunks" not in request and "trailers" not in request
        if f.invariant == "removed_pseudo_header":
            assert len(stream["response"]["headers"]) == 2  # :status and the one header that makes the filter remove it
        else:
            assert "response" not in stream
        assert f.scenario["description"].startswith(f"found by proxy-wasm-emulator fuzz (seed 0): {f.invariant}: ")


@pytest.mark.parametrize(
    ("invariant", "shown"),
    [
        ("trap", "error: proxy_on_request_headers (context 2) failed: wasm trap"),
        ("local_reply_then_continue", "lint: send_local_response followed by Continue"),
        ("removed_pseudo_header", "lint: the filter removed the required response header :status"),
        ("continue_not_paused", "lint: continue_stream(REQUEST) on a request that is not paused"),
    ],
)
def test_run_replays_the_written_scenario(pitfalls_report, invariant, shown, tmp_path, capsys):
    (finding,) = [f for f in pitfalls_report.findings if f.invariant == invariant]
    path = finding.write(tmp_path / "failure.json")
    json.loads(path.read_text())
    assert cli.main(["run", str(PITFALLS), str(path)]) == 0
    assert shown in capsys.readouterr().out


def test_fuzzing_is_deterministic(pitfalls_report):
    # the first round of search is the same run again: it finds the same thing, shrunk the same way
    again = fuzz_filter(PITFALLS, examples=150, seed=0, leak_repeats=0, adversarial=False, max_streams=2, find_all=False)
    assert again.findings
    for f in again.findings:
        (same,) = [g for g in pitfalls_report.findings if g.invariant == f.invariant]
        assert f.scenario == same.scenario


@pytest.mark.slow
def test_finds_a_leak_that_only_some_chunkings_cause(tmp_path, proxy_wasm_engine):
    wasm = compile_wat(LEAK_ON_CHUNKING, tmp_path, "leak_on_chunking")
    report = fuzz_filter(wasm, examples=100, seed=0, engine=proxy_wasm_engine)
    (f,) = report.findings
    assert f.invariant == "memory_growth" and f.reproduces
    (stream,) = f.scenario["streams"]
    request = stream["request"]
    # a frame that does not end the stream: two frames, or one frame followed by trailers
    assert len(request.get("chunks", [])) >= 2 or (request.get("chunks") and request.get("trailers") is not None)
    assert all(len(c) <= 1 for c in request["chunks"])  # the bodies shrank away
    assert "about 16384 bytes per replay" in f.violations[0]


def test_a_start_failure_is_reported_at_once_and_replays(tmp_path, capsys):
    report = fuzz_filter(wat_module("restricted_at_start"), examples=50, seed=0)
    (f,) = report.findings
    assert f.invariant == "restricted_host_call" and not f.shrunk and report.examples == 1
    assert "proxy_set_tick_period_milliseconds called during _initialize" in f.violations[0]
    path = f.write(tmp_path / "start.json")
    assert cli.main(["run", str(wat_module("restricted_at_start")), str(path)]) == 3  # the plugin does not start
    assert "proxy_set_tick_period_milliseconds called during _initialize" in capsys.readouterr().err


def test_a_well_behaved_filter_gives_nothing(proxy_wasm_engine):
    report = fuzz_filter(RUST, examples=40, seed=0, adversarial=False, harvest=False, engine=proxy_wasm_engine, leak_repeats=8)
    assert not report.found, report.summary()
    assert "no invariant broken" in report.summary()


def test_user_invariants_find_what_the_dictionary_reaches():
    def no_denials(run):
        return [f"stream {i + 1} denied" for i, s in enumerate(run.streams) if s.local_response is not None and s.local_response.status == 403]

    report = fuzz_filter(RUST, examples=150, seed=0, invariants=[no_denials], adversarial=False, max_streams=1)
    (f,) = report.findings
    assert f.invariant == "no_denials" and f.reproduces
    (stream,) = f.scenario["streams"]
    assert len(stream["request"]["headers"]) == len(REQUIRED) + 1  # the one header that denies (found in the module's strings)


def test_host_faults_are_found_and_replayed():
    report = fuzz_filter(RUST, examples=60, seed=0, faults=True, adversarial=False, harvest=False, leak_repeats=0, max_streams=2)
    (f,) = report.findings
    assert f.invariant == "trap" and f.faults and f.reproduces
    assert len(f.faults) == 1  # shrunk to the one fault that panics the SDK
    replay = report.replay(f)
    assert any(v.invariant == "trap" for v in replay.violations)
    assert replay.injected


def test_a_finding_with_host_faults_replays_from_the_file_alone(tmp_path, capsys):
    report = fuzz_filter(RUST, examples=60, seed=0, faults=True, adversarial=False, harvest=False, leak_repeats=0, max_streams=2)
    (f,) = report.findings
    path = f.write(tmp_path / "finding.json")
    assert cli.main(["run", str(RUST), str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(s["error"] and "panicked" in s["error"] for s in out["streams"])
    sc = json.loads(path.read_text())
    del sc["faults"]
    path.write_text(json.dumps(sc))
    assert cli.main(["run", str(RUST), str(path), "--json"]) == 0
    assert not any(s["error"] for s in json.loads(capsys.readouterr().out)["streams"])


def test_a_seed_scenario_is_checked_first_and_mutated(tmp_path):
    seed_scenario = ROOT / "tests/scenarios/pitfalls.yaml"
    report = fuzz_filter(PITFALLS, scenario=seed_scenario, examples=10, seed=0, leak_repeats=0)
    assert {f.invariant for f in report.findings} >= {"local_reply_then_continue", "removed_pseudo_header", "trap"}
    assert not any(f.shrunk for f in report.findings) and report.examples == 1
    assert report.findings[0].scenario["plugin"] == {"fail_policy": "FAIL_OPEN"}

    clean = {"plugin": {"root_id": "headers"}, "streams": [{"request": {"headers": {":method": "GET", ":path": "/", ":authority": "a"}}}]}
    report = fuzz_filter(RUST, scenario=clean, examples=20, seed=0, adversarial=False, harvest=False, leak_repeats=0)
    assert not report.found and report.examples == 21


def test_a_configuration_the_plugin_refuses_is_bad_input():
    with pytest.raises(FuzzSetupError, match=r"fail-configure|proxy_on_configure"):
        fuzz_filter(RUST, plugin_config="fail-configure", examples=5)


def test_execute_scenario_reports_emulator_errors_as_violations():
    def explode(run):
        raise RuntimeError("boom")

    res = execute_scenario(RUST, {"streams": []}, invariants=[Invariant("explode", explode)])
    (v,) = res.violations
    assert v.invariant == "emulator_error" and "RuntimeError: boom" in v.message


# -- the stateful fuzzer ---------------------------------------------------------------------------


def test_the_state_machine_stays_quiet_on_a_well_behaved_filter(proxy_wasm_engine):
    run_filter_state_machine(RUST, examples=15, steps=15, engine=proxy_wasm_engine, harvest=False)


def test_the_state_machine_drives_callouts_grpc_queues_and_reconfiguration():
    seen = {"http": 0, "grpc": 0, "queue": 0, "plugins": 0, "responses": 0}

    def spy(run):
        host = run.host
        seen["http"] = max(seen["http"], sum(not c.pending for c in host.http_calls.calls))
        seen["grpc"] = max(seen["grpc"], sum(not c.pending for c in host.grpc_calls.calls))
        seen["queue"] = max(seen["queue"], len(host.queues.notifications))
        seen["plugins"] = max(seen["plugins"], len(host.plugins))
        seen["responses"] = max(seen["responses"], sum(s.response.received_headers is not None for s in run.streams))
        return []

    invariants = [Invariant("spy", spy), "trap", "contexts_not_deleted"]
    run_filter_state_machine(FIXTURES / "go_features/features_go.wasm", root_id="auth", examples=15, steps=15, invariants=invariants)
    run_filter_state_machine(FIXTURES / "rust_features/features_rust.wasm", root_id="grpc_auth", examples=15, steps=15, invariants=invariants)
    run_filter_state_machine(FIXTURES / "rust_features/features_rust.wasm", root_id="receiver", examples=15, steps=15, invariants=invariants)
    assert all(seen.values()), seen


def test_the_state_machine_finds_a_pitfall():
    with pytest.raises(AssertionError, match=r"trap|local_reply_then_continue|continue_not_paused|removed_pseudo_header"):
        run_filter_state_machine(PITFALLS, examples=30, steps=10, shrink=False)


TestHeadersMachine = filter_state_machine(RUST, harvest=False).TestCase
TestHeadersMachine.settings = settings(max_examples=8, stateful_step_count=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def test_a_fresh_host_per_example_shares_the_compiled_module():
    a, b = Host(trace=False), Host(trace=False)
    assert a.program(RUST) is b.program(RUST)


# -- fuzz targets as plain hypothesis tests (pytest -n, HypoFuzz) ----------------------------------

test_headers_rust_as_a_fuzz_target = settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))(
    fuzz_test(RUST, adversarial=False, harvest=False)
)


def test_a_fuzz_target_fails_with_a_replayable_scenario():
    quick = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True, phases=[Phase.generate])
    target = quick(fuzz_test(PITFALLS, max_streams=1))
    with pytest.raises(AssertionError, match="scenario \\(replay with proxy-wasm-emulator run\\)") as info:
        target()
    scenario = json.loads(str(info.value).split("proxy-wasm-emulator run):\n", 1)[1].split("\n\n", 1)[0])
    assert execute_scenario(PITFALLS, scenario).violations


def test_a_fuzz_target_with_coverage_reports_the_blocks_it_entered(monkeypatch):
    import hypothesis

    observed = []
    real_target = hypothesis.target

    def spy(value, *, label=""):
        observed.append((label, value))
        return real_target(value, label=label)

    monkeypatch.setattr(hypothesis, "target", spy)
    quick = settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True, phases=[Phase.generate])
    quick(fuzz_test(RUST, adversarial=False, harvest=False, coverage=True))()
    assert observed and all(label == "guest basic blocks entered" and value > 50 for label, value in observed)
