"""Example: a hypothesis property over a filter, one plugin start per module, a reset per example."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator import Host, Request, Response

FILTER = "fixtures/rust/headers_rust.wasm"
VISIBLE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@pytest.fixture(scope="module")  # not function-scoped: hypothesis reuses it for every example
def started():
    host = Host()
    plugin = host.load(FILTER)
    return host, plugin, host.snapshot()


@settings(max_examples=50)
@given(agent=VISIBLE)
def test_any_user_agent_passes_through_unchanged(started, agent):
    host, plugin, snapshot = started
    host.restore(snapshot)  # each example starts from the plugin just configured (well under 1 ms)
    stream = plugin.http_exchange(Request({":method": "GET", ":path": "/", ":authority": "a", "user-agent": agent}), Response({":status": "200"}))
    assert stream.local_response is None
    assert stream.upstream_request.header("user-agent") == agent.encode()
    assert stream.upstream_request.header("x-fixture") == b"rust"
