"""The host-call trace and strict expectations, on a real Rust filter."""

from __future__ import annotations

import json

import pytest

from abi import Status
from emulator import Host, Request
from emulator.expectations import ANY, ExpectationError
from tests.conftest import FIXTURES

RUST = FIXTURES / "rust/headers_rust.wasm"
REQ = {":method": "GET", ":path": "/x", ":authority": "a", "x-read-property": "request.path"}


def test_trace_decodes_arguments_results_and_context():
    host = Host()
    plugin = host.load(RUST, plugin_config="cfg")
    plugin.http_exchange(Request(REQ))
    configure = next(e for e in host.trace if e.callback == "proxy_on_configure" and e.function == "proxy_get_buffer_bytes")
    assert configure.args == {"buffer_type": "PLUGIN_CONFIGURATION", "start": 0, "max_size": 0xFFFFFFFF}
    assert configure.results == {"data": "cfg"} and configure.status_name == "Ok"
    prop = host.trace.calls("proxy_get_property")[0]
    assert prop.args == {"path": ["request", "path"]} and prop.results == {"data": "/x"}
    assert prop.callback == "proxy_on_request_headers" and prop.context_id == 2
    missing = next(e for e in host.trace.calls("proxy_get_header_map_value") if e.args["key"] == "x-deny")
    assert missing.status_name == "NotFound" and missing.results == {}
    assert "proxy_get_property(path=['request', 'path']) = Ok -> data='/x'" in host.trace.tail(50)


def test_trace_json_export_and_golden_comparison(tmp_path):
    def run():
        host = Host()
        host.load(RUST).http_exchange(Request(REQ))
        return host.trace

    golden = tmp_path / "golden.json"
    run().dump(str(golden))
    loaded = json.loads(golden.read_text())
    assert loaded[0]["function"] == "proxy_get_buffer_bytes"
    assert run().diff(loaded) == []
    other = Host()
    other.load(RUST).http_exchange(Request({**REQ, ":path": "/changed"}))
    diff = other.trace.diff(loaded)
    assert diff and "/changed" in "\n".join(diff)


def test_trace_can_be_turned_off():
    host = Host(trace=False)
    host.load(RUST).http_exchange(Request(REQ))
    assert host.trace is None and host.observer is None


def test_strict_expectations_pass_in_order():
    host = Host()
    plugin = host.load(RUST)
    s = plugin.http_stream()
    with host.expect_calls() as expect:
        expect.call("proxy_get_header_map_value", map_type="HTTP_REQUEST_HEADERS", key=":path")
        expect.call("proxy_get_header_map_value", key="x-trap")
        expect.call("proxy_add_header_map_value", key="x-fixture", value="rust")
        expect.call("proxy_get_header_map_value", key=ANY).repeatedly(2)
        expect.call("proxy_get_property", path=lambda p: p[0] == "request")
        expect.call("proxy_add_header_map_value", key="x-property-value")
        expect.call("proxy_get_header_map_value", key="x-body-mode")
        expect.call("proxy_get_header_map_value", key="x-pause")
        s.send_request_headers(REQ, end_of_stream=True)


def test_unexpected_and_missing_calls_fail():
    host = Host()
    plugin = host.load(RUST)
    with pytest.raises(ExpectationError, match="never happened") as info, host.expect_calls() as expect:
        expect.call("proxy_http_call")
    assert "proxy_http_call()" in str(info.value)
    s = plugin.http_stream()
    with pytest.raises(ExpectationError, match=r"expected proxy_send_local_response\(\), got proxy_get_header_map_value"), host.expect_calls() as expect:
        expect.call("proxy_send_local_response")
        s.send_request_headers(REQ, end_of_stream=True)


def test_injected_status_and_data():
    host = Host()
    plugin = host.load(RUST)
    s = plugin.http_stream()
    with host.expect_calls() as expect:
        expect.allow("proxy_add_header_map_value", "proxy_get_property", "proxy_replace_header_map_value")
        expect.call("proxy_get_header_map_value", key=":path").returns(data="/injected")
        expect.call("proxy_get_header_map_value", key="x-trap")
        expect.call("proxy_get_header_map_value", key="x-deny").returns(Status.Ok, data="yes")  # pretend the header exists
        expect.call("proxy_send_local_response", status_code=403)
        s.send_request_headers({":method": "GET", ":path": "/real", ":authority": "a"}, end_of_stream=True)
    assert s.local_response.status == 403
    assert "request_headers: path=/injected" in [r.message for r in host.logs]
    injected = {e.args["key"]: e.injected for e in host.trace.calls("proxy_get_header_map_value")}
    assert injected == {":path": True, "x-trap": False, "x-deny": True}
