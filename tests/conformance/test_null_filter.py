"""fixtures/wat/null_filter.wasm, the peer benchmark's filter without host calls, runs a whole stream."""

from emulator import Host
from tests.conftest import wat_module


def test_a_request_through_the_null_filter_runs_every_callback_and_changes_nothing(proxy_wasm_engine):
    plugin = Host(engine=proxy_wasm_engine).load(wat_module("null_filter"))
    request = [(":method", "GET"), (":path", "/items"), (":authority", "shop")]
    stream = plugin.http_exchange(request, [(":status", "200")])
    assert [c.name for c in stream.callbacks] == [
        "proxy_on_context_create",
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_log",
        "proxy_on_done",
        "proxy_on_delete",
    ]
    assert stream.upstream_request.headers == [(k.encode(), v.encode()) for k, v in request]
    assert stream.downstream_response.headers == [(b":status", b"200")]
    assert plugin.host.trace == []  # no host call
