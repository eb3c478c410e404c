"""Envoy's attributes (abi-spec.md §7.2), derived from a stream's state at the time of the call.

Header-derived values exist only while Envoy still holds the header map (in the headers callback,
while it stays paused, and in ``on_log``); stream-info values exist in every stream callback; root
contexts only see ``xds.node``. A value that does not exist yet is NotFound, as in Envoy. There is
no top-level ``node`` (Envoy 1.33 removed the top-level Wasm attributes; the node is ``xds.node``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from abi import UInt64

from .http.headers import HeaderMap

if TYPE_CHECKING:
    import datetime

    from .http.stream import HttpStream
    from .stream_info import ConnectionInfo, Node

__all__ = ["ENVOY_NAMES", "MISSING", "WRAPPER", "lookup", "root_attribute", "stream_attribute"]

ENVOY_NAMES = frozenset(
    {
        # CEL activation tokens (source/extensions/filters/common/expr/evaluator.cc ACTIVATION_TOKENS)
        b"request", b"response", b"connection", b"upstream", b"source", b"destination",
        b"metadata", b"filter_state", b"xds", b"upstream_filter_state",
        # the Wasm tokens (source/extensions/common/wasm/context.cc PROPERTY_TOKENS)
        b"plugin_name", b"plugin_root_id", b"plugin_vm_id", b"connection_id",
    }
)  # fmt: skip
"""Top-level names Envoy answers itself; any other name is the filter-state object ``wasm.<name>``."""

MISSING = object()
"""The attribute does not exist (NotFound)."""
WRAPPER = object()
"""A whole attribute group such as ``request``: Envoy cannot serialize it (SerializationFailure)."""


def _ts(ns: int) -> datetime.datetime:
    """A timestamp attribute from nanoseconds since the Unix epoch."""
    import datetime  # here, not at the top: it costs 1 ms of ``import emulator``

    return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=ns // 1000)


def _duration(ns: int) -> datetime.timedelta:
    """A duration attribute from nanoseconds."""
    import datetime

    return datetime.timedelta(microseconds=ns // 1000)


def _headers_map(h: HeaderMap | None) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    if h is not None:
        for k, _ in h.entries:
            if k not in out:
                out[k] = h.joined(k) or b""
    return out


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1]) if ":" in addr else 0


def root_attribute(node: Node, path: tuple[bytes, ...]) -> Any:
    """Attributes a root context can read: only ``xds.node`` (Envoy's StreamActivation answers
    ``xds`` without stream info; every other activation token needs it)."""
    if path[:2] == (b"xds", b"node"):
        return _node(node, path[2:])
    return MISSING


def _node(node: Node, rest: tuple[bytes, ...]) -> Any:
    """``xds.node``: the serialized Node message itself, or a walk into its fields."""
    if not rest:
        return node.serialized()
    return lookup(node.attribute(), rest)


def lookup(tree: Any, path: tuple[bytes, ...]) -> Any:
    """Walk ``tree`` (nested mappings and lists) along ``path``; ``MISSING`` when absent."""
    node = tree
    for seg in path:
        if isinstance(node, Mapping):
            key = seg.decode(errors="surrogateescape")
            if key in node:
                node = node[key]
            elif seg in node:
                node = node[seg]
            else:
                return MISSING
        elif isinstance(node, list | tuple) and seg.isdigit():
            idx = int(seg)
            if idx >= len(node):
                return MISSING
            node = node[idx]
        else:
            return MISSING
    return node


def stream_attribute(stream: HttpStream, path: tuple[bytes, ...]) -> Any:
    """The value of an attribute for ``stream`` now, ``MISSING`` or ``WRAPPER``."""
    head, rest = path[0], path[1:]
    conn = stream.connection
    if not stream.is_http and head in (b"request", b"response", b"upstream"):
        return MISSING
    if head == b"request":
        return _request(stream, rest)
    if head == b"response":
        return _response(stream, rest)
    if head in (b"source", b"destination"):
        addr = conn.source_address if head == b"source" else conn.destination_address
        return _pick(rest, {b"address": addr, b"port": _port(addr)})
    if head == b"connection":
        return _connection(conn, rest)
    if head == b"connection_id":
        return UInt64(conn.connection_id) if not rest else MISSING
    if head == b"upstream":
        if not stream.request.headers_sent:
            return MISSING
        return _pick(
            rest,
            {
                b"address": conn.upstream_address,
                b"port": _port(conn.upstream_address),
                b"local_address": conn.upstream_local_address,
                b"request_attempt_count": UInt64(1),
                b"transport_failure_reason": MISSING,
            },
        )
    if head == b"xds":
        if rest[:1] == (b"node",):
            return _node(stream.host.node, rest[1:])
        return _pick(
            rest,
            {
                b"cluster_name": conn.cluster_name,
                b"route_name": conn.route_name,
                b"virtual_host_name": conn.virtual_host_name,
                b"filter_chain_name": conn.filter_chain_name,
                b"listener_direction": conn.listener_direction,
            },
        )
    if head == b"metadata":
        return lookup(conn.metadata, rest) if rest else (conn.metadata or MISSING)
    if head == b"filter_state" and rest:
        # FilterStateWrapper: the key is the full filter-state key (e.g. "wasm.k"); a CelState of
        # the default bytes type has no fields to walk into.
        value = stream.filter_state.get(rest[0])
        return MISSING if value is None or len(rest) > 1 else value
    return MISSING


def _pick(rest: tuple[bytes, ...], values: dict[bytes, Any]) -> Any:
    if not rest:
        return WRAPPER
    if len(rest) != 1:
        return MISSING
    return values.get(rest[0], MISSING)


def _connection(conn: ConnectionInfo, rest: tuple[bytes, ...]) -> Any:
    values: dict[bytes, Any] = {
        b"id": UInt64(conn.connection_id),
        b"mtls": conn.mtls,
        b"requested_server_name": conn.requested_server_name,
    }
    if conn.tls:
        values.update(
            {
                b"tls_version": conn.tls_version,
                b"subject_local_certificate": conn.subject_local_certificate,
                b"subject_peer_certificate": conn.subject_peer_certificate,
                b"dns_san_local_certificate": conn.dns_san_local_certificate,
                b"dns_san_peer_certificate": conn.dns_san_peer_certificate,
                b"uri_san_local_certificate": conn.uri_san_local_certificate,
                b"uri_san_peer_certificate": conn.uri_san_peer_certificate,
                b"sha256_peer_certificate_digest": conn.sha256_peer_certificate_digest,
            }
        )
    return _pick(rest, values)


def _request(stream: HttpStream, rest: tuple[bytes, ...]) -> Any:
    if not rest:
        return WRAPPER
    key = rest[0]
    h = stream.visible_headers("request")
    side = stream.request
    if key == b"headers":
        m = _headers_map(h)
        if len(rest) == 1:
            return m
        return m.get(rest[1], MISSING) if len(rest) == 2 else MISSING
    if len(rest) > 1:
        return MISSING
    if key == b"time":
        return _ts(stream.start_ns)
    if key == b"protocol":
        return stream.connection.protocol
    if key == b"duration":
        return _duration(stream.end_ns - stream.start_ns) if stream.end_ns is not None else MISSING
    if key == b"size":
        cl = side.received_headers.get(b"content-length") if side.received_headers is not None else None
        if cl is not None:
            return int(cl) if cl.isdigit() else MISSING
        return side.received_body
    if key == b"total_size":
        size = side.received_body + (side.received_headers.byte_size() if side.received_headers is not None else 0)
        return size
    if h is None:
        return MISSING
    if key == b"path":
        return h.get(b":path") or MISSING
    path = h.get(b":path") or b""
    if key == b"url_path":
        return path.split(b"?", 1)[0]
    if key == b"query":
        return path.split(b"?", 1)[1].split(b"#", 1)[0] if b"?" in path else b""
    header = {
        b"host": b":authority",
        b"scheme": b":scheme",
        b"method": b":method",
        b"referer": b"referer",
        b"useragent": b"user-agent",
        b"id": b"x-request-id",
    }.get(key)
    if header is None:
        return MISSING
    value = h.get(header)
    return MISSING if value is None else value


def _response(stream: HttpStream, rest: tuple[bytes, ...]) -> Any:
    if not rest:
        return WRAPPER
    key = rest[0]
    side = stream.response
    if key in (b"headers", b"trailers"):
        m = _headers_map(stream.visible_headers("response") if key == b"headers" else stream.visible_trailers("response"))
        if len(rest) == 1:
            return m
        return m.get(rest[1], MISSING) if len(rest) == 2 else MISSING
    if len(rest) > 1:
        return MISSING
    code = stream.response_code()
    if key == b"code":
        return code if code is not None else MISSING
    if key == b"code_details":
        return stream.response_code_details() or MISSING
    if key == b"flags":
        return 0
    if key == b"grpc_status":
        for h in (side.received_trailers, side.received_headers):
            if h is not None and h.get(b"grpc-status") is not None:
                raw = h.get(b"grpc-status") or b""
                return int(raw) if raw.isdigit() else MISSING
        return MISSING
    if key == b"size":
        return len(stream.downstream_response.body)
    if key == b"total_size":
        out = stream.downstream_response
        return len(out.body) + sum(len(k) + len(v) for k, v in list(out.headers or []) + list(out.trailers or []))
    if key == b"backend_latency":
        return _duration(0) if side.received_headers is not None else MISSING
    return MISSING
