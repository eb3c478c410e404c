"""What the emulator reports stays the same while its insides change (the hot-path work).

For every fixture and scenario below, three outputs are compared with the files in
``tests/golden/``: the ``run --json`` object of the CLI, the decoded host-call trace of a fixed
exchange, and that exchange's per-callback cost figures (instructions on wasmtime are counted by
fuel, so they are exact). The golden files were written by the code as it was before the hot-path
work began (commit 0436011, the merge of the fidelity work); rewrite them only for a deliberate behaviour change, and say so in
the commit:

    python -m tests.conformance.test_outputs_unchanged --write
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator import Host, Request, Response
from emulator.cli import main as cli_main
from tests.conftest import FIXTURES, SDK_FIXTURES

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = [(path, tag, "headers.json") for path, tag, _ in SDK_FIXTURES] + [
    ("go_features/features_go.wasm", "go_features", "features.yaml"),
    ("rust_features/features_rust.wasm", "rust_features", "features.yaml"),
    ("openapi_validator/openapi_validator.wasm", "openapi", "openapi.yaml"),
]
EXCHANGE = (
    Request.minimal("/items?page=2", method="POST", headers={"x-body-mode": "append", "user-agent": "golden"}, body="hello world", chunks=2),
    Response({":status": "200", "content-type": "text/plain"}, body="ok"),
)


def cli_json(path: str, scenario: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # through the module cache, as users run it (uncached, the Go features module compiled for 1 s here)
        cli_main(["run", str(FIXTURES / path), str(FIXTURES / "scenarios" / scenario), "--json"])
    data = json.loads(out.getvalue())
    data.pop("timing", None)
    return data


def exchange(path: str) -> dict[str, Any]:
    host = Host(costs=True)
    plugin = host.load(FIXTURES / path)
    stream = plugin.http_exchange(*EXCHANGE)
    return {
        "trace": host.trace.to_json(),
        "callbacks": [[c.name, c.action, c.cost.to_json() if c.cost is not None else None] for c in stream.callbacks],
        "upstream": [[k.decode(), v.decode(errors="replace")] for k, v in (stream.upstream_request.headers or [])],
        "downstream": [[k.decode(), v.decode(errors="replace")] for k, v in (stream.downstream_response.headers or [])],
        "logs": [str(r) for r in host.logs],
    }


def outputs(path: str, scenario: str) -> dict[str, Any]:
    """The scenario's CLI output; for the headers-contract fixtures, also a fixed exchange's trace and costs."""
    out: dict[str, Any] = {"run": cli_json(path, scenario)}
    if scenario == "headers.json":
        out["exchange"] = exchange(path)
    return out


@pytest.mark.parametrize(("path", "tag", "scenario"), CASES, ids=[tag for _, tag, _ in CASES])
def test_outputs_match_the_golden_files(path, tag, scenario):
    golden = json.loads((GOLDEN / f"{tag}.json").read_text())
    now = json.loads(json.dumps(outputs(path, scenario)))
    assert now["run"] == golden["run"]
    if "exchange" in golden:
        assert now["exchange"]["trace"] == golden["exchange"]["trace"]
        assert now["exchange"] == golden["exchange"]


def test_the_golden_files_are_not_empty():
    data = json.loads((GOLDEN / "rust.json").read_text())
    assert len(data["exchange"]["trace"]) > 10 and data["exchange"]["callbacks"][0][2]["instructions"] > 1000
    assert data["run"]["streams"]


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.mkdir(exist_ok=True)
    for path, tag, scenario in CASES:
        (GOLDEN / f"{tag}.json").write_text(json.dumps(outputs(path, scenario), indent=1, sort_keys=True) + "\n")
        print("wrote", GOLDEN / f"{tag}.json")
