"""``pip install proxy-wasm-emulator`` without its extras: hypothesis (``[fuzz]``) and
pytest-benchmark (``[pytest]``) are optional.

Each test runs a fresh interpreter in which both are unimportable (a ``sitecustomize`` blocks them,
as if they were not installed): ``inspect``, ``run``, ``bench`` and the guided fuzzer work, the
hypothesis front doors name the extra to install, and the pytest plugin loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import FIXTURES, ROOT

BLOCKER = textwrap.dedent(
    """
    import importlib.machinery
    import sys

    # as if not installed: no finder finds them (pytest's assertion rewriter asks PathFinder directly)
    _BLOCKED = {"hypothesis", "_hypothesis_pytestplugin", "_hypothesis_globals", "pytest_benchmark"}
    _find_spec = importlib.machinery.PathFinder.find_spec.__func__

    def _find_unblocked(cls, name, path=None, target=None):
        return None if name.split(".")[0] in _BLOCKED else _find_spec(cls, name, path, target)

    importlib.machinery.PathFinder.find_spec = classmethod(_find_unblocked)
    """
)
RUST = FIXTURES / "rust/headers_rust.wasm"
# when the extras are not installed, their pytest plugins are not there either
NO_EXTRA_PLUGINS = ["-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:xdist"]


@pytest.fixture
def bare(tmp_path):
    """Run ``python ARGS`` with the extras unimportable; returns the completed process."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}

    def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    return run


def test_the_blocker_makes_the_extras_unimportable(bare):
    for module in ("hypothesis", "pytest_benchmark"):
        out = bare("-c", f"import {module}")
        assert out.returncode == 1 and f"No module named {module!r}" in out.stderr


def test_the_cli_works_without_the_extras(bare):
    cli = ["-m", "emulator"]
    assert bare(*cli, "inspect", str(RUST), "--json").returncode == 0
    assert bare(*cli, "run", str(RUST), str(FIXTURES / "demo/request.yaml"), "--json").returncode == 0
    assert bare(*cli, "bench", str(RUST), str(FIXTURES / "demo/request.yaml"), "--rounds", "5", "--json").returncode == 0
    fuzz = bare(*cli, "fuzz", str(RUST), "--examples", "40", "--seed", "1", "--json")
    report = json.loads(fuzz.stdout)
    assert report["fuzzer"] == "guided" and report["examples"] >= 40
    # a finding is still shrunk and replayed without hypothesis (the guided engine delta-debugs)
    assert fuzz.returncode in (0, 1), fuzz.stderr
    envoy = bare(*cli, "fuzz", "--envoy-config", str(FIXTURES / "demo/envoy.yaml"), "--examples", "20", "--json")
    assert envoy.returncode in (0, 1), envoy.stderr
    assert json.loads(envoy.stdout)["fuzzer"] == "guided"


def test_the_hypothesis_fuzzer_names_the_extra_to_install(bare):
    out = bare("-m", "emulator", "fuzz", str(RUST), "--examples", "5", "--fuzzer", "hypothesis", "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["error"] == "--fuzzer hypothesis needs hypothesis: pip install 'proxy-wasm-emulator[fuzz]'"
    configs = bare("-m", "emulator", "fuzz", str(RUST), "--examples", "5", "--fuzz-config")
    assert configs.returncode == 2 and "pip install 'proxy-wasm-emulator[fuzz]'" in configs.stderr
    api = bare(
        "-c",
        "from emulator.fuzz import fuzz_filter, fuzz_test, guided_fuzz\n"
        "from emulator.extras import MissingExtraError\n"
        f"print(guided_fuzz({str(RUST)!r}, examples=20, seed=1).examples)\n"
        "for front_door in (fuzz_filter, fuzz_test):\n"
        "    try:\n"
        f"        front_door({str(RUST)!r})\n"
        "    except MissingExtraError as exc:\n"
        "        print(exc.extra, exc)\n",
    )
    assert api.returncode == 0, api.stderr
    lines = api.stdout.splitlines()
    assert int(lines[0]) >= 20
    assert lines[1:] == [
        "fuzz fuzz_filter (the hypothesis fuzzer) needs hypothesis: pip install 'proxy-wasm-emulator[fuzz]'",
        "fuzz fuzz_test needs hypothesis: pip install 'proxy-wasm-emulator[fuzz]'",
    ]


def test_the_pytest_plugin_loads_without_the_extras(bare, tmp_path):
    (tmp_path / "test_filter.py").write_text(
        textwrap.dedent(
            f"""
            def test_a_request(load_filter):
                plugin = load_filter({str(RUST)!r})
                stream = plugin.http_exchange({{":method": "GET", ":path": "/", ":authority": "a"}})
                assert stream.error is None

            def test_a_benchmark(proxy_wasm_benchmark):
                proxy_wasm_benchmark({str(RUST)!r}, {{":method": "GET", ":path": "/", ":authority": "a"}})
            """
        )
    )
    out = bare("-m", "pytest", "-q", *NO_EXTRA_PLUGINS, str(tmp_path / "test_filter.py"), cwd=tmp_path)
    assert "1 passed, 1 error" in out.stdout, out.stdout + out.stderr  # the fixture's setup fails
    assert "the proxy_wasm_benchmark fixture needs pytest-benchmark: pip install 'proxy-wasm-emulator[pytest]'" in out.stdout
