"""Scenario files: a plugin configuration, properties and a list of HTTP exchanges, run unattended.

The format (JSON or YAML) is documented in docs/pages/scenarios.md. :func:`load_scenario` validates a file and
names the field and the problem for anything wrong; :func:`run_scenario` feeds it through a
filter and returns a JSON-ready result; :func:`render_summary` prints what the filter changed.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any, TypeVar

from abi import Status
from abi.records import field, record

from .errors import ConfigError, PlacedConfigError
from .http.messages import Message, Request, Response, feed
from .http.stream import HttpStream
from .stream_info import Node

__all__ = [
    "Scenario",
    "ScenarioError",
    "StreamSpec",
    "load_scenario",
    "parse_scenario",
    "render_summary",
    "render_world",
    "run_connections",
    "run_scenario",
    "start_plugins",
    "stream_result",
    "world_state",
]

_PLUGIN_FIELDS = {"configuration", "vm_configuration", "root_id", "vm_id", "name", "fail_open", "fail_policy", "allow_on_headers_stop_iteration", "environment"}
_STREAM_FIELDS = {"name", "request", "response", "advance_ms", "plugin"}
_MESSAGE_FIELDS = {"headers", "body", "chunks", "trailers"}
_TOP_FIELDS = {
    "plugin", "plugins", "properties", "node", "streams", "engine", "seed", "description",
    "http_calls", "grpc_calls", "advance_ms", "shared_data", "connections", "clusters", "faults",
}  # fmt: skip
_FAULT_FIELDS = {"function", "status", "status_name", "nth", "count", "callback"}
_HTTP_RESPONDER_FIELDS = {"cluster", "path", "method", "response"}
_GRPC_RESPONDER_FIELDS = {"cluster", "service", "method", "response"}
_CONNECTION_FIELDS = {"name", "plugin", "events"}


_M = TypeVar("_M", bound=Message)


class ScenarioError(PlacedConfigError):
    """A scenario that cannot run: names the field (``where``) and the problem."""


@record
class StreamSpec:
    """One HTTP exchange of a scenario."""

    request: Request
    """The request, as parsed: headers and trailers as lower-cased bytes pairs, the body as bytes."""
    response: Response | None = None
    name: str = ""
    advance_ms: float = 0.0
    plugin: str | None = None


@record
class PluginSpec:
    """One plugin (root context) of the scenario's VM."""

    configuration: bytes = b""
    root_id: str = ""
    name: str = ""
    fail_policy: str = "FAIL_CLOSED"
    allow_on_headers_stop_iteration: bool = False


@record
class ConnectionSpec:
    """One TCP connection: events ``("downstream"|"upstream", bytes, eos)`` or ``("close", peer)``."""

    events: list[tuple[str, Any, bool]]
    name: str = ""
    plugin: str | None = None


