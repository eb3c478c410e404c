"""Property lookup: ``plugin_*`` attributes, values set by the filter, and host-provided trees.

Lookup order follows Envoy (abi-spec.md §7.1): the Wasm attributes ``plugin_name``,
``plugin_root_id``, ``plugin_vm_id``; then filter state written with ``proxy_set_property``
(stream contexts only); then the properties the test gave to the plugin and the host, walked by
path segment (map key, or decimal list index). Values are serialized as Envoy does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from abi import Status, encode_value

from .attributes import MISSING, WRAPPER, root_attribute, stream_attribute

if TYPE_CHECKING:
    from .contexts import ContextBase

__all__ = ["lookup", "resolve_property", "set_filter_state"]

_MISSING = object()


def lookup(tree: Any, path: tuple[bytes, ...]) -> Any:
    """Walk ``tree`` (nested mappings and lists) along ``path``; ``_MISSING`` when absent."""
    node = tree
    for seg in path:
        if isinstance(node, Mapping):
            key = seg.decode(errors="surrogateescape")
            if key in node:
                node = node[key]
            elif seg in node:
                node = node[seg]
            else:
                return _MISSING
        elif isinstance(node, list | tuple) and seg.isdigit():
            idx = int(seg)
            if idx >= len(node):
                return _MISSING
            node = node[idx]
        else:
            return _MISSING
    return node


def _encoded(value: Any) -> tuple[int, bytes]:
    try:
        return Status.Ok, encode_value(value)
    except TypeError:
        return Status.SerializationFailure, b""


def resolve_property(ctx: ContextBase, path: tuple[bytes, ...]) -> tuple[int, bytes]:
    """``(status, serialized value)`` of a decoded property path, as the context ``ctx`` sees it."""
    if not path:
        return Status.SerializationFailure, b""
    plugin = ctx.root
    host = ctx.host
    head = path[0]
    if head in (b"plugin_name", b"plugin_root_id", b"plugin_vm_id"):
        if plugin is None or len(path) > 1:
            return Status.NotFound, b""
        value = {b"plugin_name": plugin.name, b"plugin_root_id": plugin.root_id, b"plugin_vm_id": ctx.vm.vm_id}[head]
        return Status.Ok, value.encode()
    stream = ctx.stream
    if stream is not None:
        raw = b"\0".join(path)
        if raw in stream.filter_state:
            return Status.Ok, stream.filter_state[raw]
    for tree in (plugin.properties if plugin is not None else None, host.properties):
        if tree is None:
            continue
        node = lookup(tree, path)
        if node is not _MISSING:
            return _encoded(node)
    value = stream_attribute(stream, path) if stream is not None else root_attribute(host.node, path)
    if value is MISSING:
        return Status.NotFound, b""
    if value is WRAPPER:
        return Status.SerializationFailure, b""
    return _encoded(value)


def set_filter_state(filter_state: dict[bytes, bytes], raw_path: bytes, value: bytes) -> Status:
    """``proxy_set_property`` on a stream: Envoy writes the value into the stream's filter state."""
    key = b"\0".join(p for p in raw_path.split(b"\0") if p) if raw_path.endswith(b"\0") else raw_path
    filter_state[key] = value
    return Status.Ok
