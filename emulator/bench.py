"""``proxy-wasm-emulator bench``: cost figures and timings of a filter on a scenario, and a regression gate.

The deterministic figures (guest instructions from wasmtime fuel, host calls, bytes copied,
allocator use, memory pages) are the same on every machine for the same module and traffic, so
a CI job can gate a merge on them; timings are reported next to them but never gated by default.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .costs import DETERMINISTIC, total
from .host import Host
from .scenario import Scenario, run_scenario, start_plugins
from .tables import Part, Table

__all__ = ["comparable", "compare", "measure"]

GATED = (*DETERMINISTIC, "memory_pages")


def measure(
    module: str | Path,
    scenario: Scenario,
    *,
    engine: str = "wasmtime",
    rounds: int = 5,
    overrides: dict[str, Any] | None = None,
    cache: bool | str | Path = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` once with costs metered, then ``rounds`` warm times for timings.

    Timed rounds all start from one snapshot taken after the plugins started, after an untimed
    warm-up round; the plugin start and that first round are reported apart (``cold_start_ms``,
    ``first_round_ms``).

    ``overrides`` are the command line's plugin and VM settings (see ``start_plugins``); ``cache``
    is :class:`Host`'s compiled-module cache setting. ``progress(done, rounds)`` is called after
    every timed round (the command line's progress bar).
    """
    caps = (overrides or {}).get("allowed_capabilities")
    host = Host(engine=engine, costs=True, trace=False, seed=scenario.seed, cache=cache)
    prog = host.program(module, allowed_capabilities=caps)
    plugins = start_plugins(host, prog, scenario, overrides=overrides)
    first = next(iter(plugins.values()))
    start_pages = first.vm.memory.size // 65536 if first.vm.memory else 0
    runs = run_scenario(first, scenario, plugins)
    per_stream = []
    for spec, stream in runs:
        c = stream.cost()
        per_stream.append({"name": spec.name, **c.to_json()})
    summed = total([stream.cost() for _, stream in runs])
    pages = max(vm.memory_high_water for vm in host.vms) // 65536
    metrics: dict[str, Any] = {**summed.to_json(), "memory_pages": pages, "memory_growth_pages": pages - start_pages}
    # Timings: one host, started once (its plugin start is the cold-start figure), one untimed
    # warm-up round, then every timed round from the same snapshot, as the pytest fixture times warm requests.
    h = Host(engine=engine, trace=False, seed=scenario.seed, cache=cache)
    timed_prog = h.program(module, allowed_capabilities=caps)
    t0 = time.perf_counter()
    ps = start_plugins(h, timed_prog, scenario, overrides=overrides)
    cold_start = time.perf_counter() - t0
    started = h.snapshot()
    t0 = time.perf_counter()
    run_scenario(next(iter(ps.values())), scenario, ps)
    first_round = time.perf_counter() - t0
    timings = []
    planned = max(rounds, 1)
    for _ in range(planned):
        h.restore(started)
        t0 = time.perf_counter()
        run_scenario(next(iter(ps.values())), scenario, ps)
        timings.append(time.perf_counter() - t0)
        if progress is not None:
            progress(len(timings), planned)
    n = max(len(scenario.streams), 1)
    return {
        "filter": str(module),
        "module_sha256": prog.sha256,
        "scenario_sha256": scenario_digest(scenario),
        "engine": engine,
        "abi_version": prog.abi.version,
        "streams": len(scenario.streams),
        "metrics": metrics,
        "per_stream": per_stream,
        "timing": {
            "rounds": len(timings),
            "median_s": statistics.median(timings),
            "min_s": min(timings),
            "per_stream_median_us": statistics.median(timings) / n * 1e6,
            "reset": "snapshot/restore",
            "cold_start_ms": cold_start * 1e3,
            "first_round_ms": first_round * 1e3,
        },
        "instructions_counted": summed.instructions is not None,
    }


def compare(current: dict[str, Any], baseline: dict[str, Any], max_regression_pct: float) -> list[str]:
    """The deterministic metrics that grew by more than ``max_regression_pct`` percent."""
    out = []
    for key in GATED:
        new, old = current["metrics"].get(key), baseline.get("metrics", {}).get(key)
        if new is None or old is None:
            continue
        if old == 0:
            if new > 0:
                out.append(f"{key}: {old} -> {new} (was zero)")
            continue
        pct = (new - old) / old * 100
        if pct > max_regression_pct:
            out.append(f"{key}: {old} -> {new} (+{pct:.1f}%, limit {max_regression_pct:g}%)")
    return out


def report(result: dict[str, Any], regressions: list[str] | None, baseline: dict[str, Any] | None) -> list[Part]:
    """The report as lines and tables (:mod:`emulator.tables`)."""
    m = result["metrics"]
    with_baseline = baseline is not None
    figures = Table(
        f"{result['filter']} on {result['engine']} (ABI {result['abi_version']}), {result['streams']} streams",
        ("figure", "value", "baseline") if with_baseline else ("figure", "value"),
    )
    for key in (*GATED, "memory_growth_pages"):
        value = m.get(key)
        shown = "not counted on this engine" if value is None else str(value)
        if baseline is not None:
            old = baseline["metrics"].get(key)
            figures.rows.append((key, shown, "" if old is None or old == value else f"(baseline {old})"))
        else:
            figures.rows.append((key, shown))
    t = result["timing"]
    timing = [
        ("time per scenario", f"{t['median_s'] * 1e3:.2f} ms median of {t['rounds']} warm rounds ({t['per_stream_median_us']:.1f} µs per stream; not gated)")
    ]
    if "cold_start_ms" in t:
        timing.append(("cold start", f"{t['cold_start_ms']:.2f} ms plugin start, then {t['first_round_ms']:.2f} ms first round (not gated)"))
    if baseline is not None and baseline.get("module_sha256") and baseline["module_sha256"] != result.get("module_sha256"):
        timing.append(("baseline build", f"{baseline['module_sha256'][:12]}, this build {result['module_sha256'][:12]}"))
    figures.rows += [(*row, "") if with_baseline else row for row in timing]
    parts: list[Part] = [figures]
    if regressions is not None:
        parts.append("regressions:\n  " + "\n  ".join(regressions) if regressions else "no regression past the threshold")
    return parts


def scenario_digest(scenario: Scenario) -> str:
    """A digest of what a scenario does (its parsed form), to tell baselines of other traffic apart."""
    return hashlib.sha256(repr(scenario).encode()).hexdigest()


def comparable(current: dict[str, Any], baseline: dict[str, Any]) -> str | None:
    """Why ``baseline`` cannot gate ``current`` (``None``: it can).

    A baseline of another filter (file name) or of other traffic (scenario) is refused. A
    different build of the same filter is what the gate is for, so a different module sha256 is
    compared, and :func:`report` names both builds.
    """
    if Path(baseline.get("filter", "")).name != Path(current["filter"]).name:
        return f"the baseline was measured on {baseline.get('filter')!r}, not {current['filter']!r}: a baseline of another filter is not compared"
    if baseline.get("scenario_sha256") and baseline["scenario_sha256"] != current["scenario_sha256"]:
        return "the baseline was measured on other traffic (its scenario differs): figures of different scenarios are not compared"
    return None


def load_baseline(path: str) -> dict[str, Any]:
    """A saved ``bench --json`` result."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "metrics" not in data:
        raise ValueError(f"{path} is not a bench result (no 'metrics')")
    return data
