"""The pytest plugin as a user meets it, including what its failures look like (pytester)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FIXTURES

RUST = str(FIXTURES / "rust/headers_rust.wasm")
PITFALLS = str(FIXTURES / "wat/pitfalls.wasm")


def test_fixtures_and_a_passing_test(pytester):
    pytester.makepyfile(
        f"""
        from emulator import Request
        from emulator.testing import assert_headers

        def test_rewrite(load_filter, proxy_wasm_host, proxy_wasm_engine):
            plugin = load_filter({RUST!r}, plugin_config="cfg")
            stream = plugin.http_exchange(Request({{":method": "GET", ":path": "/", ":authority": "a"}}))
            assert_headers(stream.upstream_request, {{"x-fixture": "rust"}})
            assert plugin.host is proxy_wasm_host and proxy_wasm_engine == "wasmtime"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_header_failure_shows_a_diff_and_the_host_call_trace(pytester):
    pytester.makepyfile(
        f"""
        from emulator import Request
        from emulator.testing import assert_headers

        def test_rewrite(load_filter):
            plugin = load_filter({RUST!r})
            stream = plugin.http_exchange(Request({{":method": "GET", ":path": "/", ":authority": "a"}}))
            assert_headers(stream.upstream_request, {{"x-fixture": "go", "x-missing": "1"}})
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*headers differ (- expected, + actual)*",
            "*- x-fixture: go*",
            "*+ x-fixture: rust*",
            "*- x-missing: 1   (missing)*",
            "*proxy-wasm host calls (most recent last)*",
            "*proxy_add_header_map_value(map_type='HTTP_REQUEST_HEADERS', key='x-fixture', value='rust') = Ok*",
            "*proxy-wasm logs*",
        ]
    )


def test_header_map_equality_gets_a_readable_diff(pytester):
    pytester.makepyfile(
        f"""
        from emulator import Request

        def test_eq(load_filter):
            plugin = load_filter({RUST!r})
            stream = plugin.http_exchange(Request({{":method": "GET", ":path": "/", ":authority": "a"}}))
            assert stream.request_headers == {{":method": "GET"}}
        """
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*headers differ*", "*+ x-fixture: rust   (unexpected)*"])


def test_a_trap_shows_the_callback_and_the_guest_backtrace(pytester):
    pytester.makepyfile(
        f"""
        from emulator import Request

        def test_trap(load_filter):
            plugin = load_filter({PITFALLS!r})
            stream = plugin.http_exchange(Request({{":method": "GET", ":path": "/", ":authority": "a", "x-trap": "1"}}))
            raise stream.error
        """
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*CallbackError: proxy_on_request_headers (context 2) failed: *unreachable*", "*guest backtrace:*", "*trap_here*"])


def test_strict_expectation_failure(pytester):
    pytester.makepyfile(
        f"""
        def test_strict(load_filter, proxy_wasm_host):
            plugin = load_filter({RUST!r})
            with proxy_wasm_host.expect_calls() as expect:
                expect.call("proxy_http_call", upstream="auth")
        """
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*ExpectationError: expected host calls that never happened:*", "*proxy_http_call(upstream='auth')*"])


def test_engine_option_and_all_engines_marker(pytester):
    pytester.makepyfile(
        """
        import pytest

        def test_each(proxy_wasm_engine):
            assert proxy_wasm_engine in ("wasmtime", "wasmtime-stock", "wasmer")

        @pytest.mark.proxy_wasm_engines()
        def test_all(proxy_wasm_engine):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--proxy-wasm-engine=wasmtime,wasmtime-stock", "-v")
    result.stdout.fnmatch_lines(["*test_each?wasmtime? PASSED*", "*test_each?wasmtime-stock? PASSED*", "*test_all?wasmtime? PASSED*"])
    bad = pytester.runpytest_subprocess("--proxy-wasm-engine=v8")
    bad.stderr.fnmatch_lines(["*unknown engine(s)*v8*"])


def test_assertion_helpers_hide_themselves_from_tracebacks(pytester):
    pytester.makepyfile(
        """
        from emulator.testing import assert_headers

        def test_it():
            assert_headers([(b"x-a", b"1")], {"x-a": "2"})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # in-process, its faulthandler would drop wasmtime's trap handler
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "headers differ" in text and 'assert_headers([(b"x-a", b"1")], {"x-a": "2"})' in text
    assert "emulator/testing.py" not in text  # the failure points at the test's line, not into the helper


def test_relative_filter_paths_resolve_against_the_test_file_then_rootdir(pytester):
    sub = pytester.mkdir("suite")
    (sub / "filters").mkdir()
    (sub / "filters" / "here.wasm").write_bytes(Path(RUST).read_bytes())
    (pytester.path / "at_root.wasm").write_bytes(Path(PITFALLS).read_bytes())
    (sub / "test_paths.py").write_text(
        "import os, pytest\n"
        "from emulator import Request\n"
        "from emulator.errors import ModuleLoadError\n"
        "from emulator.testing import assert_headers\n"
        "def test_paths(load_filter):\n"
        "    os.chdir(os.path.dirname(os.__file__))  # cwd is irrelevant when the file is found elsewhere\n"
        "    stream = load_filter('filters/here.wasm').http_exchange(Request({':method': 'GET', ':path': '/', ':authority': 'a'}))\n"
        "    assert_headers(stream.upstream_request, {'x-fixture': 'rust'})\n"
        "    assert load_filter('at_root.wasm').vm.program.source.endswith('at_root.wasm')\n"
        "    with pytest.raises(ModuleLoadError) as err:\n"
        "        load_filter('filters/nowhere.wasm')\n"
        "    assert 'looked relative to the test file, rootdir and cwd' in str(err.value)\n"
        "    assert str(os.path.join(os.path.dirname(__file__), 'filters', 'nowhere.wasm')) in str(err.value)\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--rootdir", str(pytester.path))
    result.assert_outcomes(passed=1)
