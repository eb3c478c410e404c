"""The README's ABI coverage table tells the truth about the code."""

import re

from abi import HOST_FUNCTIONS
from emulator.vm.program import implemented_functions
from tests.conftest import ROOT


def coverage_rows():
    text = (ROOT / "README.md").read_text()
    section = text.split("## ABI coverage", 1)[1]
    return {m[1]: (m[2].strip(), m[3].strip()) for m in re.finditer(r"^\| `([a-z_]+)` \| ([^|]+) \|([^|]*)\|$", section, re.M)}


def test_every_host_function_has_one_true_row():
    rows = coverage_rows()
    assert set(rows) == set(HOST_FUNCTIONS)
    implemented = implemented_functions()
    for name, (status, tests) in rows.items():
        assert status.startswith("implemented") == (name in implemented), name
        if name in implemented:
            files = [t.split(",")[0].strip() for t in tests.split(", ") if t.endswith(".py") or ".py" in t]
            assert files, f"{name} claims no tests"
            for f in files:
                assert (ROOT / "tests" / f.split()[0]).is_file(), f