@record
class Scenario:
    """A parsed scenario."""

    streams: list[StreamSpec]
    configuration: bytes = b""
    vm_configuration: bytes = b""
    root_id: str = ""
    vm_id: str = ""
    name: str = ""
    fail_policy: str = "FAIL_CLOSED"
    allow_on_headers_stop_iteration: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    node: Node | None = None
    """The node Envoy runs as (``xds.node.*``); ``None`` keeps the host's default node."""
    engine: str | None = None
    seed: int = 0
    plugins: list[PluginSpec] = field(default_factory=list)
    http_calls: list[dict[str, Any]] = field(default_factory=list)
    grpc_calls: list[dict[str, Any]] = field(default_factory=list)
    advance_ms: float = 0.0
    shared_data: list[tuple[str, bytes, str]] = field(default_factory=list)
    connections: list[ConnectionSpec] = field(default_factory=list)
    clusters: list[str] | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    """Host faults (``FaultRule`` JSON): host calls that return an error status instead of running."""


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a ``.json``, ``.yaml`` or ``.yml`` scenario file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ScenarioError(str(p), f"cannot read the scenario: {exc.strerror or exc}") from None
    if p.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScenarioError(str(p), f"not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(str(p), f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return parse_scenario(data)


def parse_scenario(data: Any) -> Scenario:
    """Validate an already-decoded scenario (a mapping)."""
    if not isinstance(data, dict):
        raise ScenarioError("scenario", f"expected a mapping with 'plugin', 'properties' and 'streams', got {type(data).__name__}")
    _no_extra(data, _TOP_FIELDS, "scenario")
    sc = Scenario(streams=[])
    plugin = data.get("plugin", {})
    if not isinstance(plugin, dict):
        raise ScenarioError("plugin", "expected a mapping")
    _no_extra(plugin, _PLUGIN_FIELDS, "plugin")
    sc.configuration = _config(plugin.get("configuration"), "plugin.configuration")
    sc.vm_configuration = _config(plugin.get("vm_configuration"), "plugin.vm_configuration")
    sc.root_id = _str(plugin.get("root_id", ""), "plugin.root_id")
    sc.vm_id = _str(plugin.get("vm_id", ""), "plugin.vm_id")
    sc.name = _str(plugin.get("name", ""), "plugin.name")
    if "fail_open" in plugin and "fail_policy" in plugin:
        raise ScenarioError("plugin", "set either fail_open or fail_policy, not both (Envoy rejects both)")
    if "fail_open" in plugin:
        sc.fail_policy = "FAIL_OPEN" if _bool(plugin["fail_open"], "plugin.fail_open") else "FAIL_CLOSED"
    if "fail_policy" in plugin:
        policy = _str(plugin["fail_policy"], "plugin.fail_policy").upper()
        if policy not in ("FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"):
            raise ScenarioError("plugin.fail_policy", f"expected FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD, got {policy!r}")
        sc.fail_policy = policy
    sc.allow_on_headers_stop_iteration = _bool(plugin.get("allow_on_headers_stop_iteration", False), "plugin.allow_on_headers_stop_iteration")
    env = plugin.get("environment", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ScenarioError("plugin.environment", "expected a mapping of strings to strings")
    sc.environment = dict(env)
    sc.properties = _properties(data.get("properties", []))
    if "node" in data:
        if not isinstance(data["node"], dict):
            raise ScenarioError("node", "expected a mapping with id, cluster and metadata")
        try:
            sc.node = Node.of(data["node"])
        except ConfigError as exc:
            raise ScenarioError("node", str(exc)) from None
    streams = data.get("streams", [])
    if not isinstance(streams, list):
        raise ScenarioError("streams", "expected a list of {request, response} entries")
    for i, entry in enumerate(streams):
        sc.streams.append(_stream(entry, f"streams[{i}]"))
    sc.plugins = _plugins(data, sc)
    roots = [p.root_id for p in sc.plugins]
    for i, st in enumerate(sc.streams):
        if st.plugin is not None and st.plugin not in roots:
            raise ScenarioError(f"streams[{i}].plugin", f"no plugin with root_id {st.plugin!r}; plugins: {roots}")
    sc.http_calls = [_http_responder(r, f"http_calls[{i}]") for i, r in enumerate(_list(data.get("http_calls", []), "http_calls"))]
    sc.grpc_calls = [_grpc_responder(r, f"grpc_calls[{i}]") for i, r in enumerate(_list(data.get("grpc_calls", []), "grpc_calls"))]
    sc.advance_ms = _ms(data.get("advance_ms", 0), "advance_ms")
    sc.shared_data = [_shared(item, f"shared_data[{i}]") for i, item in enumerate(_list(data.get("shared_data", []), "shared_data"))]
    sc.connections = [_connection(c, f"connections[{i}]", roots) for i, c in enumerate(_list(data.get("connections", []), "connections"))]
    if "clusters" in data:
        clusters = _list(data["clusters"], "clusters")
        sc.clusters = [_str(c, f"clusters[{i}]") for i, c in enumerate(clusters)]
    sc.faults = [_fault(f, f"faults[{i}]") for i, f in enumerate(_list(data.get("faults", []), "faults"))]
    if "engine" in data:
        sc.engine = _str(data["engine"], "engine")
    if "seed" in data:
        if not isinstance(data["seed"], int) or isinstance(data["seed"], bool):
            raise ScenarioError("seed", "expected an integer")
        sc.seed = data["seed"]
    return sc


def _fault(item: Any, where: str) -> dict[str, Any]:
    """One host fault: ``{function, status (number or name), nth, count, callback}``."""
    if not isinstance(item, dict):
        raise ScenarioError(where, "expected a mapping with 'function' and 'status'")
    _no_extra(item, _FAULT_FIELDS, where)
    if "function" not in item or "status" not in item:
        raise ScenarioError(where, "needs 'function' (a host function name) and 'status' (a proxy-wasm status)")
    function = _str(item["function"], f"{where}.function")
    status = item["status"]
    if isinstance(status, str):
        try:
            status = int(Status[status])
        except KeyError:
            raise ScenarioError(f"{where}.status", f"unknown status {status!r}; one of {[s.name for s in Status]}") from None
    elif not isinstance(status, int) or isinstance(status, bool) or status < 0:
        raise ScenarioError(f"{where}.status", "expected a status number or name (e.g. 'NotFound')")
    nth = item.get("nth", 1)
    if not isinstance(nth, int) or isinstance(nth, bool) or nth < 1:
        raise ScenarioError(f"{where}.nth", "expected a positive integer (1 is the first matching call)")
    count = item.get("count", 1)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ScenarioError(f"{where}.count", "expected a positive integer, or null for every call from nth on")
    callback = item.get("callback")
    if callback is not None:
        callback = _str(callback, f"{where}.callback")
    return {"function": function, "status": status, "nth": nth, "count": count, "callback": callback}


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(where, f"expected a list, got {type(value).__name__}")
    return value


def _ms(value: Any, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ScenarioError(where, "expected a non-negative number of milliseconds")
    return float(value)


def _plugins(data: dict[str, Any], sc: Scenario) -> list[PluginSpec]:
    """``plugin`` (one) or ``plugins`` (several root contexts on one VM)."""
    if "plugins" in data and "plugin" in data:
        raise ScenarioError("plugins", "give either plugin or plugins, not both")
    if "plugins" not in data:
        return [PluginSpec(sc.configuration, sc.root_id, sc.name, sc.fail_policy, sc.allow_on_headers_stop_iteration)]
    out = []
    for i, p in enumerate(_list(data["plugins"], "plugins")):
        where = f"plugins[{i}]"
        if not isinstance(p, dict):
            raise ScenarioError(where, "expected a mapping")
        _no_extra(p, {"configuration", "root_id", "name", "fail_open", "fail_policy", "allow_on_headers_stop_iteration"}, where)
        policy = "FAIL_CLOSED"
        if "fail_open" in p:
            policy = "FAIL_OPEN" if _bool(p["fail_open"], f"{where}.fail_open") else "FAIL_CLOSED"
        if "fail_policy" in p:
            policy = _str(p["fail_policy"], f"{where}.fail_policy").upper()
            if policy not in ("FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"):
                raise ScenarioError(f"{where}.fail_policy", f"expected FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD, got {policy!r}")
        out.append(
            PluginSpec(
                _config(p.get("configuration"), f"{where}.configuration"),
                _str(p.get("root_id", ""), f"{where}.root_id"),
                _str(p.get("name", ""), f"{where}.name"),
                policy,
                _bool(p.get("allow_on_headers_stop_iteration", False), f"{where}.allow_on_headers_stop_iteration"),
            )
        )
    roots = [p.root_id for p in out]
    if len(set(roots)) != len(roots):
        raise ScenarioError("plugins", f"root_ids must be unique, got {roots}")
    if not out:
        raise ScenarioError("plugins", "needs at least one plugin")
    return out


def _http_responder(r: Any, where: str) -> dict[str, Any]:
    if not isinstance(r, dict):
        raise ScenarioError(where, "expected a mapping with cluster and response")
    _no_extra(r, _HTTP_RESPONDER_FIELDS, where)
    if "cluster" not in r or "response" not in r:
        raise ScenarioError(where, "needs cluster and response")
    resp = r["response"]
    if resp in ("fail", "timeout"):
        spec: Any = resp
    elif isinstance(resp, dict):
        _no_extra(resp, {"status", "headers", "body", "trailers"}, f"{where}.response")
        headers = _headers(resp.get("headers"), f"{where}.response.headers")
        status = resp.get("status")
        st = next((v for k, v in headers if k == b":status"), None)
        headers = [(k, v) for k, v in headers if k != b":status"]
        if status is None:
            status = int(st) if st is not None and st.isdigit() else 200
        if not isinstance(status, int) or isinstance(status, bool):
            raise ScenarioError(f"{where}.response.status", "expected an integer")
        spec = {
            "status": status,
            "headers": headers,
            "body": _bytes(resp.get("body", ""), f"{where}.response.body"),
            "trailers": _headers(resp["trailers"], f"{where}.response.trailers") if resp.get("trailers") else None,
        }
    else:
        raise ScenarioError(f"{where}.response", 'expected {"headers", "body", "trailers"}, "fail" or "timeout"')
    return {
        "cluster": _str(r["cluster"], f"{where}.cluster"),
        "path": _str(r["path"], f"{where}.path") if "path" in r else None,
        "method": _str(r["method"], f"{where}.method") if "method" in r else None,
        "response": spec,
    }


def _grpc_responder(r: Any, where: str) -> dict[str, Any]:
    if not isinstance(r, dict):
        raise ScenarioError(where, "expected a mapping with cluster and response")
    _no_extra(r, _GRPC_RESPONDER_FIELDS, where)
    if "cluster" not in r or "response" not in r:
        raise ScenarioError(where, "needs cluster and response")
    resp = r["response"]
    if not isinstance(resp, dict) or not ({"message"} <= set(resp) or {"status"} <= set(resp)):
        raise ScenarioError(f"{where}.response", 'expected {"message": ...} (success) or {"status": code, "message"?: text} (close)')
    if "status" in resp:
        if not isinstance(resp["status"], int) or isinstance(resp["status"], bool):
            raise ScenarioError(f"{where}.response.status", "expected an integer gRPC status")
        spec = {"status": resp["status"], "text": _str(resp.get("message", ""), f"{where}.response.message")}
    else:
        spec = {"message": _bytes(resp["message"], f"{where}.response.message")}
    return {
        "cluster": _str(r["cluster"], f"{where}.cluster"),
        "service": _str(r["service"], f"{where}.service") if "service" in r else None,
        "method": _str(r["method"], f"{where}.method") if "method" in r else None,
        "response": spec,
    }


def _shared(item: Any, where: str) -> tuple[str, bytes, str]:
    if not isinstance(item, dict) or not {"key", "value"} <= set(item) or set(item) - {"key", "value", "vm_id"}:
        raise ScenarioError(where, 'expected {"key": ..., "value": ..., "vm_id"?: ...}')
    return _str(item["key"], f"{where}.key"), _bytes(item["value"], f"{where}.value"), _str(item.get("vm_id", ""), f"{where}.vm_id")


def _connection(c: Any, where: str, roots: list[str]) -> ConnectionSpec:
    if not isinstance(c, dict):
        raise ScenarioError(where, "expected a mapping with events")
    _no_extra(c, _CONNECTION_FIELDS, where)
    plugin = c.get("plugin")
    if plugin is not None and plugin not in roots:
        raise ScenarioError(f"{where}.plugin", f"no plugin with root_id {plugin!r}")
    events: list[tuple[str, Any, bool]] = []
    for j, ev in enumerate(_list(c.get("events", []), f"{where}.events")):
        ew = f"{where}.events[{j}]"
        if not isinstance(ev, dict):
            raise ScenarioError(ew, 'expected {"downstream": data}, {"upstream": data} or {"close": "remote"|"local"}')
        if "close" in ev:
            peer = ev["close"]
            if peer not in ("remote", "local"):
                raise ScenarioError(f"{ew}.close", 'expected "remote" or "local"')
            events.append(("close", peer, True))
            continue
        kind = next((k for k in ("downstream", "upstream") if k in ev), None)
        if kind is None or set(ev) - {kind, "end_of_stream"}:
            raise ScenarioError(ew, 'expected {"downstream": data} or {"upstream": data}, with an optional end_of_stream')
        events.append((kind, _bytes(ev[kind], f"{ew}.{kind}"), _bool(ev.get("end_of_stream", False), f"{ew}.end_of_stream")))
    return ConnectionSpec(events, _str(c.get("name", ""), f"{where}.name"), plugin)


def _no_extra(d: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise ScenarioError(where, f"unknown field(s) {', '.join(map(repr, extra))}; allowed: {', '.join(sorted(allowed))}")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(where, f"expected a string, got {type(value).__name__}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(where, f"expected true or false, got {value!r}")
    return value


def _config(value: Any, where: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"base64"}:
        return _b64(value["base64"], where)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":")).encode()
    raise ScenarioError(where, f"expected a string or an object (sent JSON-encoded), got {type(value).__name__}")


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ScenarioError(where, "base64 must be a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ScenarioError(where, f"invalid base64 {value[:20]!r}") from None


def _bytes(value: Any, where: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"base64"}:
        return _b64(value["base64"], where)
    raise ScenarioError(where, f'expected a UTF-8 string or {{"base64": "..."}}, got {type(value).__name__}')


def _headers(value: Any, where: str) -> list[tuple[bytes, bytes]]:
    if value is None:
        return []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = value
    else:
        raise ScenarioError(where, "expected a list of [name, value] pairs or a mapping")
    out = []
    for j, item in enumerate(items):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ScenarioError(f"{where}[{j}]", f"expected a [name, value] pair, got {item!r}")
        name, val = item
        if not isinstance(name, str) or not name:
            raise ScenarioError(f"{where}[{j}]", "a header name must be a non-empty string")
        out.append((name.lower().encode(), _bytes(val if not isinstance(val, int | float) or isinstance(val, bool) else str(val), f"{where}[{j}]")))
    return out


def _message(value: Any, where: str, kind: type[_M]) -> _M:
    """A scenario's ``request``/``response`` mapping, parsed into ``kind`` (:class:`Request` or :class:`Response`)."""
    if not isinstance(value, dict):
        raise ScenarioError(where, "expected a mapping with headers, body or chunks, trailers")
    _no_extra(value, _MESSAGE_FIELDS, where)
    if "body" in value and "chunks" in value:
        raise ScenarioError(where, "give either body or chunks, not both")
    if "chunks" in value:
        if not isinstance(value["chunks"], list):
            raise ScenarioError(f"{where}.chunks", "expected a list of bodies (one per data frame)")
        chunks = [_bytes(c, f"{where}.chunks[{j}]") for j, c in enumerate(value["chunks"])]
    elif "body" in value:
        body = _bytes(value["body"], f"{where}.body")
        chunks = [body] if body else []
    else:
        chunks = []
    trailers = _headers(value["trailers"], f"{where}.trailers") if value.get("trailers") is not None else None
    return kind.from_frames(_headers(value.get("headers"), f"{where}.headers"), chunks, trailers)


def _stream(entry: Any, where: str) -> StreamSpec:
    if not isinstance(entry, dict):
        raise ScenarioError(where, "expected a mapping with 'request' and optionally 'response'")
    _no_extra(entry, _STREAM_FIELDS, where)
    if "request" not in entry:
        raise ScenarioError(where, "missing 'request'")
    advance = entry.get("advance_ms", 0)
    if not isinstance(advance, int | float) or isinstance(advance, bool) or advance < 0:
        raise ScenarioError(f"{where}.advance_ms", "expected a non-negative number of milliseconds")
    return StreamSpec(
        request=_message(entry["request"], f"{where}.request", Request),
        response=_message(entry["response"], f"{where}.response", Response) if entry.get("response") is not None else None,
        name=_str(entry.get("name", ""), f"{where}.name"),
        advance_ms=float(advance),
        plugin=_str(entry["plugin"], f"{where}.plugin") if "plugin" in entry else None,
    )


def _properties(value: Any) -> dict[str, Any]:
    if not isinstance(value, list):
        raise ScenarioError("properties", 'expected a list of {"path": [...], "value": ...}')
    tree: dict[str, Any] = {}
    for i, item in enumerate(value):
        where = f"properties[{i}]"
        if not isinstance(item, dict) or set(item) != {"path", "value"}:
            raise ScenarioError(where, 'expected exactly the fields "path" and "value"')
        path = item["path"]
        if isinstance(path, str):
            segments = path.split(".")
        elif isinstance(path, list) and all(isinstance(s, str) for s in path):
            segments = list(path)
        else:
            raise ScenarioError(f"{where}.path", "expected a list of strings or a dotted string")
        if not segments or any(s == "" for s in segments):
            raise ScenarioError(f"{where}.path", "path segments must be non-empty")
        node = tree
        for seg in segments[:-1]:
            nxt = node.setdefault(seg, {})
            if not isinstance(nxt, dict):
                raise ScenarioError(f"{where}.path", f"{seg!r} already holds a value, it cannot also hold {segments[-1]!r}")
            node = nxt
        node[segments[-1]] = _value(item["value"], f"{where}.value")
    return tree


def _value(value: Any, where: str) -> Any:
    if isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, dict):
        if set(value) == {"base64"}:
            return _b64(value["base64"], where)
        return {str(k): _value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v, f"{where}[{j}]") for j, v in enumerate(value)]
    raise ScenarioError(where, f"expected a string, integer, boolean, {{'base64': ...}} or mapping, got {type(value).__name__}")


def start_plugins(host: Any, module: Any, scenario: Scenario, *, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create the scenario's VM and start its plugins; returns them by root_id (first one first).

    ``overrides`` (from the command line, or an Envoy configuration's filter) may set
    ``plugin_config``, ``vm_config``, ``root_id``, ``vm_id``, ``name``, ``environment`` and
    ``fail_policy``, which apply to a single-plugin scenario, and ``clusters`` (the known ones).
    """
    o = overrides or {}
    prepare_host(host, scenario)
    if o.get("clusters") is not None:
        host.clusters = set(o["clusters"])
    env = {**scenario.environment, **(o.get("environment") or {})}
    vm_config = o.get("vm_config")
    vm = host.create_vm(
        module,
        vm_id=o.get("vm_id") if o.get("vm_id") is not None else scenario.vm_id,
        vm_config=vm_config if vm_config is not None else scenario.vm_configuration,
        environment=env,
    )
    single = len(scenario.plugins) == 1
    plugins: dict[str, Any] = {}
    for spec in scenario.plugins:

        def pick(key: str, default: Any) -> Any:
            return o[key] if single and o.get(key) is not None else default

        plugins[spec.root_id] = host.add_plugin(
            vm,
            root_id=pick("root_id", spec.root_id),
            name=pick("name", spec.name),
            plugin_config=pick("plugin_config", spec.configuration),
            fail_policy=pick("fail_policy", spec.fail_policy),
            allow_on_headers_stop_iteration=spec.allow_on_headers_stop_iteration,
            properties=scenario.properties,
        )
    return plugins


def prepare_host(host: Any, scenario: Scenario) -> None:
    """Install the scenario's responders, clusters and initial shared data on a host."""
    install_responders(host, scenario)
    for key, value, vm_id in scenario.shared_data:
        host.shared_data.set(key, value, vm_id=vm_id)
    if scenario.clusters is not None:
        host.clusters = set(scenario.clusters)
    if scenario.node is not None:
        host.node = scenario.node


def install_responders(host: Any, scenario: Scenario) -> None:
    """Add the scenario's ``http_calls`` and ``grpc_calls`` responders to a host."""
    for r in scenario.http_calls:
        resp = r["response"]
        if isinstance(resp, str):
            host.http_calls.add_responder(r["cluster"], path=r["path"], method=r["method"], response=resp)
        else:
            host.http_calls.add_responder(
                r["cluster"], path=r["path"], method=r["method"], status=resp["status"], headers=resp["headers"], body=resp["body"], trailers=resp["trailers"]
            )
    for r in scenario.grpc_calls:
        host.grpc_calls.add_responder(r["cluster"], service=r["service"], method=r["method"], **r["response"])


def run_scenario(plugin: Any, scenario: Scenario, plugins: dict[str, Any] | None = None) -> list[tuple[StreamSpec, HttpStream]]:
    """Run the scenario's streams, then advance the clock, then finish what was resumed.

    Each stream goes as far as it can (a stream paused on a callout waits); then the clock moves
    by ``advance_ms`` (ticks and timeouts fire); then every stream whose request reached upstream
    gets its response and ends. ``plugins`` maps root_id to plugin for multi-plugin scenarios.
    """
    by_root = plugins or {}
    runs = []
    for spec in scenario.streams:
        target = by_root.get(spec.plugin, plugin) if spec.plugin is not None else plugin
        stream = target.http_stream()
        feed(stream, "request", spec.request)
        if spec.advance_ms:
            target.host.advance(spec.advance_ms)
        _maybe_respond(stream, spec)
        runs.append((spec, stream))
    if scenario.advance_ms:
        plugin.host.advance(scenario.advance_ms)
    for spec, stream in runs:
        _maybe_respond(stream, spec)
        stream.complete()
    return runs


def _maybe_respond(stream: HttpStream, spec: StreamSpec) -> None:
    if spec.response is not None and not stream.completed and stream.upstream_request.headers is not None and stream.response.received_headers is None:
        feed(stream, "response", spec.response)


def run_connections(plugin: Any, scenario: Scenario, plugins: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run the scenario's TCP connections; JSON-ready results."""
    from abi import PeerType

    out = []
    for spec in scenario.connections:
        target = (plugins or {}).get(spec.plugin, plugin) if spec.plugin is not None else plugin
        conn = target.tcp_connection()
        for kind, data, eos in spec.events:
            if kind == "close":
                conn.close(PeerType.REMOTE if data == "remote" else PeerType.LOCAL)
            elif kind == "downstream":
                conn.send_downstream(data, end_of_stream=eos)
            else:
                conn.send_upstream(data, end_of_stream=eos)
        from .http.types import _body_json

        out.append(
            {
                "name": spec.name,
                "upstream_received": _body_json(bytes(conn.upstream_received)),
                "downstream_received": _body_json(bytes(conn.downstream_received)),
                "closed": conn.closed,
                "callbacks": [{"name": c.name, "action": c.action} for c in conn.callbacks],
                "error": str(conn.error) if conn.error else None,
            }
        )
    return out


def world_state(host: Any) -> dict[str, Any]:
    """Metrics, shared data and queue contents of a host, JSON-ready."""
    from .http.types import _body_json

    return {
        "metrics": host.metrics.all(),
        "shared_data": {vm: {k: _body_json(v[0]) for k, v in items.items()} for vm, items in host.shared_data.snapshot().items()},
        "queues": {f"{vm}/{name}": [_body_json(x) for x in host.queues.contents(name, vm_id=vm)] for (vm, name) in host.queues.tokens},
        "pending_http_calls": [c.to_json() for c in host.http_calls.pending()],
    }


def render_world(world: dict[str, Any], connections: list[dict[str, Any]] | None = None) -> str:
    """The host-wide state after a run (:func:`world_state`), in words; empty when there is none."""
    out = []
    for name, m in world.get("metrics", {}).items():
        value = m["value"]
        shown = f"{len(value)} samples, last {value[-1]}" if isinstance(value, list) and value else value
        out.append(f" metric {name} ({m['type']}): {shown}")
    for vm, items in world.get("shared_data", {}).items():
        for key, value in items.items():
            out.append(f" shared data{f' [{vm}]' if vm else ''} {key} = {value!r}")
    for queue, values in world.get("queues", {}).items():
        out.append(f" queue {queue.lstrip('/')}: {len(values)} waiting" + (f", next {values[0]!r}" if values else ""))
    for call in world.get("pending_http_calls", []):
        out.append(f" http call to {call.get('cluster')} still pending")
    for i, c in enumerate(connections or []):
        title = f" connection {i + 1}" + (f" ({c['name']})" if c.get("name") else "")
        out.append(f"{title}: upstream got {c['upstream_received']!r}, downstream got {c['downstream_received']!r}, closed {c['closed']}")
        if c.get("error"):
            out.append(f"  error: {str(c['error']).splitlines()[0]}")
    return "after the run:\n" + "\n".join(out) if out else ""


def stream_result(stream: HttpStream, spec: StreamSpec | None = None) -> dict[str, Any]:
    """The JSON shape of one stream's outcome (documented in docs/pages/scenarios.md)."""
    up, down = stream.upstream_request, stream.downstream_response
    return {
        "name": spec.name if spec else "",
        "upstream_request": up.to_json() if up.headers is not None else None,
        "downstream_response": down.to_json() if down.headers is not None else None,
        "local_response": stream.local_response.to_json() if stream.local_response else None,
        "callbacks": [{"name": c.name, "action": c.action} for c in stream.callbacks],
        "lints": list(stream.lints),
        "http_calls": [c.to_json() for c in stream.http_calls],
        "grpc_calls": [c.to_json() for c in stream.grpc_calls],
        "completed": stream.completed,
        "error": str(stream.error) if stream.error else None,
    }


def _diff(before: list[tuple[bytes, bytes]], after: list[tuple[bytes, bytes]] | None) -> list[str]:
    if after is None:
        return ["  (nothing got through)"]
    lines = []
    b, a = list(before), list(after)
    for k, v in b:
        if (k, v) not in a:
            lines.append(f"  - {k.decode(errors='replace')}: {v.decode(errors='replace')}")
    for k, v in a:
        if (k, v) not in b:
            lines.append(f"  + {k.decode(errors='replace')}: {v.decode(errors='replace')}")
    return lines or ["  (headers unchanged)"]


def render_summary(runs: list[tuple[StreamSpec, HttpStream]], logs: list[Any] | None = None) -> str:
    """A readable account of each stream: what the filter changed on the way up and down, and
    (``logs``: the host's log records) the lines its callbacks logged, under it."""
    out = []
    by_context: dict[int | None, list[Any]] = {}
    for line in logs or []:
        by_context.setdefault(line.context_id, []).append(line)
    for i, (spec, stream) in enumerate(runs):
        r = stream_result(stream, spec)
        title = f"stream {i + 1}" + (f" ({r['name']})" if r.get("name") else "")
        if spec is not None:
            req = dict(spec.request.header_pairs())
            title += f": {req.get(b':method', b'?').decode(errors='replace')} {req.get(b':path', b'?').decode(errors='replace')}"
        out.append(title)
        for line in by_context.get(stream.context_id, []) if stream.context_id is not None else []:
            out.append(f" [{line.level_name}] {line.message}")
        up = r["upstream_request"]
        out.append(" request headers, as upstream received them:")
        out += _diff(spec.request.header_pairs() if spec else [], [(k.encode(), v.encode()) for k, v in up["headers"]] if up else None)
        if up and spec is not None:
            sent = spec.request.body_bytes().decode(errors="replace")
            got = up["body"] if isinstance(up["body"], str) else "(binary)"
            if sent != got:
                out.append(f"  body: {sent[:60]!r} -> {got[:60]!r}")
        if r["local_response"]:
            lr = r["local_response"]
            out.append(f" local reply from {lr['callback']}: {lr['status']} {lr['body']!r} details={lr['details']!r}")
        down = r["downstream_response"]
        if spec is not None and spec.response is not None and not r["local_response"]:
            out.append(" response headers, as the client received them:")
            out += _diff(spec.response.header_pairs(), [(k.encode(), v.encode()) for k, v in down["headers"]] if down else None)
        elif down:
            out.append(f" client received :status {dict(down['headers']).get(':status')}")
        out.append(" callbacks: " + ", ".join(f"{c['name'].removeprefix('proxy_on_')}={c['action']}" for c in r["callbacks"] if c["action"]))
        for call in r["http_calls"]:
            state = call["state"] + (f" ({call['response_status']})" if call["response_status"] else "")
            out.append(f" http call to {call['cluster']}: {state}")
        for lint in r["lints"]:
            out.append(f" lint: {lint}")
        if r["error"]:
            lines = r["error"].splitlines()
            out.append(f" error: {lines[0]}")
            if "guest backtrace:" in lines:  # the frames, innermost first, as --json carries them
                frames = lines[lines.index("guest backtrace:") + 1 :]
                frames = [f for f in frames if f.startswith("  ")]
                out.append("  guest backtrace:")
                out += [f"  {f}" for f in frames[:_BACKTRACE_LINES]]
                if len(frames) > _BACKTRACE_LINES:
                    out.append(f"    ... {len(frames) - _BACKTRACE_LINES} more frames (--json has them all)")
    return "\n".join(out)


_BACKTRACE_LINES = 8
