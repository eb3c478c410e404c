"""The fuzzer's dictionary takes the header names the filter asks the host for on the seed traffic."""

from __future__ import annotations

from emulator import Host, Request
from emulator.fuzz.harvest import host_call_vocabulary
from emulator.fuzz.vocabulary import _asked_for
from tests.conftest import FIXTURES

SEED = {"streams": [{"request": {"headers": {":method": "GET", ":path": "/", ":authority": "a"}}}]}


def test_the_names_a_filter_looks_up_are_words():
    host = Host()
    host.load(FIXTURES / "rust/headers_rust.wasm").http_exchange(Request.minimal("/"))
    vocab = host_call_vocabulary(host.trace)
    # the headers contract's filter asks for these (fixtures/CONTRACT.md), none of them in our input
    assert {"x-deny", "x-body-mode", "x-pause", "x-read-property"} <= set(vocab.names)
    assert "x-fixture" in vocab.names and "rust" in vocab.values  # what it added, and the value


def test_the_seed_run_feeds_the_case_space_in_every_language():
    for path in ("go/headers_go.wasm", "c/headers_c.wasm", "assemblyscript/headers_assemblyscript.wasm"):
        names = _asked_for(FIXTURES / path, SEED, "wasmtime").names
        assert "x-deny" in names and "x-pause" in names, (path, names)


def test_a_module_that_does_not_start_gives_no_words():
    assert _asked_for(FIXTURES / "wat/trap_in_configure.wasm", SEED, "wasmtime").names == []
