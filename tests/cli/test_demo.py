"""``make demo`` pushes one request through the bundled filter and shows what each side received."""

from __future__ import annotations

import re
import shlex

from emulator.cli.main import main
from tests.conftest import ROOT


def _demo_run_args() -> list[str]:
    """The ``run`` command of the Makefile's demo recipe, with its variables filled in."""
    makefile = (ROOT / "Makefile").read_text()
    filt = re.search(r"^DEMO_FILTER \?= (\S+)", makefile, re.M).group(1)
    line = next(line for line in makefile.splitlines() if "proxy-wasm-emulator run" in line and line.startswith("\t"))
    args = shlex.split(line.strip().replace("$(DEMO_FILTER)", filt))
    return args[args.index("run") :]


def test_make_demo_shows_a_request_and_its_response(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = _demo_run_args()
    assert "fixtures/demo/request.yaml" in args
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stream 1 (demo): GET /items?page=2" in out
    assert "request headers, as upstream received them:\n  + x-fixture: go" in out
    assert "response headers, as the client received them:\n  + x-fixture-response: go" in out
    assert "[info] vm_start: demo-vm-config" in out and "[info] configure: demo-plugin-config" in out
