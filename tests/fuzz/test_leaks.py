"""The leak check tells a leak from a garbage-collected heap that is still warming up."""

from __future__ import annotations

import pytest

from emulator import Host, Request, Response
from emulator.fuzz.invariants import memory_growth
from tests.conftest import FIXTURES
from tests.fuzz.modules import LEAK_EVERY_REQUEST, compile_wat


class Replay:
    """What the invariant needs of a run: its host, and a way to replay the same traffic."""

    def __init__(self, module, request):
        self.host = Host(trace=False)
        self.plugin = self.host.load(module)
        self.request = request

    def repeat(self):
        self.plugin.http_exchange(self.request, Response({":status": "200"}))


@pytest.mark.parametrize("body_size", [2000, 6000, 12000])
def test_a_leak_free_go_filter_warming_its_heap_is_not_a_leak(body_size):
    # Go's collector first runs when the heap reaches 4 MiB: memory grows over the first tens of
    # requests on leak-free traffic, then levels off (here at 116 pages after about 90 requests).
    run = Replay(FIXTURES / "go/headers_go.wasm", Request.minimal("/x", method="POST", headers={"x-body-mode": "append"}, body="v" * body_size, chunks=2))
    first_window = []
    for _ in range(28):
        run.repeat()
        first_window.append(run.plugin.vm.memory.size)
    assert first_window[-1] > first_window[4]  # it does grow at first: what the old check called a leak
    assert memory_growth(Replay(run.plugin.vm.program.source, run.request)) == []


def test_a_real_leak_is_still_reported_after_every_window(tmp_path):
    run = Replay(compile_wat(LEAK_EVERY_REQUEST, tmp_path, "leak"), Request.minimal("/x"))
    (finding,) = memory_growth(run, repeats=24, warmup=4, windows=4)
    assert "growing in each of 4 windows of 24" in finding
    assert "over 96 replays" in finding and "about 16384 bytes per replay" in finding  # 16 KiB lost per request
