"""Shared test helpers: fixture paths and the SDK fixture table."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
WAT = FIXTURES / "wat"

# (module path, language tag of fixtures/CONTRACT.md, ABI version its marker declares)
SDK_FIXTURES = [
    ("rust/headers_rust.wasm", "rust", "0.2.1"),
    ("go/headers_go.wasm", "go", "0.2.0"),
    ("assemblyscript/headers_assemblyscript.wasm", "assemblyscript", "0.2.0"),
    ("assemblyscript_current/headers_assemblyscript_current.wasm", "assemblyscript_current", "0.2.0"),
    ("c/headers_c.wasm", "c", "0.2.1"),
    ("c/headers_cpp.wasm", "cpp", "0.2.1"),
    ("c/headers_c_abi010.wasm", "c_abi010", "0.1.0"),
    ("wat/headers_wat.wasm", "wat", "0.2.1"),
]


def wat_module(name: str) -> Path:
    """Path of a compiled hand-written WAT fixture."""
    return WAT / f"{name}.wasm"


@pytest.fixture(params=SDK_FIXTURES, ids=[tag for _, tag, _ in SDK_FIXTURES])
def sdk_fixture(request: pytest.FixtureRequest) -> tuple[Path, str, str]:
    """Each SDK-built fixture filter: ``(path, language tag, declared ABI version)``."""
    path, tag, abi_version = request.param
    return FIXTURES / path, tag, abi_version
