"""Connection and routing facts Envoy knows about a stream, for the ``source.*``, ``destination.*``,
``connection.*``, ``upstream.*`` and ``xds.*`` attributes. Defaults are fixed and documented so
tests are deterministic; override any field per stream or per host."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConnectionInfo"]


@dataclass
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
    node: dict[str, Any] = field(default_factory=lambda: {"id": "emulator-node", "cluster": "emulator-cluster", "metadata": {}})
    metadata: dict[str, Any] = field(default_factory=dict)
    """Dynamic metadata: ``{"filter_metadata": {namespace: {key: value}}}``."""
