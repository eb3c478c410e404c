"""The command line: inspect and run, with JSON output and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulator import speedups
from emulator.cli.main import main
from tests.conftest import FIXTURES, SDK_FIXTURES, wat_module

ALL_MODULES = [FIXTURES / p for p, _, _ in SDK_FIXTURES] + sorted((FIXTURES / "wat").glob("*.wasm"))


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("path", ALL_MODULES, ids=[p.name for p in ALL_MODULES])
def test_inspect_json_on_every_fixture(capsys, path):
    code, out, _ = run_cli(capsys, "inspect", path, "--json")
    assert code == 0
    data = json.loads(out)
    assert {"abi_version", "imports", "exports", "unsupported_imports"} <= data.keys()
    assert data["abi_version"] in ("0.1.0", "0.2.0", "0.2.1")


@pytest.mark.parametrize(("path", "tag", "abi_version"), SDK_FIXTURES, ids=[t for _, t, _ in SDK_FIXTURES])
def test_inspect_reports_version_and_sdk(capsys, path, tag, abi_version):
    _, out, _ = run_cli(capsys, "inspect", FIXTURES / path, "--json")
    data = json.loads(out)
    assert data["abi_version"] == abi_version
    expected_sdk = {
        "rust": "Rust",
        "go": "Go",
        "assemblyscript": "AssemblyScript",
        "assemblyscript_current": "AssemblyScript",
        "c": "C/C++",
        "cpp": "C/C++",
        "c_abi010": "C/C++",
        "wat": "unknown",
    }[tag]
    assert data["sdk"].startswith(expected_sdk)
    assert data["unsupported_imports"] == []


def test_inspect_marks_unknown_imports(capsys):
    _, out, _ = run_cli(capsys, "inspect", wat_module("unknown_imports"), "--json")
    data = json.loads(out)
    assert data["unsupported_imports"] == ["env.proxy_frobnicate", "my_sdk.helper"]
    assert [i["unsupported"] for i in data["imports"]] == [True, True, False]


@pytest.mark.parametrize(("path", "tag", "abi_version"), SDK_FIXTURES, ids=[t for _, t, _ in SDK_FIXTURES])
def test_run_json_starts_every_sdk_fixture(capsys, tmp_path, path, tag, abi_version):
    cfg = tmp_path / "cfg"
    cfg.write_text("from-cli")
    code, out, _ = run_cli(capsys, "run", FIXTURES / path, "--plugin-config", cfg, "--root-id", "headers", "--json")
    data = json.loads(out)
    assert code == 0 and data["started"] is True and data["error"] is None
    assert data["abi_version"] == abi_version
    assert {"level": "info", "message": "configure: from-cli"} in [{"level": r["level"], "message": r["message"]} for r in data["logs"]]


def test_run_failure_exits_non_zero_with_the_reason(capsys, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.write_text("trap-configure")
    code, out, _ = run_cli(capsys, "run", FIXTURES / "go/headers_go.wasm", "--plugin-config", cfg, "--json")
    data = json.loads(out)
    assert code == 3 and data["started"] is False  # the filter's failure: exit 3
    assert data["phase"] == "proxy_on_configure"
    assert "trap-configure" in data["error"]


def test_run_human_output_on_failure(capsys):
    code, _out, err = run_cli(capsys, "run", wat_module("vm_start_false"))
    assert code == 3
    assert "did not start (proxy_on_vm_start)" in err and "what Envoy does" in err


def test_unknown_import_and_stub_option(capsys):
    code, out, _ = run_cli(capsys, "run", wat_module("unknown_imports"), "--json")
    assert code == 3 and "proxy_frobnicate" in json.loads(out)["error"]
    code, out, _ = run_cli(capsys, "run", wat_module("unknown_imports"), "--json", "--stub-unknown-imports")
    assert code == 0 and json.loads(out)["started"]


def test_bad_input_is_an_error_without_traceback(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", FIXTURES / "go/headers_go.wasm", "--plugin-config", tmp_path / "missing.json")
    assert code == 2 and "--plugin-config: cannot read" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "run", wat_module("minimal"), "--env", "NOEQUALS")
    assert code == 2 and "KEY=VALUE" in err
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0\x01\xff")
    code, out, _ = run_cli(capsys, "inspect", bad, "--json")
    assert code == 3 and "malformed" in json.loads(out)["error"]


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "emulator", "inspect", str(wat_module("minimal")), "--json"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["abi_version"] == "0.2.1"


def test_version_names_the_package_the_engines_and_the_call_path(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("proxy-wasm-emulator 0.1.0 (Python ")
    assert "wasmtime 50." in out and ("fast C-API call path" in out or "stock wasmtime-py API" in out)
    assert "wasmer" in out and "\n" not in out
    assert out.endswith(f"; speed mode: {speedups.describe()}")  # compiled, partly compiled or pure Python


@pytest.mark.parametrize("command", ["inspect", "run", "bench", "fuzz"])
def test_a_missing_filter_is_exit_2_and_one_json_object_on_every_command(capsys, tmp_path, command):
    missing = tmp_path / "missing.wasm"
    extra = [FIXTURES / "scenarios/bench.yaml"] if command == "bench" else []
    code, out, err = run_cli(capsys, command, missing, *extra, "--json")
    data = json.loads(out)
    assert code == 2 and str(missing) in data["error"] and "Traceback" not in err


def test_log_level_drops_lower_records_at_the_source(capsys):
    rust = FIXTURES / "rust/headers_rust.wasm"
    _, out, _ = run_cli(capsys, "run", rust, FIXTURES / "scenarios/headers.json", "--json")
    levels = {r["level"] for r in json.loads(out)["logs"]}
    assert "info" in levels
    code, out, _ = run_cli(capsys, "run", rust, FIXTURES / "scenarios/headers.json", "--json", "--log-level", "warn")
    data = json.loads(out)
    assert code == 0 and data["streams"] and not [r for r in data["logs"] if r["level"] in ("trace", "debug", "info")]
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(rust), "--log-level", "loud"])
    assert exit_info.value.code == 2


def test_inspect_human_memory_line_is_words_not_a_dict(capsys):
    go = FIXTURES / "go/headers_go.wasm"
    _, out, _ = run_cli(capsys, "inspect", go, "--json")
    pages = json.loads(out)["memory"]["initial_pages"]
    _, out, _ = run_cli(capsys, "inspect", go)
    line = next(x for x in out.splitlines() if x.startswith("memory:"))
    assert line == f"memory: {pages} pages ({pages * 65536:,} bytes) initial, no maximum, defined by the module"


def test_an_internal_error_is_exit_status_4_and_says_it_is_ours(capsys, monkeypatch):
    import emulator.inspect

    def broken(*_args, **_kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(emulator.inspect, "inspect_module", broken)
    code, out, err = run_cli(capsys, "inspect", wat_module("minimal"), "--json")
    report = json.loads(out)
    assert code == 4 and report["kind"] == "internal" and "KeyError" in report["error"]
    assert "a bug in proxy-wasm-emulator" in err and "Traceback" not in err
