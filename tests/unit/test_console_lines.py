"""WASI stdout/stderr: one log record per fd_write, as Envoy logs them, and the same text in whole
lines for reading (a Go panic arrives in dozens of pieces)."""

from __future__ import annotations

from emulator import Host
from emulator.cli.main import main
from tests.conftest import FIXTURES

GO = FIXTURES / "go/headers_go.wasm"
PANIC = [(":method", "GET"), (":path", "/"), (":authority", "a"), ("x-trap", "1")]


def test_a_go_panic_reads_as_lines_and_its_records_stay_one_per_write():
    host = Host(trace=False)
    plugin = host.load(GO)
    stream = plugin.http_stream()
    stream.send_request_headers(PANIC, end_of_stream=True)
    pieces = [r for r in host.logs if r.source == "stderr"]
    lines = [r.message for _, r in host.console_lines]
    assert lines[:2] == ["panic: x-trap", "goroutine 1 [running]:"]
    assert len(pieces) > 3 * len(lines)  # Envoy's view: every write is a record
    assert all(r.context_id == stream.context_id for _, r in host.console_lines)
    view = host.console_view()
    assert [r.message for r in view if r.source == "stderr"] == lines and not any(r.message == "panic: " for r in view)
    assert view.index(next(r for r in view if r.message == "panic: x-trap")) > view.index(next(r for r in view if r.message.startswith("request_headers")))


def test_a_restore_forgets_the_lines_written_since_the_snapshot():
    host = Host(trace=False)
    plugin = host.load(GO)
    snap = host.snapshot()
    plugin.http_stream().send_request_headers(PANIC, end_of_stream=True)
    assert host.console_lines
    host.restore(snap)
    assert host.console_lines == [] and host.console_view() == list(host.logs)


def test_run_prints_the_panic_as_lines_under_its_stream(tmp_path, capsys):
    import json

    scenario = tmp_path / "panic.json"
    scenario.write_text(json.dumps({"streams": [{"request": {"headers": [list(h) for h in PANIC]}}]}))
    assert main(["run", str(GO), str(scenario)]) == 0
    stream = capsys.readouterr().out.split("stream 1", 1)[1]
    assert " [error] panic: x-trap\n [error] goroutine 1 [running]:\n" in stream
