"""Malformed modules (issue #8): truncated, bit-flipped, section-shuffled and spliced fixtures and
wrong signatures give a clear ModuleLoadError or PluginStartError, never a crash or another
exception; a mutant that still starts survives an HTTP exchange and ticks (a trap is fine).

The mutators and the loader are in ``emulator/hardening/mutants.py``. Every test runs on each engine given
with ``--proxy-wasm-engine``; on wasmer, mutants are screened on wasmtime first because wasmer
cannot interrupt a guest that loops forever.
"""

from __future__ import annotations

import json

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import Host, ModuleLoadError, PluginStartError, UnknownImportsError
from emulator.hardening.choosers import DataChooser, RandomChooser
from emulator.hardening.mutants import MUTATION_STRATEGIES, Mutant, fixture_modules, load_mutant, mutate, run_mutation_campaign, screen_on_wasmtime
from tests.conftest import wat_module

CLEAN_OUTCOMES = {"load_error", "start_error", "started"}

MODULE = """(module
  {imports}
  {memory}
  {exports}
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_context_create") (param i32 i32))
  {more}
)"""
GOOD = {
    "memory": '(memory (export "memory") 1)',
    "malloc": '(func (export "malloc") (param i32) (result i32) (i32.const 1024))',
    "vm_start": '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))',
    "configure": '(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))',
}


def module(imports="", memory=None, more="", **replace):
    parts = {**GOOD, **replace}
    exports = "\n  ".join(v for k, v in parts.items() if k != "memory")
    return bytes(wasmtime.wat2wasm(MODULE.format(imports=imports, memory=memory if memory is not None else parts["memory"], exports=exports, more=more)))


def check(result):
    assert result.outcome in CLEAN_OUTCOMES, result.error
    assert not result.problems, "\n".join(result.problems)
    return result


@pytest.mark.parametrize(
    ("what", "wasm"),
    [
        ("proxy_log imported with (i64)", lambda: module('(import "env" "proxy_log" (func (param i64) (result i32)))')),
        ("proxy_log imported returning i64", lambda: module('(import "env" "proxy_log" (func (param i32 i32 i32) (result i64)))')),
        ("fd_write imported with one parameter", lambda: module('(import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))')),
        ("a host function imported as a global", lambda: module('(import "env" "proxy_log" (global i32))')),
        ("memory imported instead of exported", lambda: module(memory='(import "env" "memory" (memory 1))')),
        ("no exported memory", lambda: module(memory="(memory 1)")),
        ("proxy_on_configure with one parameter", lambda: module(configure='(func (export "proxy_on_configure") (param i32) (result i32) (i32.const 1))')),
        ("proxy_on_vm_start without a result", lambda: module(vm_start='(func (export "proxy_on_vm_start") (param i32 i32))')),
        ("malloc taking an i64", lambda: module(malloc='(func (export "malloc") (param i64) (result i32) (i32.const 1024))')),
        ("no allocator at all", lambda: module(malloc="")),
        ("_initialize with a parameter", lambda: module(more='(func (export "_initialize") (param i32))')),
        ("proxy_on_tick returning a value", lambda: module(more='(func (export "proxy_on_tick") (param i32) (result i32) (i32.const 0))')),
        ("an unknown import", lambda: module('(import "env" "proxy_no_such_call" (func (param i32) (result i32)))')),
    ],
)
def test_wrong_signatures_are_load_errors(proxy_wasm_engine, what, wasm):
    with pytest.raises(ModuleLoadError) as info:
        Host(engine=proxy_wasm_engine, cache=False).load(wasm())
    assert info.value.reason and info.value.envoy
    if what == "an unknown import":
        assert isinstance(info.value, UnknownImportsError)


