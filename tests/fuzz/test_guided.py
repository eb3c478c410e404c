"""The coverage-guided engine finds planted bugs from the module alone, deterministically per seed."""

from __future__ import annotations

import json

import pytest

from emulator.fuzz.guided import guided_fuzz
from tests.conftest import FIXTURES

BUGS = FIXTURES / "bugs"


@pytest.mark.parametrize("seed", [1, 2])
def test_finds_the_rust_panic_on_a_list_header(seed):
    report = guided_fuzz(BUGS / "rust_panic/bug_rust_panic.wasm", examples=1500, seed=seed, find_all=False)
    assert [f.invariant for f in report.findings] == ["trap"]
    assert report.findings[0].reproduces
    assert report.coverage["covered"] > 300 and report.coverage["corpus"] >= 1  # found within a few executions: a small corpus


def test_finds_the_c_leak_on_a_chunking():
    report = guided_fuzz(BUGS / "c_leak/bug_c_leak.wasm", examples=600, seed=1, find_all=False)
    assert [f.invariant for f in report.findings] == ["memory_growth"] and report.findings[0].reproduces


def test_the_same_seed_runs_the_same_executions():
    a = guided_fuzz(FIXTURES / "rust/headers_rust.wasm", examples=300, seed=5, exclude=["trap"], leak_repeats=0)
    b = guided_fuzz(FIXTURES / "rust/headers_rust.wasm", examples=300, seed=5, exclude=["trap"], leak_repeats=0)
    assert a.coverage == b.coverage and a.examples == b.examples == 300


def test_a_corpus_folder_carries_the_run_over(tmp_path):
    first = guided_fuzz(FIXTURES / "rust/headers_rust.wasm", examples=300, seed=3, exclude=["trap"], leak_repeats=0, corpus=tmp_path)
    saved = sorted(tmp_path.glob("*.json"))
    assert len(saved) == first.coverage["corpus"] - 1  # every entry but the seed scenario is on disk
    assert all("streams" in json.loads(p.read_text()) for p in saved)
    again = guided_fuzz(FIXTURES / "rust/headers_rust.wasm", examples=len(saved) + 1, seed=4, exclude=["trap"], leak_repeats=0, corpus=tmp_path)
    assert again.coverage["covered"] >= first.coverage["covered"]  # the saved entries alone reach what the first run reached


def test_a_plugin_that_does_not_start_is_a_setup_error(tmp_path):
    from emulator.fuzz import FuzzSetupError

    with pytest.raises(FuzzSetupError, match="does not start"):
        guided_fuzz(FIXTURES / "rust/headers_rust.wasm", examples=10, seed=1, plugin_config=b"fail-configure")


def test_the_guided_engine_on_wasmer_says_it_needs_wasmtime(proxy_wasm_engine):
    from emulator.fuzz import FuzzSetupError

    if proxy_wasm_engine != "wasmer":
        pytest.skip("wasmer only")
    with pytest.raises(FuzzSetupError, match="needs an engine with multi-memory"):
        guided_fuzz(FIXTURES / "rust/headers_rust.wasm", examples=5, seed=1, engine="wasmer")


def _saved(folder):
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_host_faults_are_mutated_only_when_asked(tmp_path):
    module = FIXTURES / "c/headers_c.wasm"
    plain, faulty = tmp_path / "plain", tmp_path / "faults"
    guided_fuzz(module, examples=400, seed=2, exclude=["trap"], leak_repeats=0, corpus=plain)
    guided_fuzz(module, examples=400, seed=2, exclude=["trap"], leak_repeats=0, corpus=faulty, faults=True)
    assert not any("faults" in sc for sc in _saved(plain))
    rules = [rule for sc in _saved(faulty) for rule in sc.get("faults", [])]
    assert rules, "failing host calls reach guest code nothing else reaches"
    imported = {"proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_replace_header_map_value", "proxy_remove_header_map_value"}
    assert any(rule["function"] in imported for rule in rules)


def test_callouts_the_filter_makes_get_answers(tmp_path):
    guided_fuzz(BUGS / "c_callout_empty/bug_c_callout_empty.wasm", examples=300, seed=1, exclude=["trap"], leak_repeats=0, corpus=tmp_path)
    answers = [r for sc in _saved(tmp_path) for r in sc.get("http_calls", [])]
    assert {r["cluster"] for r in answers} == {"authz"}  # the cluster the filter called, nothing invented
    kinds = {r["response"] if isinstance(r["response"], str) else "response" for r in answers}
    assert "response" in kinds and kinds & {"fail", "timeout"}


def test_configuration_fuzzing_is_refused_not_ignored():
    with pytest.raises(ValueError, match="configuration"):
        guided_fuzz(FIXTURES / "c/headers_c.wasm", examples=10, fuzz_config=True)


def test_the_operands_of_memcmp_are_captured_per_execution():
    from emulator import Host

    host = Host(coverage=True, trace=False)
    plugin = host.load(BUGS / "c_local_continue/bug_c_local_continue.wasm")
    assert host.program(BUGS / "c_local_continue/bug_c_local_continue.wasm").coverage.comparisons is not None
    plugin.vm.reset_coverage()
    plugin.http_stream().send_request_headers([(":method", "DELETE"), (":path", "/"), (":authority", "a")], end_of_stream=True)
    assert plugin.vm.comparisons() == [(b"DELETE", b"DELETE")]  # the filter's memcmp of the method against its own "DELETE"
    plugin.vm.reset_coverage()
    assert plugin.vm.comparisons() == []


def test_go_string_comparisons_are_captured_from_gos_stack():
    from emulator import Host

    module = BUGS / "go_local_continue/bug_go_local_continue.wasm"
    host = Host(coverage=True, trace=False)
    plugin = host.load(module)
    plugin.vm.reset_coverage()
    # a query parameter as long as the one the filter looks for: Go compares the bytes (runtime.memequal)
    plugin.http_stream().send_request_headers([(":method", "GET"), (":path", "/x?abcde=1"), (":authority", "a")], end_of_stream=True)
    assert (b"abcde", b"debug") in plugin.vm.comparisons()


def test_an_instrumented_module_is_compiled_again_when_the_probes_change(tmp_path, monkeypatch):
    # the module cache keys instrumented modules by the probes' version: a stale artifact from an
    # older emulator would run old probes against a new coverage map
    from emulator.engines import get_engine
    from emulator.vm import program
    from emulator.vm.cache import ModuleCache

    wasm = (FIXTURES / "c/headers_c.wasm").read_bytes()
    program.Program(get_engine("wasmtime"), wasm, cache=ModuleCache(tmp_path), coverage=True)
    before = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.setattr(program, "INSTRUMENTATION_VERSION", program.INSTRUMENTATION_VERSION + 1)
    program.Program(get_engine("wasmtime"), wasm, cache=ModuleCache(tmp_path), coverage=True)
    added = {p.name for p in tmp_path.rglob("*") if p.is_file()} - before
    assert len(added) >= 2, f"a new artifact and coverage map for the new probes, got {sorted(added)}"
