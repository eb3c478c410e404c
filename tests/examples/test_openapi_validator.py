"""Example: testing the OpenAPI request validator (fixtures/openapi_validator, AssemblyScript on
@solo-io/proxy-runtime) the way its author would: the API is an OpenAPI document kept right here,
the filter runs in flag mode and in deny mode, and every violation shows up in a metric."""

import json

import pytest

from emulator import PluginStartError, Request, Response
from emulator.testing import assert_headers, assert_local_response, assert_logged, assert_metric, assert_no_local_response

FILTER = "fixtures/openapi_validator/openapi_validator.wasm"

OPENAPI = {
    "paths": {
        "/items": {
            "get": {"parameters": [{"name": "limit", "in": "query", "required": True}]},
            "post": {
                "parameters": [{"name": "X-Request-Id", "in": "header", "required": True}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name", "price"],
                                "properties": {
                                    "name": {"type": "string", "minLength": 1, "maxLength": 40},
                                    "price": {"type": "number"},
                                    "stock": {"type": "integer"},
                                    "status": {"type": "string", "enum": ["draft", "live"]},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                },
                            }
                        }
                    },
                },
            },
        },
        "/items/{id}": {"get": {}, "delete": {}},
        "/items/featured": {"get": {}},
    }
}

ITEM = {"name": "lamp", "price": 19.5, "stock": 3, "status": "live", "tags": ["home"]}
OK = Response({":status": "200"}, body="ok")


def get(path):
    return Request({":method": "GET", ":path": path, ":authority": "shop"})


def post_item(body=ITEM, chunks=None, trailers=None, **headers):
    text = body if isinstance(body, str) else json.dumps(body)
    headers = {":method": "POST", ":path": "/items", ":authority": "shop", "x-request-id": "r-1", **headers}
    return Request(headers, body=text, chunks=chunks, trailers=trailers)


def violations(kind, route):
    """The violation counter's name, with its tags in Istio's convention."""
    return f"openapi_violations_total_kind=.={kind};.;route=.={route};.;"


@pytest.fixture
def flag(load_filter):
    """The validator in flag mode: violations are counted, logged and passed on."""
    return load_filter(FILTER, root_id="openapi", plugin_config=json.dumps({"mode": "flag", "openapi": OPENAPI}))


@pytest.fixture
def deny(load_filter):
    """The validator in deny mode: the first violation is answered with a 400."""
    return load_filter(FILTER, root_id="openapi", plugin_config=json.dumps({"mode": "deny", "openapi": OPENAPI}))


def test_a_valid_get_passes_untouched(flag, proxy_wasm_host):
    stream = flag.http_exchange(get("/items?limit=10&page=2"), OK)
    assert_no_local_response(stream)
    assert stream.upstream_request.headers == [(b":method", b"GET"), (b":path", b"/items?limit=10&page=2"), (b":authority", b"shop")]
    assert proxy_wasm_host.metrics.all() == {"openapi_requests_total": {"type": "counter", "value": 1}}


def test_a_valid_post_passes_untouched(flag, proxy_wasm_host):
    stream = flag.http_exchange(post_item(), OK)
    assert_no_local_response(stream)
    assert stream.upstream_request.header("x-openapi-violation") is None
    assert stream.upstream_request.body == json.dumps(ITEM).encode()
    assert proxy_wasm_host.metrics.all() == {"openapi_requests_total": {"type": "counter", "value": 1}}


@pytest.mark.parametrize(
    ("request_", "kind", "route"),
    [
        pytest.param(get("/orders"), "unknown_path", "none", id="unknown_path"),
        pytest.param(Request({":method": "PUT", ":path": "/items/7", ":authority": "shop"}), "method_not_allowed", "/items/{id}", id="method_not_allowed"),
        pytest.param(
            Request({":method": "POST", ":path": "/items", ":authority": "shop"}, body=json.dumps(ITEM)), "missing_header", "/items", id="missing_header"
        ),
        pytest.param(get("/items?page=2"), "missing_query", "/items", id="missing_query"),
        pytest.param(Request({":method": "POST", ":path": "/items", ":authority": "shop", "x-request-id": "r-1"}), "missing_body", "/items", id="missing_body"),
        pytest.param(post_item('{"name": "lamp", "price": 19.5'), "invalid_json", "/items", id="invalid_json"),
        pytest.param(post_item({"name": "lamp", "price": "cheap"}), "schema", "/items", id="schema"),
    ],
)
def test_every_violation_kind_is_counted_with_its_route(flag, proxy_wasm_host, request_, kind, route):
    flag.http_exchange(request_, OK)
    assert_metric(proxy_wasm_host, violations(kind, route), 1)
    assert_metric(proxy_wasm_host, "openapi_requests_total", 1)
    counted = [name for name in proxy_wasm_host.metrics.all() if name.startswith("openapi_violations_total")]
    assert counted == [violations(kind, route)]


def test_counters_add_up_per_kind_and_route(flag, proxy_wasm_host):
    for path in ("/orders", "/orders/1", "/items?page=1", "/items?page=2", "/items?limit=5"):
        flag.http_exchange(get(path), OK)
    assert_metric(proxy_wasm_host, violations("unknown_path", "none"), 2)
    assert_metric(proxy_wasm_host, violations("missing_query", "/items"), 2)
    assert_metric(proxy_wasm_host, "openapi_requests_total", 5)


def test_deny_mode_answers_400_with_a_json_error(deny):
    stream = deny.http_exchange(get("/items"), OK)
    assert_local_response(stream, 400, headers={"content-type": "application/json"})
    assert json.loads(stream.local_response.body) == {"error": "missing_query", "detail": "required query parameter limit is missing"}
    assert stream.upstream_request.headers is None  # nothing reached the upstream


