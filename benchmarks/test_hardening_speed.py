"""Hardening campaign throughput (issue #8): hostile host calls per second and malformed modules
per second, per engine.

Each round runs one deterministic campaign (same seed, so the same work every round);
``extra_info["calls"]`` holds the number of hostile calls (or mutants) of a round, so
``python -m benchmarks.report`` prints the time per call (or per mutant), and
``extra_info["per_second"]`` the throughput of the median round.
"""

from __future__ import annotations

from emulator.hardening import run_hostile_campaign, run_mutation_campaign

HOSTILE_CALLS = 500
MUTANTS = 200


def test_hostile_calls_per_second(benchmark, engine_name):
    result = benchmark.pedantic(run_hostile_campaign, args=(HOSTILE_CALLS, 7), kwargs={"engine": engine_name}, rounds=3, iterations=1)
    assert result["escaped_exceptions"] == 0 and result["problems"] == 0
    benchmark.extra_info["calls"] = result["calls"]
    benchmark.extra_info["plans"] = result["plans"]
    benchmark.extra_info["per_second"] = round(result["calls"] / benchmark.stats.stats.median)


def test_mutants_per_second(benchmark, engine_name):
    result = benchmark.pedantic(run_mutation_campaign, args=(MUTANTS, 7), kwargs={"engine": engine_name}, rounds=3, iterations=1)
    assert result["other_exceptions"] == 0 and result["problems"] == 0
    benchmark.extra_info["calls"] = result["mutants"]
    benchmark.extra_info["started"] = result["started"]
    benchmark.extra_info["per_second"] = round(result["mutants"] / benchmark.stats.stats.median)
