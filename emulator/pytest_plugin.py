"""The pytest plugin (registered through the ``pytest11`` entry point as ``proxy_wasm``).

Fixtures:

* ``proxy_wasm_host``: a fresh, isolated :class:`~emulator.Host` per test.
* ``load_filter``: a factory ``load_filter(path, plugin_config=..., root_id=..., properties=...)``
  that loads and starts a filter in that host. A relative path resolves against the test file's
  directory, then rootdir, then the working directory.
* ``proxy_wasm_engine``: the engine name the test runs on.

Options: ``--proxy-wasm-engine NAME[,NAME...]`` (default ``wasmtime``; several names run each test
that uses the fixtures once per engine) and ``--proxy-wasm-cache-dir DIR`` (``none`` disables the
compiled-module cache). Nothing here is shared between tests, so ``pytest -n`` is safe.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .engines import ENGINE_NAMES, available_engines
from .errors import ModuleLoadError
from .host import Host
from .plugin import Plugin
from .vm.cache import ModuleCache


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
    config.addinivalue_line(
        "markers",
        "proxy_wasm_engines(*names): run this test on the given engines; with no names, on every engine usable on this Python",
    )
    selected_engines(config)  # a bad --proxy-wasm-engine is a usage error before collection


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
    if marker is None:
        names = selected_engines(metafunc.config)
    elif marker.args:
        names = list(marker.args)
    else:
        names = [n for n, reason in available_engines().items() if reason is None and n != "wasmtime-stock"]
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
def proxy_wasm_host(request: pytest.FixtureRequest, proxy_wasm_engine: str, proxy_wasm_cache: ModuleCache | None) -> Iterator[Host]:
    """A fresh Host for this test on the selected engine (its trace is shown if the test fails)."""
    host = Host(engine=proxy_wasm_engine, cache=proxy_wasm_cache if proxy_wasm_cache is not None else False)
    request.node.stash[_HOSTS] = [*request.node.stash.get(_HOSTS, []), host]
    yield host


_HOSTS = pytest.StashKey[list]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, add the tail of each fixture host's trace and logs to the report."""
    report = yield
    if report.when == "call" and report.failed:
        for i, host in enumerate(item.stash.get(_HOSTS, [])):
            suffix = f" #{i + 1}" if i else ""
            if host.trace is not None and len(host.trace):
                report.sections.append((f"proxy-wasm host calls{suffix} (most recent last)", host.trace.tail(20)))
            if host.logs:
                lines = host.console_view()[-20:]  # stdout/stderr pieces (a Go panic) joined into lines
                report.sections.append((f"proxy-wasm logs{suffix}", "\n".join(f"[{r.level_name}] {r.message}" for r in lines)))
    return report


def pytest_assertrepr_compare(op: str, left: Any, right: Any) -> list[str] | None:
    """Readable diffs when a header map or an HTTP message is compared with ``==``."""
    from .http.headers import HeaderMap
    from .http.types import HttpMessage
    from .testing import format_headers, headers_diff

    if op != "==" or not any(isinstance(x, HeaderMap | HttpMessage) for x in (left, right)):
        return None
    actual, expected = (left, right) if isinstance(left, HeaderMap | HttpMessage) else (right, left)
    if isinstance(expected, HeaderMap | HttpMessage):
        expected = expected.pairs() if isinstance(expected, HeaderMap) else expected.headers
    try:
        diff = headers_diff(actual, expected, exact=True)
    except (TypeError, ValueError):
        return None
    return [
        "headers differ (- expected, + actual):",
        *diff,
        "actual headers:",
        *format_headers(actual.pairs() if isinstance(actual, HeaderMap) else actual.headers or []).splitlines(),
    ]


