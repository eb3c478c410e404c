"""One message model (Request/Response) for the API, scenario files and strategies, and one feed."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

import emulator
from emulator import Host
from emulator.fuzz import strategies as pst
from emulator.http import messages
from emulator.http import types as http_types
from emulator.http.messages import Request, Response, chunked, feed
from emulator.scenario import parse_scenario
from tests.conftest import FIXTURES

RUST = FIXTURES / "rust/headers_rust.wasm"
GET = [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a")]


class Recorder:
    """A stream that records what it is sent, and completes after ``stop_after`` sends."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.sent: list[tuple] = []
        self.stop_after = stop_after

    @property
    def completed(self) -> bool:
        return self.stop_after is not None and len(self.sent) >= self.stop_after

    def __getattr__(self, name: str):
        if not name.startswith("send_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.sent.append((name.removeprefix("send_"), *args, *kwargs.values()))


def test_one_model_behind_every_name():
    assert emulator.Request is http_types.Request is messages.Request
    assert emulator.Response is http_types.Response is messages.Response
    assert http_types.as_body is messages.as_body and http_types.chunked is messages.chunked
    assert Request(GET, body="x", trailers=None, chunks=[1]) == Request(headers=GET, body="x", chunks=[1])
    assert Request(GET) != Response(GET)


def test_chunked_keeps_explicit_empty_frames():
    assert chunked(b"", None) == [] and chunked(b"", 4) == []
    assert chunked(b"", [0]) == [b""]
    assert chunked(b"abcd", [2, 0, 2, 0]) == [b"ab", b"", b"cd", b""]
    assert chunked(b"abcde", [2]) == [b"ab", b"cde"]
    assert chunked(b"abcde", 2) == [b"ab", b"cd", b"e"]


def test_from_frames_and_back():
    frames = [b"ab", b"", b"c", b""]
    msg = Response.from_frames([(b":status", b"200")], frames, [(b"t", b"1")])
    assert isinstance(msg, Response)
    assert msg.body == b"abc" and msg.frames() == frames and msg.chunks == [2, 0, 1, 0]
    assert Request.from_frames(GET, []).chunks is None and Request.from_frames(GET, []).frames() == []


def test_feed_puts_end_of_stream_where_envoy_does():
    s = Recorder()
    feed(s, "request", Request(GET, body="abc", chunks=[2, 1], trailers={"t": "1"}))
    assert s.sent == [("request_headers", GET, False), ("request_body", b"ab", False), ("request_body", b"c", False), ("request_trailers", {"t": "1"})]
    s = Recorder()
    feed(s, "response", Response({":status": "200"}, body="ok"))
    assert s.sent == [("response_headers", {":status": "200"}, False), ("response_body", b"ok", True)]
    s = Recorder()
    feed(s, "response", {":status": "204"})  # just headers
    assert s.sent == [("response_headers", {":status": "204"}, True)]
    s = Recorder()
    feed(s, "request", Request(GET, chunks=[0]))  # the lone empty frame carries end_of_stream
    assert s.sent == [("request_headers", GET, False), ("request_body", b"", True)]


def test_feed_stops_when_the_stream_completes_and_splits_around_headers():
    s = Recorder(stop_after=2)
    feed(s, "request", Request(GET, body="abcdef", chunks=2, trailers={}))
    assert [x[0] for x in s.sent] == ["request_headers", "request_body"]
    whole, split = Recorder(), Recorder()
    msg = Request(GET, body="abc", chunks=1, trailers={"t": "1"})
    feed(whole, "request", msg)
    feed(split, "request", msg, until="headers")
    assert split.sent == whole.sent[:1]
    feed(split, "request", msg, start="body")
    assert split.sent == whole.sent


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("upstream", Request(GET)), {}), (("request", Request(GET)), {"until": "body"}), (("request", Request(GET)), {"start": "body", "until": "headers"})],
)
def test_feed_refuses_nonsense(args, kwargs):
    with pytest.raises(ValueError):
        feed(Recorder(), *args, **kwargs)


def test_feed_drives_a_real_stream_like_http_exchange():
    request = Request({":method": "POST", ":path": "/", ":authority": "a", "x-body-mode": "append"}, body="hello world", chunks=[5, 0, 6])
    response = Response({":status": "200"}, body="ok", trailers={"x-t": "1"})
    plugin = Host(trace=False).load(RUST)
    stream = plugin.http_stream()
    feed(stream, "request", request)
    feed(stream, "response", response)
    stream.complete()
    reference = Host(trace=False).load(RUST).http_exchange(request, response)
    assert stream.upstream_request.to_json() == reference.upstream_request.to_json()
    assert stream.downstream_response.to_json() == reference.downstream_response.to_json()
    assert [(c.name, c.args[1:], c.action) for c in stream.callbacks] == [(c.name, c.args[1:], c.action) for c in reference.callbacks]


def test_a_scenario_stream_parses_into_request_and_response():
    spec = parse_scenario(
        {
            "streams": [
                {
                    "request": {"headers": [[":method", "GET"], [":path", "/"], [":authority", "a"], ["X-Up", "1"]], "chunks": ["ab", ""]},
                    "response": {"headers": {":status": "200"}, "body": "ok", "trailers": []},
                }
            ]
        }
    ).streams[0]
    assert isinstance(spec.request, Request) and isinstance(spec.response, Response)
    assert spec.request.headers == [*GET, (b"x-up", b"1")] and spec.request.frames() == [b"ab", b""] and spec.request.trailers is None
    assert spec.response.body == b"ok" and spec.response.frames() == [b"ok"] and spec.response.trailers == []


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(pst.exchanges(adversarial=True))
def test_generated_messages_are_requests_and_responses_that_round_trip(exchange):
    assert isinstance(exchange.request, Request) and exchange.request_message is exchange.request
    assert exchange.response is None or isinstance(exchange.response, Response)
    spec = parse_scenario({"streams": [json.loads(json.dumps(exchange.to_scenario()))]}).streams[0]
    assert spec.request == Request(exchange.request.header_pairs(), exchange.request.body, exchange.request.trailer_pairs(), exchange.request.chunks)
    assert spec.request.frames() == exchange.request.frames()
