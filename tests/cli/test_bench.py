"""Cost metrics and the ``bench`` regression gate."""

from __future__ import annotations

import json
import subprocess
import sys

from emulator import Host, Request, Response
from emulator.bench import measure
from emulator.cli.main import main
from emulator.costs import DETERMINISTIC
from emulator.scenario import load_scenario
from tests.conftest import FIXTURES, ROOT, wat_module

SCENARIO = FIXTURES / "scenarios/bench.yaml"
REQ = Request({":method": "GET", ":path": "/", ":authority": "a"})


def test_costs_per_callback_and_per_request():
    host = Host(costs=True, trace=False)
    plugin = host.load(FIXTURES / "rust/headers_rust.wasm")
    plugin.http_exchange(REQ)
    s = plugin.http_exchange(REQ, Response({":status": "200"}))
    headers = next(c for c in s.callbacks if c.name == "proxy_on_request_headers")
    assert headers.cost.instructions > 0 and headers.cost.host_calls >= 2
    assert headers.cost.bytes_from_guest > 0 and headers.cost.alloc_calls >= 1
    assert headers.to_json()["cost"]["host_calls"] == headers.cost.host_calls
    total = s.cost()
    assert total.instructions == sum(c.cost.instructions for c in s.callbacks if c.cost is not None)
    assert plugin.vm.memory_high_water >= 17 * 65536


def test_unexported_callbacks_cost_nothing():
    host = Host(costs=True)
    s = host.load(wat_module("bench_fast")).http_exchange(REQ, Response({":status": "200"}))
    costs = {c.name: c.cost for c in s.callbacks}
    assert costs["proxy_on_response_headers"] is None
    assert costs["proxy_on_request_headers"].host_calls == 1


def _build(tmp_path, which):
    """``filter.wasm`` as a new build of the same filter would be: the same name, other bytes."""
    out = tmp_path / which / "filter.wasm"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(wat_module(which).read_bytes())
    return str(out)