def test_truncations_of_every_fixture_are_load_errors(proxy_wasm_engine):
    for path in fixture_modules():
        data = path.read_bytes()
        if len(data) > 100_000:
            continue
        for n in (0, 3, 4, 7, 8, 9, 12, len(data) // 3, len(data) // 2, len(data) - 1):
            with pytest.raises(ModuleLoadError):
                Host(engine=proxy_wasm_engine, cache=False).load(data[:n])


@pytest.mark.parametrize("strategy", sorted(MUTATION_STRATEGIES))
def test_each_mutation_strategy(proxy_wasm_engine, strategy):
    ch = RandomChooser(sorted(MUTATION_STRATEGIES).index(strategy))
    sources = [p for p in fixture_modules() if p.stat().st_size < 100_000]
    outcomes = set()
    for _ in range(12):
        mutant = mutate(ch, sources, strategy=strategy)
        if proxy_wasm_engine == "wasmer" and not screen_on_wasmtime(mutant):
            continue
        outcomes.add(check(load_mutant(mutant, engine=proxy_wasm_engine)).outcome)
    assert outcomes


def test_signature_mutants_are_all_refused(proxy_wasm_engine):
    ch = RandomChooser(5)
    for _ in range(30):
        mutant = mutate(ch, strategy="signature")
        result = check(load_mutant(mutant, engine=proxy_wasm_engine))
        if mutant.expect_refused:
            assert result.outcome == "load_error", mutant.detail


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutants_never_crash_or_raise_anything_else(proxy_wasm_engine, data):
    sources = [p for p in fixture_modules() if p.stat().st_size < 100_000]
    mutant = mutate(DataChooser(data), sources)
    if proxy_wasm_engine == "wasmer" and not screen_on_wasmtime(mutant):
        return
    check(load_mutant(mutant, engine=proxy_wasm_engine))


RUNAWAY = {
    "_initialize loops": ('(func (export "_initialize") (loop $l (br $l)))', "start_error", ""),
    "the wasm start function loops": ("(func $s (loop $l (br $l))) (start $s)", "start_error", ""),
    "on_request_headers loops": (
        '(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))',
        "started",
        "interrupt",
    ),
}


@pytest.mark.proxy_wasm_engines("wasmtime", "wasmtime-stock")
@pytest.mark.parametrize("case", sorted(RUNAWAY))
def test_a_mutant_that_loops_forever_is_stopped(proxy_wasm_engine, case):
    more, outcome, exercise = RUNAWAY[case]
    result = check(load_mutant(Mutant(module(more=more), "test", case), engine=proxy_wasm_engine, deadline_s=0.3))
    assert (result.outcome, result.exercise, result.runaway) == (outcome, exercise, True)


def test_a_memory_bomb_stops_at_the_limit(proxy_wasm_engine):
    bomb = '(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1024)) (i32.const -1)))) (i32.const 0))'
    result = check(load_mutant(Mutant(module(more=bomb), "test", "memory bomb"), engine=proxy_wasm_engine))
    assert result.outcome == "started"
    if proxy_wasm_engine == "wasmer":  # wasmer cannot refuse a grow: the limit is checked after the call
        assert result.exercise == "trap"
    else:
        assert result.exercise == "ok" and result.max_memory <= 1 << 30


def test_wasmtime_screens_out_what_wasmer_could_not_stop():
    loop = Mutant(module(more='(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))'), "test", "loop")
    assert not screen_on_wasmtime(loop, deadline_s=0.3)
    assert screen_on_wasmtime(Mutant(module(), "test", "fine"))


def test_ci_sized_campaign(proxy_wasm_engine):
    """The CI figure of docs/pages/reliability.md: a few hundred mutants in well under a minute, none crashing."""
    n = 300
    res = run_mutation_campaign(n, seed=2026, engine=proxy_wasm_engine)
    assert res["mutants"] == n == sum(res["outcomes"].values())
    assert (res["crashes"], res["other_exceptions"], res["problems"]) == (0, 0, 0), "\n\n".join(res["failures"])
    assert res["load_errors"] and res["started"]
    assert res["seconds"] < 60


@pytest.mark.parametrize("arity", [1, 4])
def test_headers_callbacks_with_a_wrong_arity_are_refused(proxy_wasm_engine, arity):
    params = " ".join(["i32"] * arity)
    wasm = module(more=f'(func (export "proxy_on_request_headers") (param {params}) (result i32) (i32.const 0))')
    try:
        plugin = Host(engine=proxy_wasm_engine, cache=False).load(wasm)
    except ModuleLoadError:
        return  # refused, as cpp-host does ('Bad function signature')
    plugin.http_exchange({":method": "GET", ":path": "/", ":authority": "x"})  # today: TypeError from the engine caller
    pytest.fail("a module cpp-host refuses was loaded")


def test_start_errors_name_the_phase(proxy_wasm_engine):
    with pytest.raises(PluginStartError) as info:
        Host(engine=proxy_wasm_engine, cache=False).load(module(configure='(func (export "proxy_on_configure") (param i32 i32) (result i32) (unreachable))'))
    assert info.value.phase == "proxy_on_configure"


def test_the_mutant_campaign_without_fixtures_says_what_to_pass(monkeypatch, capsys):
    from emulator.hardening import cli

    monkeypatch.setattr(cli, "fixture_modules", lambda: [])  # as from an installed package
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["mutants", "--count", "1"])
    assert exit_info.value.code == 2
    assert "pass --module FILE.wasm" in capsys.readouterr().err


def test_the_mutant_campaign_mutates_the_modules_given(capsys):
    from emulator.hardening import cli

    assert cli.main(["mutants", "--count", "3", "--seed", "2", "--json", "--module", str(wat_module("minimal"))]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mutants"] == 3 and result["crashes"] == 0 and result["other_exceptions"] == 0
