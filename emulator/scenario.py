"""Scenario files: a plugin configuration, properties and a list of HTTP exchanges, run unattended.

The format (JSON or YAML) is documented in the README. :func:`load_scenario` validates a file and
names the field and the problem for anything wrong; :func:`run_scenario` feeds it through a
filter and returns a JSON-ready result; :func:`render_summary` prints what the filter changed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .http_stream import HttpStream

__all__ = ["Scenario", "ScenarioError", "StreamSpec", "load_scenario", "parse_scenario", "render_summary", "run_scenario"]

_PLUGIN_FIELDS = {"configuration", "vm_configuration", "root_id", "vm_id", "name", "fail_open", "fail_policy", "allow_on_headers_stop_iteration", "environment"}
_STREAM_FIELDS = {"name", "request", "response", "advance_ms"}
_MESSAGE_FIELDS = {"headers", "body", "chunks", "trailers"}
_TOP_FIELDS = {"plugin", "properties", "streams", "engine", "seed", "description"}


class ScenarioError(ConfigError):
    """A scenario that cannot run: names the field (``where``) and the problem."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass
class MessageSpec:
    """One side of an exchange: headers, body frames and trailers."""

    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]
    trailers: list[tuple[bytes, bytes]] | None


@dataclass
class StreamSpec:
    """One HTTP exchange of a scenario."""

    request: MessageSpec
    response: MessageSpec | None = None
    name: str = ""
    advance_ms: float = 0.0


@dataclass
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
    engine: str | None = None
    seed: int = 0


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
    streams = data.get("streams", [])
    if not isinstance(streams, list):
        raise ScenarioError("streams", "expected a list of {request, response} entries")
    for i, entry in enumerate(streams):
        sc.streams.append(_stream(entry, f"streams[{i}]"))
    if "engine" in data:
        sc.engine = _str(data["engine"], "engine")
    if "seed" in data:
        if not isinstance(data["seed"], int) or isinstance(data["seed"], bool):
            raise ScenarioError("seed", "expected an integer")
        sc.seed = data["seed"]
    return sc


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


def _message(value: Any, where: str) -> MessageSpec:
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
    return MessageSpec(_headers(value.get("headers"), f"{where}.headers"), chunks, trailers)


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
        request=_message(entry["request"], f"{where}.request"),
        response=_message(entry["response"], f"{where}.response") if entry.get("response") is not None else None,
        name=_str(entry.get("name", ""), f"{where}.name"),
        advance_ms=float(advance),
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


def _feed(stream: HttpStream, side: str, msg: MessageSpec) -> None:
    has_trailers = msg.trailers is not None
    getattr(stream, f"send_{side}_headers")(msg.headers, end_of_stream=not msg.chunks and not has_trailers)
    for j, chunk in enumerate(msg.chunks):
        if stream.completed:
            return
        getattr(stream, f"send_{side}_body")(chunk, end_of_stream=j == len(msg.chunks) - 1 and not has_trailers)
    if has_trailers and not stream.completed:
        getattr(stream, f"send_{side}_trailers")(msg.trailers)


def run_scenario(plugin: Any, scenario: Scenario) -> list[tuple[StreamSpec, HttpStream]]:
    """Run every stream of ``scenario`` through a started plugin; returns each spec with its stream."""
    results = []
    for spec in scenario.streams:
        stream = plugin.http_stream()
        _feed(stream, "request", spec.request)
        if spec.advance_ms:
            plugin.host.advance(spec.advance_ms)
        if spec.response is not None and not stream.completed and stream.upstream_request.headers is not None:
            _feed(stream, "response", spec.response)
        stream.complete()
        results.append((spec, stream))
    return results


def stream_result(stream: HttpStream, spec: StreamSpec | None = None) -> dict[str, Any]:
    """The JSON shape of one stream's outcome (documented in the README)."""
    up, down = stream.upstream_request, stream.downstream_response
    return {
        "name": spec.name if spec else "",
        "upstream_request": up.to_json() if up.headers is not None else None,
        "downstream_response": down.to_json() if down.headers is not None else None,
        "local_response": stream.local_response.to_json() if stream.local_response else None,
        "callbacks": [{"name": c.name, "action": c.action} for c in stream.callbacks],
        "lints": list(stream.lints),
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


def render_summary(runs: list[tuple[StreamSpec, HttpStream]]) -> str:
    """A readable account of each stream: what the filter changed on the way up and down."""
    out = []
    for i, (spec, stream) in enumerate(runs):
        r = stream_result(stream, spec)
        title = f"stream {i + 1}" + (f" ({r['name']})" if r.get("name") else "")
        if spec is not None:
            req = dict(spec.request.headers)
            title += f": {req.get(b':method', b'?').decode(errors='replace')} {req.get(b':path', b'?').decode(errors='replace')}"
        out.append(title)
        up = r["upstream_request"]
        out.append(" request headers, as upstream received them:")
        out += _diff(spec.request.headers if spec else [], [(k.encode(), v.encode()) for k, v in up["headers"]] if up else None)
        if up and spec is not None:
            sent = b"".join(spec.request.chunks)
            got = up["body"] if isinstance(up["body"], str) else ""
            if sent.decode(errors="replace") != got:
                out.append(f"  body: {sent[:60]!r} -> {got[:60]!r}")
        if r["local_response"]:
            lr = r["local_response"]
            out.append(f" local reply from {lr['callback']}: {lr['status']} {lr['body']!r} details={lr['details']!r}")
        down = r["downstream_response"]
        if spec is not None and spec.response is not None and not r["local_response"]:
            out.append(" response headers, as the client received them:")
            out += _diff(spec.response.headers, [(k.encode(), v.encode()) for k, v in down["headers"]] if down else None)
        elif down:
            out.append(f" client received :status {dict(down['headers']).get(':status')}")
        out.append(" callbacks: " + ", ".join(f"{c['name'].removeprefix('proxy_on_')}={c['action']}" for c in r["callbacks"] if c["action"]))
        for lint in r["lints"]:
            out.append(f" lint: {lint}")
        if r["error"]:
            out.append(f" error: {r['error'].splitlines()[0]}")
    return "\n".join(out)
