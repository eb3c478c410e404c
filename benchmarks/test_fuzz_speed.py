"""Fuzzing throughput and the cost of a reset between examples.

- ``test_fuzz_examples``: a fixed number of generated examples through the Rust header filter
  (``extra_info["examples_per_second"]``), with and without the leak check's replays.
- ``test_fuzz_test_examples``: hypothesis-mode :func:`fuzz_test` on the Rust header filter, with
  its default options (harvested dictionary, adversarial traffic) and with well-formed traffic only
  (``extra_info["examples_per_second"]``; the trap invariant is skipped so that it runs to the end).
- ``test_execute_one_example``: one example without hypothesis (fresh host, VM start, one exchange,
  the invariants, shutdown): what the fuzzer pays per example besides generating it.
- ``test_reset_*``: what an example pays to start from the plugin's post-configure state: a fresh
  Host + VM instantiation + ``_initialize`` + ``on_vm_start`` + ``on_configure`` from the
  process-wide cached program (``fresh``), against ``host.restore(snapshot)`` after a stream ran
  (``restore``, what the fuzzer's examples do).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, settings

from benchmarks.conftest import FIXTURES
from emulator import Host
from emulator.fuzz.invariants import resolve_invariants
from emulator.fuzz.runner import execute_scenario, fuzz_filter, fuzz_test

RUST = FIXTURES / "rust/headers_rust.wasm"
EXAMPLES = 40
SCENARIO = {
    "streams": [
        {
            "request": {"headers": [[":method", "POST"], [":path", "/items"], [":authority", "shop"], ["x-a", "1"]], "chunks": ["hello ", "world"]},
            "response": {"headers": [[":status", "200"]], "chunks": ["ok"]},
        }
    ]
}


@pytest.mark.parametrize("leak_repeats", [0, 24], ids=["no-leak-check", "leak-check-24"])
def test_fuzz_examples(benchmark, engine_name, leak_repeats):
    reports = []

    def run():
        report = fuzz_filter(RUST, examples=EXAMPLES, seed=0, engine=engine_name, adversarial=False, harvest=False, leak_repeats=leak_repeats)
        reports.append(report)
        return report

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert not any(r.found for r in reports)
    best = min(reports, key=lambda r: r.elapsed_s)
    benchmark.extra_info["examples_per_round"] = best.examples
    benchmark.extra_info["examples_per_second"] = round(best.examples / best.elapsed_s, 1)


@pytest.mark.parametrize("well_formed", [False, True], ids=["defaults", "well-formed"])
def test_fuzz_test_examples(benchmark, engine_name, well_formed):
    examples = 300
    options = {"adversarial": False, "harvest": False} if well_formed else {}
    test = fuzz_test(RUST, engine=engine_name, exclude=["trap"], **options)
    test = settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])(test)
    rates = []

    def run():
        started = time.perf_counter()
        test()  # raises on a finding: the Rust header filter has none but its traps
        rates.append(examples / (time.perf_counter() - started))

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["examples_per_second"] = round(max(rates), 1)


@pytest.mark.parametrize("reuse", [False, True], ids=["fresh-start", "restored-start"])
@pytest.mark.parametrize("leak_check", [False, True], ids=["no-leak-check", "leak-check-24"])
def test_execute_one_example(benchmark, engine_name, leak_check, reuse):
    invariants = resolve_invariants(exclude=() if leak_check else ("memory_growth",))
    execute_scenario(RUST, SCENARIO, engine=engine_name, invariants=invariants, reuse=reuse)  # compile once
    result = benchmark(lambda: execute_scenario(RUST, SCENARIO, engine=engine_name, invariants=invariants, reuse=reuse))
    assert result.violations == []


@pytest.mark.parametrize("fixture", ["rust/headers_rust.wasm", "go/headers_go.wasm", "wat/pitfalls.wasm"])
def test_reset_fresh_host_and_plugin(benchmark, engine_name, fixture):
    path = FIXTURES / fixture
    Host(engine=engine_name, trace=False).program(path)  # the compiled, linked program is shared process-wide

    def reset():
        host = Host(engine=engine_name, trace=False)
        return host.load(path)

    plugin = benchmark(reset)
    assert plugin.started


@pytest.mark.parametrize("fixture", ["rust/headers_rust.wasm", "go/headers_go.wasm", "wat/pitfalls.wasm"])
def test_reset_restore(benchmark, engine_name, fixture):
    host = Host(engine=engine_name, trace=False)
    plugin = host.load(FIXTURES / fixture)
    snap = host.snapshot()
    stream = plugin.http_stream()
    stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "bench"}, end_of_stream=True)
    stream.complete()

    benchmark(host.restore, snap)
    assert not plugin.streams and plugin.started


@pytest.mark.parametrize("fixture", ["rust/headers_rust.wasm", "go/headers_go.wasm"])
def test_guided_executions(benchmark, engine_name, fixture):
    """The command line's default engine: executions and newly covered blocks per second
    (``extra_info``), 1,000 executions per round, leak check on new coverage only (its default)."""
    from emulator.engines import get_engine
    from emulator.fuzz.guided import guided_fuzz

    if "multi-memory" in get_engine(engine_name).unsupported_proposals:
        pytest.skip(f"the guided engine measures guest coverage, which needs multi-memory ({engine_name} has none)")

    reports = []

    def run():
        report = guided_fuzz(FIXTURES / fixture, examples=1000, seed=1, exclude=["trap"], engine=engine_name)
        reports.append(report)
        return report

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert all(not r.found for r in reports) and all(r.examples == 1000 for r in reports)
    best = min(reports, key=lambda r: r.elapsed_s)
    benchmark.extra_info["executions_per_second"] = round(best.examples / best.elapsed_s, 1)
    benchmark.extra_info["covered_blocks"] = best.coverage["covered"]
    benchmark.extra_info["covered_blocks_per_second"] = round(best.coverage["covered"] / best.elapsed_s, 1)
