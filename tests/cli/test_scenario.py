"""``proxy-wasm-emulator run FILTER SCENARIO``: the scenario format, its JSON output and its errors."""

from __future__ import annotations

import json

import pytest

from emulator.cli.main import main
from emulator.scenario import ScenarioError, parse_scenario
from tests.conftest import FIXTURES, ROOT, SDK_FIXTURES, wat_module

SCENARIOS = FIXTURES / "scenarios"


def run_json(capsys, *args):
    code = main(["run", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


@pytest.mark.parametrize(("path", "tag", "abi_version"), SDK_FIXTURES, ids=[t for _, t, _ in SDK_FIXTURES])
def test_headers_scenario_on_every_fixture(capsys, path, tag, abi_version):
    code, data, _ = run_json(capsys, FIXTURES / path, SCENARIOS / "headers.json")
    assert code == 0 and data["started"] and data["error"] is None
    rewrite, deny, append, pause = data["streams"]
    assert ["x-fixture", tag] in rewrite["upstream_request"]["headers"]
    assert ["x-property-value", "node-7"] in rewrite["upstream_request"]["headers"]
    assert rewrite["downstream_response"]["body"] == "hello from upstream"
    assert {"name": "proxy_on_request_headers", "action": "Continue"} in rewrite["callbacks"]
    assert deny["upstream_request"] is None
    assert deny["local_response"]["status"] == 403 and deny["local_response"]["body"] == "denied"
    assert append["upstream_request"]["body"] == "hello world-appended"
    assert pause["upstream_request"] is not None and pause["downstream_response"]["body"] == {"base64": "AAEC"}
    assert "paused" in " ".join(r["message"] for r in data["logs"])


def test_yaml_scenario(capsys):
    code, data, _ = run_json(capsys, FIXTURES / "go/headers_go.wasm", SCENARIOS / "deny_all.yaml")
    assert code == 0 and data["streams"][0]["local_response"]["status"] == 403


def test_pitfalls_scenario_under_tests(capsys):
    code, data, _ = run_json(capsys, wat_module("pitfalls"), ROOT / "tests/scenarios/pitfalls.yaml")
    assert code == 0
    local_continue, no_status, trapped = data["streams"]
    assert any("followed by Continue" in lint for lint in local_continue["lints"])
    assert no_status["downstream_response"]["headers"][0] == [":status", "502"]
    assert trapped["error"] and trapped["upstream_request"]["body"] == "still delivered"
    assert trapped["downstream_response"]["headers"] == [[":status", "204"]]


def test_human_summary_shows_the_diff(capsys):
    code = main(["run", str(FIXTURES / "rust/headers_rust.wasm"), str(SCENARIOS / "headers.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "+ x-fixture: rust" in out and "body: 'hello world' -> 'hello world-appended'" in out
    assert "local reply from proxy_on_request_headers: 403" in out


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([], "scenario"),
        ({"streams": [{"request": {"headers": 5}}]}, "streams[0].request.headers"),
        ({"streams": [{"request": {"headers": [["x"]]}}]}, "streams[0].request.headers[0]"),
        ({"streams": [{"request": {"body": "a", "chunks": ["a"]}}]}, "streams[0].request"),
        ({"streams": [{"request": {"body": {"base64": "!!"}}}]}, "streams[0].request.body"),
        ({"streams": [{"response": {}}]}, "streams[0]"),
        ({"streams": [{"request": {}, "advance_ms": -1}]}, "streams[0].advance_ms"),
        ({"plugin": {"fail_open": "yes"}}, "plugin.fail_open"),
        ({"plugin": {"fail_open": True, "fail_policy": "FAIL_OPEN"}}, "plugin"),
        ({"plugin": {"fail_policy": "sometimes"}}, "plugin.fail_policy"),
        ({"plugin": {"colour": "red"}}, "plugin"),
        ({"properties": [{"path": "a..b", "value": 1}]}, "properties[0].path"),
        ({"properties": [{"path": ["a"], "value": None}]}, "properties[0].value"),
        ({"properties": {"a": 1}}, "properties"),
        ({"faults": {"function": "proxy_log"}}, "faults"),
        ({"faults": [{"function": "proxy_log"}]}, "faults[0]"),
        ({"faults": [{"function": "proxy_log", "status": "Broken"}]}, "faults[0].status"),
        ({"faults": [{"function": "proxy_log", "status": 1, "nth": 0}]}, "faults[0].nth"),
        ({"faults": [{"function": "proxy_log", "status": 1, "count": "all"}]}, "faults[0].count"),
        ({"faults": [{"function": "proxy_log", "status": 1, "when": "now"}]}, "faults[0]"),
    ],
)
def test_bad_scenarios_name_the_field(doc, where):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc)
    assert info.value.where == where


def test_bad_scenario_file_exits_2_without_a_traceback(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"streams": [{"request": {"headers": {":path": 7.5}}}], }')
    code = main(["run", str(wat_module("minimal")), str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "not valid JSON" in err and "Traceback" not in err
    bad.write_text('{"streams": [{"request": {"headers": {":path": []}}}]}')
    code = main(["run", str(wat_module("minimal")), str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "streams[0].request.headers[0]" in err


def test_properties_and_configuration_objects():
    sc = parse_scenario(
        {
            "plugin": {"configuration": {"mode": "deny", "n": 2}},
            "properties": [{"path": ["a", "b"], "value": {"base64": "AAE="}}, {"path": "a.c", "value": {"k": 1}}],
        }
    )
    assert sc.configuration == b'{"mode":"deny","n":2}'
    assert sc.properties == {"a": {"b": b"\x00\x01", "c": {"k": 1}}}


def test_fail_on_trap_turns_a_trapped_stream_into_exit_1(capsys):
    scenario = ROOT / "tests/scenarios/pitfalls.yaml"
    code, data, _ = run_json(capsys, wat_module("pitfalls"), scenario)
    assert code == 0 and data["error"] is None  # by default a trap is a per-stream result
    code, data, _ = run_json(capsys, wat_module("pitfalls"), scenario, "--fail-on-trap")
    assert code == 1 and data["started"] and data["phase"] == "scenario"
    assert data["error"].endswith("failed in the guest: trap with fail open")
    assert data["streams"][2]["error"]  # the streams are still reported
    code = main(["run", str(wat_module("pitfalls")), str(scenario), "--fail-on-trap"])
    captured = capsys.readouterr()
    assert code == 1 and "trap with fail open (--fail-on-trap)" in captured.err
    assert "error:" in captured.out  # the per-stream summary still names the trap


def test_fail_on_trap_passes_a_clean_scenario(capsys):
    code, data, _ = run_json(capsys, FIXTURES / "rust/headers_rust.wasm", SCENARIOS / "headers.json", "--fail-on-trap")
    assert code == 0 and data["error"] is None


def test_human_output_shows_the_guest_backtrace_of_a_trap(tmp_path, capsys):
    scenario = tmp_path / "trap.json"
    scenario.write_text(
        json.dumps({"streams": [{"request": {"headers": [[":method", "GET"], [":path", "/"], [":authority", "a"], ["x-tenant", "sandbox-x"]]}}]})
    )
    assert main(["run", str(FIXTURES / "bugs/rust_value_prefix/bug_rust_value_prefix.wasm"), str(scenario)]) == 0
    out = capsys.readouterr().out
    assert "  guest backtrace:\n    0: rust_panic @ 0x" in out
    assert "bug_rust_value_prefix::Router as proxy_wasm::traits::HttpContext>::on_http_request_headers" in out


def test_human_output_shows_each_streams_log_lines_under_it(capsys):
    assert main(["run", str(FIXTURES / "go/headers_go.wasm"), str(FIXTURES / "scenarios/headers.json")]) == 0
    out = capsys.readouterr().out
    head, streams = out.split("stream 1", 1)
    assert "[info] configure: " in head and "request_headers" not in head  # the plugin's own lines first
    assert " [info] request_headers: path=/admin" in streams.split("stream 2", 1)[1].split("stream 3", 1)[0]


def test_human_output_ends_with_the_world_after_the_run(capsys):
    assert main(["run", str(FIXTURES / "go_features/features_go.wasm"), str(FIXTURES / "scenarios/features.yaml")]) == 0
    world = capsys.readouterr().out.split("after the run:\n", 1)[1]
    assert " metric requests_total (counter): 1" in world and " shared data hits = '42'" in world
    assert " connection 1: upstream got 'HELLO, TCP', downstream got 'pong', closed True" in world
