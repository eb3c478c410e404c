"""Example: testing a Go SDK filter (fixtures/go_features/features_go.wasm, role "auth") that pauses
a request on an HTTP callout and resumes it from the callout's response."""

import pytest

from emulator import Request
from emulator.testing import assert_headers, assert_local_response, assert_pending_callouts

FILTER = "fixtures/go_features/features_go.wasm"
REQUEST = Request({":method": "GET", ":path": "/secret", ":authority": "app", "authorization": "token-1"})


@pytest.fixture
def auth(load_filter):
    return load_filter(FILTER, root_id="auth")


def test_waits_for_the_auth_service_then_lets_the_request_through(auth, proxy_wasm_host):
    stream = auth.http_stream()
    stream.send_request_headers(REQUEST.headers, end_of_stream=True)
    (call,) = assert_pending_callouts(proxy_wasm_host, 1, cluster="auth")
    assert call.header("x-token") == b"token-1"
    assert stream.upstream_request.headers is None  # paused until the callout answers
    call.respond(200)
    assert_headers(stream.upstream_request, {"x-auth": "ok"})


def test_denies_when_the_auth_service_says_no(auth, proxy_wasm_host):
    proxy_wasm_host.http_calls.add_responder("auth", status=401)
    stream = auth.http_exchange(REQUEST)
    assert_local_response(stream, 403, body="forbidden")


def test_fails_closed_when_the_auth_service_times_out(auth, proxy_wasm_host):
    stream = auth.http_stream()
    stream.send_request_headers(REQUEST.headers, end_of_stream=True)
    proxy_wasm_host.advance(1000)  # the callout's timeout: Envoy answers it with a 504
    assert_local_response(stream, 403)