def test_deny_mode_rejects_an_invalid_body(deny):
    stream = deny.http_exchange(post_item({"name": "lamp", "price": 19.5, "status": "sold"}), OK)
    assert_local_response(stream, 400, body='{"error": "schema", "detail": "$.status: expected one of [draft, live]"}')
    assert stream.local_response.callback == "proxy_on_request_body"
    assert stream.upstream_request.reset  # the headers had gone on: Envoy resets the upstream request
    assert stream.upstream_request.body == b""


def test_deny_mode_lets_valid_requests_through(deny):
    stream = deny.http_exchange(post_item(), OK)
    assert_no_local_response(stream)
    assert_headers(stream.downstream_response, {":status": "200"})
    assert stream.downstream_response.body == b"ok"


def test_flag_mode_passes_the_request_on_with_the_violation(flag):
    stream = flag.http_exchange(get("/items"), OK)
    assert_no_local_response(stream)
    assert_headers(stream.upstream_request, {"x-openapi-violation": "missing_query"})
    assert_logged(flag, "openapi violation missing_query required query parameter limit is missing", level="warn")


def test_flag_mode_logs_where_the_body_is_wrong(flag):
    stream = flag.http_exchange(post_item({"name": "lamp", "price": 1, "tags": ["a", 2]}), OK)
    assert_no_local_response(stream)
    assert stream.upstream_request.body == b'{"name": "lamp", "price": 1, "tags": ["a", 2]}'
    assert_logged(flag, "openapi violation schema $.tags[1]: expected string, got number", level="warn")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"price": 1}, "$.name: required property missing"),
        ({"name": "", "price": 1}, "$.name: shorter than minLength 1"),
        ({"name": "x" * 41, "price": 1}, "$.name: longer than maxLength 40"),
        ({"name": "lamp", "price": 1, "stock": 2.5}, "$.stock: expected integer, got number"),
        ([ITEM], "$: expected object, got array"),
    ],
)
def test_the_schema_detail_says_where(deny, body, detail):
    stream = deny.http_exchange(post_item(body), OK)
    assert json.loads(stream.local_response.body) == {"error": "schema", "detail": detail}


def test_response_headers_carry_route_and_violation_count(flag):
    # Two violations found in on_request_headers, reported in on_response_headers.
    stream = flag.http_exchange(Request({":method": "POST", ":path": "/items", ":authority": "shop"}), OK)
    assert_headers(stream.upstream_request, {"x-openapi-violation": "missing_header,missing_body"})
    assert_headers(stream.downstream_response, {"x-openapi-route": "/items", "x-openapi-violations": "2"})
    # One found in on_request_body is remembered too.
    stream = flag.http_exchange(post_item("not json"), OK)
    assert_headers(stream.downstream_response, {"x-openapi-route": "/items", "x-openapi-violations": "1"})
    stream = flag.http_exchange(get("/items/42"), OK)
    assert_headers(stream.downstream_response, {"x-openapi-route": "/items/{id}", "x-openapi-violations": "0"})
    stream = flag.http_exchange(get("/nowhere"), OK)
    assert_headers(stream.downstream_response, {"x-openapi-route": "none", "x-openapi-violations": "1"})


def test_literal_segments_win_over_templates(flag):
    stream = flag.http_exchange(get("/items/featured"), OK)
    assert stream.downstream_response.header("x-openapi-route") == b"/items/featured"


def test_the_400_carries_the_response_headers_too(deny):
    stream = deny.http_exchange(get("/orders"), OK)
    assert_headers(stream.downstream_response, {":status": "400", "x-openapi-route": "none", "x-openapi-violations": "1"})


def test_a_body_split_over_several_chunks_is_still_validated(deny):
    body = json.dumps({"name": "lamp", "price": "19.50"})  # 34 bytes: 5 data frames of up to 7
    stream = deny.http_exchange(post_item(body, chunks=7), OK)
    actions = [c.action for c in stream.callbacks if c.name == "proxy_on_request_body"]
    assert actions[:4] == ["StopIterationAndBuffer"] * 4  # Pause: buffer until the end of the stream
    assert len(actions) == 5
    assert json.loads(stream.local_response.body) == {"error": "schema", "detail": "$.price: expected number, got string"}


def test_a_valid_chunked_body_reaches_upstream_whole(flag):
    stream = flag.http_exchange(post_item(chunks=5), OK)
    assert [c.action for c in stream.callbacks if c.name == "proxy_on_request_body"][-1] == "Continue"
    assert json.loads(stream.upstream_request.body) == ITEM
    assert_headers(stream.downstream_response, {"x-openapi-violations": "0"})


def test_a_body_ended_by_trailers_is_validated(deny):
    stream = deny.http_exchange(post_item('{"name": "lamp"}', chunks=4, trailers={"x-checksum": "abc"}), OK)
    assert stream.local_response.callback == "proxy_on_request_trailers"
    assert json.loads(stream.local_response.body)["detail"] == "$.price: required property missing"


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ("{not json", "configuration is not valid JSON: unexpected character 'n' at position 1"),
        ('{"mode": "flag"}', 'configuration has no "openapi.paths" object'),
        ('{"mode": "block", "openapi": {"paths": {}}}', 'mode: must be "flag" or "deny"'),
    ],
    ids=["invalid-json", "no-paths", "bad-mode"],
)
def test_a_bad_configuration_fails_plugin_start(load_filter, proxy_wasm_host, config, reason):
    with pytest.raises(PluginStartError) as info:
        load_filter(FILTER, root_id="openapi", plugin_config=config)
    assert info.value.phase == "proxy_on_configure"
    assert_logged(proxy_wasm_host, f"openapi: invalid configuration: {reason}", level="error")
