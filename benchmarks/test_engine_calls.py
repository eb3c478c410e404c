"""Engine call overhead: guest->host and host->guest calls on every engine, side by side.

Each benchmark round runs N calls; pytest-benchmark reports the time per round, and
``extra_info["calls"]`` gives N so per-call figures are ``time / N``.
"""

from __future__ import annotations

from benchmarks.conftest import bench_instance

N = 1000


def test_guest_to_host_noop(benchmark, engine_name):
    loop = bench_instance(engine_name).export("loop_noop")
    benchmark.extra_info["calls"] = N
    benchmark(loop, N)


def test_guest_to_host_get_header_with_nested_malloc(benchmark, engine_name):
    loop = bench_instance(engine_name).export("loop_get")
    benchmark.extra_info["calls"] = N
    benchmark(loop, N)


def test_host_to_guest_add(benchmark, engine_name):
    add = bench_instance(engine_name).export("add")

    def run():
        for i in range(N):
            add(i, 1)

    benchmark.extra_info["calls"] = N
    benchmark(run)


def test_host_to_guest_nop(benchmark, engine_name):
    nop = bench_instance(engine_name).export("nop")

    def run():
        for _ in range(N):
            nop()

    benchmark.extra_info["calls"] = N
    benchmark(run)
