"""Engine selection for the conformance suites.

``engine_name`` runs each test on every engine given with ``--proxy-wasm-engine`` or, by default,
on wasmtime's fast path and on the stock wasmtime-py API it falls back to.
"""

from __future__ import annotations

import pytest

from emulator.engines import available_engines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        raw = metafunc.config.getoption("--proxy-wasm-engine") or "wasmtime,wasmtime-stock"
        names = [n.strip() for n in raw.split(",") if n.strip()]
        metafunc.parametrize("engine_name", names, ids=names)


@pytest.fixture
def engine_name(request: pytest.FixtureRequest) -> str:
    reason = available_engines().get(request.param)
    if reason:
        pytest.skip(reason)
    return request.param