@pytest.fixture
def proxy_wasm_benchmark(proxy_wasm_engine: str, proxy_wasm_cache: ModuleCache | None, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Benchmark one HTTP exchange through a filter with pytest-benchmark (the ``[pytest]`` extra).

    ``proxy_wasm_benchmark(module, request, response=None, **load_kwargs)`` measures the exchange
    once with costs metered and puts the deterministic figures (guest instructions, host calls,
    bytes copied, allocator use) into ``benchmark.extra_info["cost"]``, then times it. All of
    pytest-benchmark's options apply (``--benchmark-json``, ``--benchmark-compare``...). Without
    pytest-benchmark the test errors, naming the extra to install.
    """
    from .extras import MissingExtraError, require
    from .http.types import Request, Response

    try:
        require("pytest_benchmark", "the proxy_wasm_benchmark fixture")
    except MissingExtraError as exc:
        pytest.fail(str(exc), pytrace=False)
    benchmark = request.getfixturevalue("benchmark")

    cache = proxy_wasm_cache if proxy_wasm_cache is not None else False
    fixture_request = request

    def run(module: Any, request: Request | Any, response: Response | Any = None, **load_kwargs: Any) -> Any:
        module = resolve_filter_path(module, fixture_request)
        metered = Host(engine=proxy_wasm_engine, cache=cache, costs=True, trace=False).load(module, **load_kwargs)
        metered.http_exchange(request, response)  # warm-up: first-request allocations differ
        cost = metered.http_exchange(request, response).cost()
        benchmark.extra_info["cost"] = cost.to_json()
        benchmark.extra_info["engine"] = proxy_wasm_engine
        plugin = Host(engine=proxy_wasm_engine, cache=cache, trace=False).load(module, **load_kwargs)
        return benchmark(plugin.http_exchange, request, response)

    return run


def resolve_filter_path(module: Any, request: pytest.FixtureRequest) -> Any:
    """The file a fixture's relative filter path names: under the test file's directory, rootdir or cwd.

    The first of the three that holds the file wins. Bytes and absolute paths pass through. A
    relative path found in none raises :class:`ModuleLoadError` naming every place it looked.
    """
    if not isinstance(module, str | os.PathLike):
        return module
    path = Path(module)
    if path.is_absolute():
        return module
    bases = [Path(str(request.path)).parent, Path(str(request.config.rootpath)), Path.cwd()]
    tried: list[Path] = []
    for base in bases:
        candidate = (base / path).resolve()
        if candidate in tried:
            continue
        tried.append(candidate)
        if candidate.exists():
            return candidate
    raise ModuleLoadError(
        f"no such file: {module} (looked relative to the test file, rootdir and cwd: {', '.join(map(str, tried))})",
        envoy="Envoy cannot read the module",
    )


@pytest.fixture
def load_filter(proxy_wasm_host: Host, request: pytest.FixtureRequest) -> Callable[..., Plugin]:
    """Factory: ``load_filter(path, plugin_config=b"", root_id="", vm_config=b"", properties=None, ...)``.

    A relative ``path`` resolves against the test file's directory, then rootdir, then the
    working directory (see :func:`resolve_filter_path`).
    """

    def load(path: Any, **kwargs: Any) -> Plugin:
        return proxy_wasm_host.load(resolve_filter_path(path, request), **kwargs)

    return load


@pytest.fixture
def load_envoy_config(proxy_wasm_host: Host, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Factory: ``load_envoy_config("envoy.yaml", listener=None)`` builds that Envoy
    configuration's Wasm filters on this test's host and returns the
    :class:`~emulator.envoy_config.EnvoyChain` (``.http_stream()``, ``.plugins``, ``.warnings``).

    The path resolves like :func:`load_filter`'s; the host is ``proxy_wasm_host``, so a failing
    test's report shows its host calls.
    """
    from .envoy_config import build_filters, read_envoy_config

    def load(path: Any, listener: str | None = None) -> Any:
        return build_filters(proxy_wasm_host, read_envoy_config(resolve_filter_path(path, request), listener))

    return load
