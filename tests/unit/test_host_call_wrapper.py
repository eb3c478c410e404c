"""The C accelerator's import wrapper (``emulator.engines._crossing.HostCall``) against the
generated Python one (``emulator.vm.program._wrap``, the reference): the same statuses, trace
entries, notes and errors on the same calls."""

from __future__ import annotations

import pytest
import wasmtime

from emulator import Host, PluginStartError
from emulator.engines import accelerator
from emulator.expectations import ANY
from emulator.glue import ImportCalls
from emulator.vm import program
from tests.conformance.test_envoy_fidelity import LEGACY_START
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness
from tests.unit.test_trace_recorder import _Generic, _sweep

pytestmark = pytest.mark.skipif(accelerator() is None, reason="the C accelerator is not built (pure mode): only the Python wrapper exists")


def _both(run, monkeypatch):
    """``run()`` with the C wrappers, then with the Python ones."""
    c = run()
    monkeypatch.setattr(program, "C_WRAPPERS", False)
    return c, run()


def test_the_wrapper_in_use_is_the_kind_asked_for(monkeypatch):
    assert _both(lambda: type(program._wrap(ImportCalls(), "proxy_log", print, 3, False)).__name__, monkeypatch) == ("HostCall", "function")


@pytest.mark.parametrize("observer", [None, _Generic], ids=["recorder", "generic-observer"])
def test_every_import_with_good_and_bad_pointers_gives_the_same_entries(observer, monkeypatch):
    c, python = _both(lambda: _sweep(observer), monkeypatch)
    assert len(c) == len(python) > 100
    assert [e.to_json() for e in c] == [e.to_json() for e in python]


def test_expectations_see_and_answer_the_same_calls(monkeypatch):
    def run():
        h = Harness("wasmtime")
        h.host.trace = None  # the observer only for the expectations, then none
        key = h.put("x-key")
        with h.host.expect_calls() as expect:
            expect.call("proxy_get_property", path=ANY).returns(data=b"injected")
            status = h.call("proxy_get_property", *key, RET_PTR, RET_LEN)
        return status, h.returned(), h.host.observer is None

    c, python = _both(run, monkeypatch)
    assert c == python == (0, b"injected", True)


def test_a_restricted_call_fails_the_start_alike(monkeypatch):
    wasm = bytes(wasmtime.wat2wasm(LEGACY_START))

    def run():
        with pytest.raises(PluginStartError) as info:
            Host().load(wasm)
        return str(info.value), type(info.value.cause.cause).__name__

    c, python = _both(run, monkeypatch)
    assert c == python and c[1] == "RestrictedHostCall"
