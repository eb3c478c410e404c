"""Connection and routing facts Envoy knows about a stream, for the ``source.*``, ``destination.*``,
``connection.*``, ``upstream.*`` and ``xds.*`` attributes, and the node Envoy runs as
(``xds.node``). Defaults are fixed and documented so tests are deterministic; override any field
per stream or per host."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from abi.leb128 import encode_uleb
from abi.records import field, record

from .errors import ConfigError

__all__ = ["ConnectionInfo", "Node"]


@record
class ConnectionInfo:
    """What Envoy knows about the downstream connection, the route and the upstream."""

    source_address: str = "192.168.0.10:43210"
    destination_address: str = "10.0.0.2:8080"
    upstream_address: str = "10.0.0.3:80"
    upstream_local_address: str = "10.0.0.2:51000"
    protocol: str = "HTTP/1.1"
    connection_id: int = 1
    tls: bool = False
    tls_version: str = "TLSv1.3"
    mtls: bool = False
    requested_server_name: str = ""
    subject_peer_certificate: str = ""
    subject_local_certificate: str = ""
    dns_san_peer_certificate: str = ""
    dns_san_local_certificate: str = ""
    uri_san_peer_certificate: str = ""
    uri_san_local_certificate: str = ""
    sha256_peer_certificate_digest: str = ""
    cluster_name: str = "upstream"
    route_name: str = "default"
    virtual_host_name: str = "default"
    filter_chain_name: str = ""
    listener_direction: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    """Dynamic metadata: ``{"filter_metadata": {namespace: {key: value}}}``."""


@record
class Node:
    """The node Envoy runs as (bootstrap ``node``: ``envoy.config.core.v3.Node``), served at ``xds.node``.

    Give it to ``Host(node=Node(...))`` (or a mapping with the same keys). Envoy serves it from its
    local info in every context, root contexts included (``XDSWrapper``: ``xds.node``); there is no
    top-level ``node`` attribute. ``metadata`` is a ``google.protobuf.Struct``: CEL unwraps it to a
    map whose numbers are doubles, so ``xds.node.metadata.port`` of ``8080`` reads as the double
    8080.0. ``xds.node`` itself is the serialized ``Node`` message (fields 1 ``id``, 2 ``cluster``,
    3 ``metadata``); fields other than these three are not modelled (NotFound).
    """

    id: str = "emulator-node"
    cluster: str = "emulator-cluster"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not isinstance(self.cluster, str):
            raise ConfigError("a node's id and cluster are strings")
        if not isinstance(self.metadata, Mapping):
            raise ConfigError("a node's metadata is a mapping (a protobuf Struct)")
        try:
            _struct_value(self.metadata)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def of(cls, value: Node | Mapping[str, Any] | None) -> Node:
        """A :class:`Node` from a Node, a mapping of its fields, or ``None`` (the default node)."""
        if value is None:
            return cls()
        if isinstance(value, Node):
            return value
        unknown = set(value) - {"id", "cluster", "metadata"}
        if unknown:
            raise ConfigError(f"a node has id, cluster and metadata; not {', '.join(sorted(unknown))}")
        return cls(**value)

    def attribute(self) -> dict[str, Any]:
        """The message as CEL walks it: ``id``, ``cluster`` and the unwrapped ``metadata`` Struct."""
        return {"id": self.id, "cluster": self.cluster, "metadata": _struct_value(self.metadata)}

    def serialized(self) -> bytes:
        """``Node::SerializeToString()``: what ``proxy_get_property(["xds", "node"])`` returns."""
        out = _field_bytes(1, self.id.encode()) if self.id else b""
        out += _field_bytes(2, self.cluster.encode()) if self.cluster else b""
        return out + (_field_bytes(3, _struct(self.metadata)) if self.metadata else b"")


def _struct_value(value: Any) -> Any:
    """A value as a ``google.protobuf.Value`` holds it: numbers are doubles."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _struct_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_struct_value(v) for v in value]
    raise TypeError(f"node metadata holds JSON-like values (Struct), not {type(value).__name__}")


def _field_bytes(number: int, data: bytes) -> bytes:
    return encode_uleb(number << 3 | 2) + encode_uleb(len(data)) + data


def _struct(fields: Mapping[str, Any]) -> bytes:
    """``google.protobuf.Struct``: ``map<string, Value> fields = 1`` (keys sorted, deterministic)."""
    return b"".join(_field_bytes(1, _field_bytes(1, str(k).encode()) + _field_bytes(2, _value(v))) for k, v in sorted(fields.items()))


def _value(v: Any) -> bytes:
    """``google.protobuf.Value``: null 1, number 2, string 3, bool 4, struct 5, list 6."""
    if v is None:
        return b"\x08\x00"
    if isinstance(v, bool):
        return b"\x20" + (b"\x01" if v else b"\x00")
    if isinstance(v, int | float):
        return b"\x11" + struct.pack("<d", float(v))
    if isinstance(v, str):
        return _field_bytes(3, v.encode())
    if isinstance(v, Mapping):
        return _field_bytes(5, _struct(v))
    if isinstance(v, list | tuple):
        return _field_bytes(6, b"".join(_field_bytes(1, _value(x)) for x in v))
    raise TypeError(f"node metadata holds JSON-like values (Struct), not {type(v).__name__}")