def test_gate_fails_a_slower_filter_and_passes_the_same_one(capsys, tmp_path):
    baseline = tmp_path / "baseline.json"
    fast, slow = _build(tmp_path, "bench_fast"), _build(tmp_path, "bench_slow")
    assert main(["bench", fast, str(SCENARIO), "--save", str(baseline), "--rounds", "1"]) == 0
    capsys.readouterr()
    assert main(["bench", fast, str(SCENARIO), "--baseline", str(baseline), "--rounds", "1"]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["bench", slow, str(SCENARIO), "--baseline", str(baseline), "--rounds", "1"]) == 1
    assert "baseline build" in capsys.readouterr().out  # a new build: both named
    assert main(["bench", slow, str(SCENARIO), "--baseline", str(baseline), "--rounds", "1", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["regressions"] and out["regressions"][0].startswith("instructions: ")
    assert out["metrics"]["host_calls"] == json.loads(baseline.read_text())["metrics"]["host_calls"]


def test_a_baseline_of_another_filter_or_other_traffic_is_refused(capsys, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert main(["bench", str(wat_module("bench_fast")), str(SCENARIO), "--save", str(baseline), "--rounds", "1"]) == 0
    assert main(["bench", str(wat_module("bench_slow")), str(SCENARIO), "--baseline", str(baseline), "--rounds", "1"]) == 2
    assert "a baseline of another filter is not compared" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.read_text().replace("/", "/other", 1))
    assert main(["bench", str(wat_module("bench_fast")), str(other), "--baseline", str(baseline), "--rounds", "1"]) == 2
    assert "other traffic" in capsys.readouterr().err


def test_bad_baseline_is_a_usage_error(capsys, tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text("[]")
    assert main(["bench", str(wat_module("bench_fast")), str(SCENARIO), "--baseline", str(bad)]) == 2
    assert "not a bench result" in capsys.readouterr().err


def test_deterministic_metrics_are_identical_across_processes_and_engine_paths():
    script = (
        "import json, sys; from emulator.bench import measure; from emulator.scenario import load_scenario; "
        f"r = measure({str(FIXTURES / 'go/headers_go.wasm')!r}, load_scenario({str(SCENARIO)!r}), engine=sys.argv[1], rounds=1); "
        "print(json.dumps(r['metrics']))"
    )
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", script, engine], capture_output=True, text=True, check=True, cwd=ROOT).stdout)
        for engine in ("wasmtime", "wasmtime", "wasmtime-stock")
    ]
    first = {k: runs[0][k] for k in DETERMINISTIC}
    assert first["instructions"] > 0
    for other in runs[1:]:
        assert {k: other[k] for k in DETERMINISTIC} == first


def test_measure_reports_timings_without_gating_them():
    r = measure(wat_module("bench_fast"), load_scenario(SCENARIO), rounds=2)
    assert r["timing"]["rounds"] == 2 and r["timing"]["median_s"] > 0
    assert r["instructions_counted"] is True


def test_bench_takes_the_same_plugin_and_cache_options_as_run(capsys, tmp_path, monkeypatch):
    import emulator.bench

    seen = []
    real = emulator.bench.start_plugins

    def spy(host, module, scenario, *, overrides=None):
        seen.append(overrides)
        return real(host, module, scenario, overrides=overrides)

    monkeypatch.setattr(emulator.bench, "start_plugins", spy)
    vm_config = tmp_path / "vm.cfg"
    vm_config.write_text("from-bench")
    cache = tmp_path / "cache"
    module = tmp_path / "filter.wasm"  # a path of its own, so no in-process warm load skips the disk cache
    module.write_bytes((FIXTURES / "rust/headers_rust.wasm").read_bytes() + b"\0\x05\x04test")
    args = ["bench", str(module), str(SCENARIO), "--rounds", "1", "--vm-config", str(vm_config)]
    assert main([*args, "--env", "A=1", "--cache-dir", str(cache), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["host_calls"] > 0
    assert seen and all(o["vm_config"] == b"from-bench" and o["environment"] == {"A": "1"} for o in seen)
    assert any(cache.rglob("*")), "--cache-dir holds the compiled module"
    other = tmp_path / "unused"
    assert main([*args, "--no-cache", "--cache-dir", str(other)]) == 0
    assert not other.exists() or not any(other.rglob("*")), "--no-cache wins over --cache-dir"
    assert main([*args, "--env", "NOEQUALS"]) == 2 and "KEY=VALUE" in capsys.readouterr().err
    assert main(["bench", str(wat_module("bench_fast")), str(SCENARIO), "--vm-config", str(tmp_path / "missing")]) == 2


def test_every_bench_option_has_help():
    from emulator.cli.main import build_parser

    bench = build_parser()._subparsers._group_actions[0].choices["bench"]
    assert [a.dest for a in bench._actions if not a.help] == []


def test_timed_rounds_are_warm_and_start_from_one_snapshot(monkeypatch):
    import emulator.bench

    states = []
    real = emulator.bench.run_scenario

    def spy(plugin, scenario, plugins=None):
        host = plugin.host
        states.append((host.clock.elapsed_ns, len(host.logs), len(plugin.streams)))
        return real(plugin, scenario, plugins)

    monkeypatch.setattr(emulator.bench, "run_scenario", spy)
    scenario = load_scenario(FIXTURES / "scenarios/headers.json")
    result = measure(FIXTURES / "rust/headers_rust.wasm", scenario, rounds=4)
    t = result["timing"]
    assert t["rounds"] == 4 and t["reset"] == "snapshot/restore"
    assert t["cold_start_ms"] > 0 and t["first_round_ms"] > 0
    # the metered run, the warm-up round, then 4 timed rounds, each from the warm-up's starting state
    assert len(states) == 6
    assert states[2:] == [states[1]] * 4
