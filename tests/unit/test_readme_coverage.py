"""The README's ABI coverage table tells the truth about the code."""

import re

from abi import HOST_FUNCTIONS
from emulator.vm.program import implemented_functions
from tests.conftest import ROOT


def coverage_rows():
    text = (ROOT / "README.md").read_text()
    section = text.split("## ABI coverage", 1)[1]
    return {m[1]: (m[2].strip(), m[3].strip()) for m in re.finditer(r"^\| `([a-z_]+)` \| ([^|]+) \|([^|]*)\|$", section, re.M)}


def cited_files(tests: str) -> list[str]:
    """The test files a row's tests column cites (other words, e.g. ``fixtures``, are notes)."""
    return [t.split()[0] for t in (part.strip() for part in tests.split(",")) if ".py" in t]


def names(source: str, function: str) -> bool:
    """Whether ``source`` names the import ``function`` as a whole identifier (not a longer name)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(function)}(?![A-Za-z0-9_])", source) is not None


def test_every_host_function_has_one_true_row():
    rows = coverage_rows()
    assert set(rows) == set(HOST_FUNCTIONS)
    implemented = implemented_functions()
    for name, (status, tests) in rows.items():
        assert status.startswith("implemented") == (name in implemented), name
        if name in implemented:
            files = cited_files(tests)
            assert files, f"{name} claims no tests"
            for f in files:
                path = ROOT / "tests" / f
                assert path.is_file(), f
                assert names(path.read_text(), name), f"the README cites tests/{f} for {name}, but that file never names {name}"


def test_a_row_citing_a_test_that_never_names_the_call_is_caught():
    assert cited_files("conformance/test_hostcalls_basic.py, fixtures (`tick`), fixtures/test_sdk_http.py (c_abi010)") == [
        "conformance/test_hostcalls_basic.py",
        "fixtures/test_sdk_http.py",
    ]
    assert names('h.call("proxy_log", 2, ptr, n)', "proxy_log")
    assert not names('h.call("proxy_get_log_level", RET_PTR)', "proxy_log")
    assert not names("assert plugin.status == (11, b'')", "proxy_get_status")
    assert not names('"proxy_http_call_x"', "proxy_http_call")
