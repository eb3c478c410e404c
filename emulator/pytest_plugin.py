"""The pytest plugin (registered through the ``pytest11`` entry point as ``proxy_wasm``).

Fixtures:

* ``proxy_wasm_host``: a fresh, isolated :class:`~emulator.Host` per test.
* ``load_filter``: a factory ``load_filter(path, plugin_config=..., root_id=..., properties=...)``
  that loads and starts a filter in that host.
* ``proxy_wasm_engine``: the engine name the test runs on.

Options: ``--proxy-wasm-engine NAME[,NAME...]`` (default ``wasmtime``; several names run each test
that uses the fixtures once per engine) and ``--proxy-wasm-cache-dir DIR`` (``none`` disables the
compiled-module cache). Nothing here is shared between tests, so ``pytest -n`` is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .engines import ENGINE_NAMES, available_engines
from .host import Host
from .module_cache import ModuleCache
from .plugin import Plugin


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the plugin's command-line options and ini settings."""
    group = parser.getgroup("proxy-wasm", "proxy-wasm-emulator")
    group.addoption(
        "--proxy-wasm-engine",
        default=None,
        help=f"wasm engine(s) for proxy-wasm tests, comma-separated: {', '.join(ENGINE_NAMES)} (default: wasmtime)",
    )
    group.addoption("--proxy-wasm-cache-dir", default=None, help="compiled-module cache directory ('none' disables the cache)")
    parser.addini("proxy_wasm_engine", "default engine(s) for proxy-wasm tests", default="wasmtime")


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``proxy_wasm_engines`` marker."""
    config.addinivalue_line("markers", "proxy_wasm_engines(*names): run this test on the given engines (default: the selected ones)")


def selected_engines(config: pytest.Config) -> list[str]:
    """Engines chosen with ``--proxy-wasm-engine`` (or the ini default)."""
    raw = config.getoption("--proxy-wasm-engine") or config.getini("proxy_wasm_engine")
    names = [n.strip() for n in str(raw).split(",") if n.strip()]
    bad = [n for n in names if n not in ENGINE_NAMES]
    if bad:
        raise pytest.UsageError(f"--proxy-wasm-engine: unknown engine(s) {bad}; choose from {', '.join(ENGINE_NAMES)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``proxy_wasm_engine`` over the selected (or marked) engines."""
    if "proxy_wasm_engine" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("proxy_wasm_engines")
    names = list(marker.args) if marker else selected_engines(metafunc.config)
    metafunc.parametrize("proxy_wasm_engine", names, ids=names, scope="function")


@pytest.fixture
def proxy_wasm_engine(request: pytest.FixtureRequest) -> str:
    """The engine this test runs on; skips when it is not usable on this Python."""
    name = str(request.param)
    reason = available_engines().get(name)
    if reason:
        pytest.skip(reason)
    return name


@pytest.fixture
def proxy_wasm_cache(request: pytest.FixtureRequest) -> ModuleCache | None:
    """The compiled-module cache of this run (``None`` when disabled)."""
    opt = request.config.getoption("--proxy-wasm-cache-dir")
    if opt is None:
        return ModuleCache()
    if opt.lower() == "none":
        return None
    return ModuleCache(opt)


@pytest.fixture
def proxy_wasm_host(proxy_wasm_engine: str, proxy_wasm_cache: ModuleCache | None) -> Iterator[Host]:
    """A fresh Host for this test on the selected engine."""
    yield Host(engine=proxy_wasm_engine, cache=proxy_wasm_cache if proxy_wasm_cache is not None else False)


@pytest.fixture
def load_filter(proxy_wasm_host: Host) -> Callable[..., Plugin]:
    """Factory: ``load_filter(path, plugin_config=b"", root_id="", vm_config=b"", properties=None, ...)``."""

    def load(path: Any, **kwargs: Any) -> Plugin:
        return proxy_wasm_host.load(path, **kwargs)

    return load
