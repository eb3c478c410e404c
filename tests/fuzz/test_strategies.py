"""The strategies of emulator.fuzz.strategies generate what they promise, and compose with the host."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from abi import PAIRS_MAX_BYTES, PAIRS_MAX_COUNT, Status, decode_pairs, encode_pairs, encode_value
from abi.pairs import encoded_size
from emulator import Host
from emulator.fuzz import strategies as pst
from emulator.scenario import parse_scenario
from tests.conftest import FIXTURES, wat_module

FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
REQUIRED = {b":method", b":path", b":authority"}


def _find(strategy, predicate):
    return find(strategy, predicate, settings=settings(max_examples=3000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)))


def _never(strategy, predicate, n=300):
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(value):
        assert not predicate(value)

    check()


# -- header maps -----------------------------------------------------------------------------------


@FAST
@given(pst.request_headers(adversarial=True, vocabulary=["x-tenant", ":status"]))
def test_request_headers_always_carry_valid_required_pseudo_headers(headers):
    first = {}
    for k, v in headers:
        first.setdefault(k, v)
    assert set(first) >= REQUIRED
    assert first[b":method"] in (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS")
    assert all(isinstance(k, bytes) and k for k, _ in headers)


@FAST
@given(pst.response_headers(adversarial=True))
def test_response_headers_have_a_numeric_status(headers):
    assert headers[0][0] == b":status" and headers[0][1].isdigit()


@FAST
@given(pst.header_maps(vocabulary=["x-a", ":b"], adversarial=False))
def test_well_formed_maps_are_lower_case_tokens_with_visible_values(pairs):
    for k, v in pairs:
        assert not k.startswith(b":")
        assert k == k.lower()
        assert v and all(0x20 <= c < 0x7F for c in v)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_adversarial_maps_reach_every_promised_shape():
    maps = pst.header_maps(vocabulary=["x-tenant"], adversarial=True, max_size=8)
    names = [k for k, _ in _find(maps, lambda m: len({k for k, _ in m}) < len(m))]
    assert len(names) != len(set(names))  # a duplicate
    assert any(k != k.lower() for k, _ in _find(maps, lambda m: any(k != k.lower() for k, _ in m)))  # a case variant
    assert _find(maps, lambda m: any(k.startswith(b":") for k, _ in m))  # a stray pseudo-header
    assert _find(maps, lambda m: any(v == b"" for _, v in m))  # an empty value
    assert _find(maps, lambda m: any(any(c >= 0x80 for c in k) for k, _ in m))  # a non-ASCII name
    assert _find(maps, lambda m: any(any(c < 0x20 and c != 0x09 for c in v) for _, v in m))  # a control byte
    assert _find(maps, lambda m: any(len(v) >= 60 * 1024 for _, v in m))  # a very long value
    assert _find(maps, lambda m: any(k == b"x-tenant" for k, _ in m))  # the vocabulary


def test_adversarial_values_never_carry_what_envoy_rejects_unless_asked():
    _never(pst.header_values(adversarial=True), lambda v: any(c in v for c in b"\0\r\n"))
    assert _find(pst.header_values(adversarial=True, impossible=True), lambda v: b"\0" in v)


@pytest.mark.parametrize("which", ["count", "bytes"])
def test_maps_near_the_pair_limits_decode_back_exactly_when_within_them(which):
    seen = set()

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(pst.header_maps_near_limits(which=which))
    def check(pairs):
        size, count = encoded_size(pairs), len(pairs)
        if which == "count":
            assert abs(count - PAIRS_MAX_COUNT) <= 2
        else:
            assert abs(size - PAIRS_MAX_BYTES) <= 2
        within = size <= PAIRS_MAX_BYTES and count <= PAIRS_MAX_COUNT
        assert len(encode_pairs(pairs)) == size
        assert decode_pairs(encode_pairs(pairs)) == (pairs if within else [])
        seen.add(within)

    check()
    assert seen == {True, False}


def test_near_limit_maps_reach_the_filter_through_a_stream():
    pairs = _find(pst.header_maps_near_limits(which="count", over=False), lambda p: len(p) == PAIRS_MAX_COUNT)
    plugin = Host(trace=False).load(FIXTURES / "rust/headers_rust.wasm")
    stream = plugin.http_exchange([(b":method", b"GET"), (b":path", b"/"), (b":authority", b"a"), *pairs[:-3]])
    assert stream.error is None
    assert stream.upstream_request.header("x-n0000") == b"v"


# -- bodies, messages, exchanges -------------------------------------------------------------------


@FAST
@given(st.data())
def test_chunkings_join_back_to_the_body(data):
    body = data.draw(pst.bodies(max_size=64))
    chunks = data.draw(pst.chunkings(body))
    assert b"".join(chunks) == body
    assert len(chunks) <= 6


def test_chunkings_reach_empty_frames_and_many_frames():
    body = b"abcdefgh"
    assert _find(pst.chunkings(body), lambda c: b"" in c and len(c) > 1)
    assert _find(pst.chunkings(body), lambda c: c[-1] == b"")  # an empty frame carrying end_of_stream
    assert _find(pst.chunkings(body), lambda c: len(c) >= 5)
    assert _find(pst.chunkings(b""), lambda c: c == [b""])
    assert all(c for c in _find(pst.chunkings(body, empty_chunks=False), lambda c: len(c) >= 3))


@FAST
@given(pst.exchanges(vocabulary=["x-body-mode"], value_vocabulary=["append"], adversarial=True))
def test_exchanges_round_trip_through_a_scenario_file(exchange):
    entry = json.loads(json.dumps(exchange.to_scenario("s")))
    spec = parse_scenario({"streams": [entry]}).streams[0]
    req = exchange.request_message
    assert spec.request.headers == [(k.lower(), v) for k, v in req.headers]
    assert spec.request.chunks == req.chunks
    assert spec.request.trailers == ([(k.lower(), v) for k, v in req.trailers] if req.trailers is not None else None)
    assert (spec.response is None) == (exchange.response_message is None)
    assert spec.advance_ms == exchange.advance_ms


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(pst.exchanges())
def test_exchanges_drive_a_real_filter(exchange):
    plugin = Host(trace=False).load(FIXTURES / "rust/headers_rust.wasm")
    stream = plugin.http_exchange(exchange.request, exchange.response)
    assert stream.completed
    if stream.local_response is None:
        assert stream.upstream_request.header("x-fixture") == b"rust"
        assert stream.upstream_request.body == exchange.request_message.body


# -- callouts --------------------------------------------------------------------------------------


def test_callout_responses_cover_every_kind_and_odd_statuses():
    kinds = {"respond", "fail", "timeout", "connect_failure", "none"}
    for kind in kinds:
        _find(pst.callout_responses(), lambda r, k=kind: r.kind == k)
    assert _find(pst.callout_responses(), lambda r: r.kind == "respond" and r.status in (0, 100, 999))
    assert _find(pst.callout_responses(pending=False), lambda r: True).kind != "none"
    _never(pst.callout_responses(pending=False), lambda r: r.kind == "none")


@FAST
@given(pst.callout_responses(pending=False))
def test_callout_responses_answer_a_real_call_and_spell_a_scenario_responder(answer):
    host = Host(trace=False)
    plugin = host.load(FIXTURES / "go_features/features_go.wasm", root_id="auth")
    stream = plugin.http_stream()
    stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "a"}, end_of_stream=True)
    (call,) = host.http_calls.pending()
    answer.answer(call)
    assert not call.pending
    assert stream.local_response is not None or stream.upstream_request.header("x-auth") == b"ok"
    spec = parse_scenario({"streams": [], "http_calls": [{"cluster": "auth", "response": answer.to_scenario()}]}).http_calls[0]
    assert spec["cluster"] == "auth"


def test_grpc_responses_answer_a_real_call():
    host = Host(trace=False)
    plugin = host.load(FIXTURES / "rust_features/features_rust.wasm", root_id="grpc_auth")
    for kind in ("message", "close", "timeout"):
        answer = _find(pst.grpc_responses(), lambda r, k=kind: r.kind == k)
        stream = plugin.http_stream()
        stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "a"}, end_of_stream=True)
        call = host.grpc_calls.pending()[-1]
        answer.answer(call)
        assert not call.pending
        parse_scenario({"streams": [], "grpc_calls": [{"cluster": "authz", "response": answer.to_scenario()}]})
    assert _find(pst.grpc_responses(), lambda r: r.kind == "close" and r.status > 16)


# -- properties and configurations -----------------------------------------------------------------


@FAST
@given(pst.property_values())
def test_property_values_serialize_as_envoy_does(value):
    assert isinstance(encode_value(value), bytes)


@FAST
@given(pst.property_trees(scenario_safe=True))
def test_scenario_safe_property_trees_fit_a_scenario_file(tree):
    def spell(v):
        if isinstance(v, bytes):
            return {"base64": __import__("base64").b64encode(v).decode()}
        if isinstance(v, dict):
            return {k: spell(x) for k, x in v.items()}
        if isinstance(v, list):
            return [spell(x) for x in v]
        return v

    parsed = parse_scenario({"streams": [], "properties": [{"path": [k], "value": spell(v)} for k, v in tree.items()]})
    assert set(parsed.properties) == set(tree)


def test_property_values_reach_every_type():
    from datetime import datetime, timedelta

    from abi.properties import UInt64

    seen: set[type] = set()

    def walk(v):
        seen.add(type(v))
        for child in v.values() if isinstance(v, dict) else v if isinstance(v, list) else ():
            walk(child)

    @settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(pst.property_values())
    def collect(value):
        walk(value)

    collect()
    assert {str, bytes, bool, int, float, UInt64, timedelta, datetime, dict, list} <= seen


@FAST
@given(pst.plugin_configs(vocabulary=["deny-all"], base=b'{"mode":"x"}'))
def test_plugin_configs_are_bytes(config):
    assert isinstance(config, bytes)


SCHEMAS = [
    {
        "type": "object",
        "properties": {"mode": {"enum": ["allow", "deny"]}, "limit": {"type": "integer", "minimum": 1}},
        "required": ["mode"],
        "additionalProperties": False,
    },
    {
        "$defs": {
            "rule": {
                "type": "object",
                "properties": {"header": {"type": "string", "pattern": "^x-[a-z]+$"}, "max": {"type": "number", "exclusiveMinimum": 0, "maximum": 10}},
                "required": ["header"],
            }
        },
        "type": "object",
        "properties": {"rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}, "minItems": 1, "maxItems": 3}, "debug": {"type": ["boolean", "null"]}},
        "required": ["rules"],
    },
    {"oneOf": [{"type": "string", "minLength": 2, "maxLength": 4}, {"type": "integer", "multipleOf": 5}]},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"const": 1}}, "required": ["a"]},
            {"properties": {"b": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False}}},
        ]
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_plugin_configs_from_a_json_schema_validate(schema):
    import jsonschema

    @FAST
    @given(pst.plugin_configs_from_schema(schema))
    def check(config):
        jsonschema.validate(json.loads(config), schema)

    check()


def test_an_unsupported_schema_keyword_is_named():
    from emulator.fuzz.schema import UnsupportedSchema

    with pytest.raises(UnsupportedSchema, match="patternProperties"):
        pst.plugin_configs_from_schema({"type": "object", "patternProperties": {"^x": {}}})
    with pytest.raises(UnsupportedSchema, match="only local references"):
        pst.plugin_configs_from_schema({"$ref": "https://example.com/schema.json"})


# -- fault plans -----------------------------------------------------------------------------------


def test_fault_rules_count_calls():
    rule = pst.FaultRule("proxy_log", int(Status.BadArgument), nth=2, count=2)
    assert [rule.covers(i) for i in range(1, 6)] == [False, True, True, False, False]
    forever = pst.FaultRule("proxy_log", int(Status.BadArgument), nth=3, count=None)
    assert [forever.covers(i) for i in range(1, 6)] == [False, False, True, True, True]
    plan = pst.FaultPlan((rule, forever))
    assert pst.FaultPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert "proxy_log -> BadArgument" in str(plan)


@FAST
@given(pst.fault_plans(["proxy_get_header_map_value", "proxy_log", "not_a_host_call"]))
def test_fault_plans_aim_at_the_functions_given_with_their_plausible_statuses(plan):
    for rule in plan.rules:
        assert rule.function in ("proxy_get_header_map_value", "proxy_log")
        assert rule.status in pst.FAULT_STATUSES[rule.function]


def test_a_fault_plan_changes_what_the_filter_sees(proxy_wasm_engine):
    from emulator.fuzz.faults import FaultInjectingObserver

    host = Host(engine=proxy_wasm_engine)
    plan = pst.FaultPlan((pst.FaultRule("proxy_get_header_map_value", int(Status.NotFound), nth=1, count=None, callback="proxy_on_request_headers"),))
    host.observer = observer = FaultInjectingObserver(host, plan)
    plugin = host.load(wat_module("pitfalls"))
    stream = plugin.http_exchange({":method": "GET", ":path": "/", ":authority": "a", "x-trap": "1"})
    assert stream.error is None  # the filter never saw x-trap
    assert observer.injected and all(i.function == "proxy_get_header_map_value" for i in observer.injected)
    assert all(e.injected for e in host.trace.calls("proxy_get_header_map_value"))
    assert observer.counts["proxy_get_header_map_value"] == len(observer.injected)


def test_each_name_value_body_and_map_entry_is_one_draw():
    """Hypothesis's cost is per draw (emulator/fuzz/drawn.py): a name, a value, a body or a path is
    one choice, and a map is one per entry plus its count."""
    seen = {}

    @settings(max_examples=60, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        for name, strategy in (
            ("name", pst.header_names(["x-a"], adversarial=True)),
            ("value", pst.header_values(["v"], adversarial=True)),
            ("body", pst.bodies(adversarial=True)),
        ):
            before = len(data.conjecture_data.nodes)
            data.draw(strategy)
            seen.setdefault(name, set()).add(len(data.conjecture_data.nodes) - before)
        before = len(data.conjecture_data.nodes)
        pairs = data.draw(pst.header_maps(vocabulary=["x-a"], adversarial=True))
        seen.setdefault("map", set()).add(len(data.conjecture_data.nodes) - before - len(pairs))

    check()
    assert seen == {"name": {1}, "value": {1}, "body": {1}, "map": {1}}
