"""Examples after the first start from a restored snapshot of the post-configure state; a restored
run must do exactly what a fresh host does, in every language, and must not re-run the start."""

from __future__ import annotations

import pytest

from emulator.fuzz.execution import execute_scenario
from emulator.scenario import stream_result, world_state
from tests.conftest import FIXTURES

HEADERS_FILTERS = {
    "rust": FIXTURES / "rust/headers_rust.wasm",
    "go": FIXTURES / "go/headers_go.wasm",
    "assemblyscript": FIXTURES / "assemblyscript/headers_assemblyscript.wasm",
    "cpp": FIXTURES / "c/headers_cpp.wasm",
}

SCENARIOS = [
    {
        "streams": [
            {
                "request": {"headers": [[":method", "POST"], [":path", "/a?x=1"], [":authority", "shop"], ["x-a", "1"]], "chunks": ["he", "llo"]},
                "response": {"headers": [[":status", "200"], ["x-r", "2"]], "chunks": ["ok"]},
            },
            {"request": {"headers": [[":method", "GET"], [":path", "/b"], [":authority", "shop"]]}, "response": {"headers": [[":status", "404"]]}},
        ],
        "advance_ms": 1500,
    },
    {"streams": [{"request": {"headers": [[":method", "GET"], [":path", "/c"], [":authority", "shop"], ["x-trap", "1"]]}}]},
    {"streams": [{"request": {"headers": [[":method", "DELETE"], [":path", "/d"], [":authority", "other"]]}, "response": {"headers": [[":status", "503"]]}}]},
]


def outcome(res):
    """What a run did, as the scenario runner reports it."""
    run = res.run
    return (
        [stream_result(s) for s in run.streams],
        world_state(res.host),
        [(r.level, r.message) for r in res.host.logs],
        sorted(str(v) for v in res.violations),
    )


@pytest.mark.parametrize("language", sorted(HEADERS_FILTERS))
def test_a_restored_start_runs_like_a_fresh_one(language):
    module = HEADERS_FILTERS[language]
    fresh = [outcome(execute_scenario(module, sc)) for sc in SCENARIOS]
    for _round in range(2):  # the second round starts every example from the pooled snapshot
        restored = [outcome(execute_scenario(module, sc, reuse=True)) for sc in SCENARIOS]
        assert restored == fresh


def test_a_restored_start_does_not_create_or_start_a_vm_again(monkeypatch):
    import emulator.host

    created = []
    real = emulator.host.Vm  # what Host.create_vm constructs (Host is an extension type when compiled: no method patching)
    monkeypatch.setattr(emulator.host, "Vm", lambda *a, **kw: created.append(1) or real(*a, **kw))
    module = HEADERS_FILTERS["go"]
    sc = {**SCENARIOS[2], "seed": 987}  # a start no other test pooled
    execute_scenario(module, sc, reuse=True)
    assert len(created) == 1
    for _ in range(3):
        execute_scenario(module, sc, reuse=True)
    assert len(created) == 1
    execute_scenario(module, sc)
    assert len(created) == 2
