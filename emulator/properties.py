"""Property lookup: ``plugin_*`` attributes, values set by the filter, and host-provided trees.

Lookup of the first path segment follows Envoy's ``Context::findValue`` (abi-spec.md §7.1): the
properties the test gave to the plugin and the host override any path; then the Envoy attributes
(CEL activation tokens ``request``, ``response``, ... ``xds``, and the Wasm tokens ``plugin_name``,
``plugin_root_id``, ``plugin_vm_id``, ``connection_id``); any other name is the filter-state object
``wasm.<name>`` that ``proxy_set_property`` wrote (stream contexts only). Values are serialized as
Envoy does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from abi import Status, encode_value

from .attributes import ENVOY_NAMES, MISSING, WRAPPER, lookup, root_attribute, stream_attribute

if TYPE_CHECKING:
    from .contexts import ContextBase

__all__ = ["WASM_PREFIX", "resolve_property", "set_filter_state"]

WASM_PREFIX = b"wasm."
"""Envoy's ``CelStateKeyPrefix``: the filter-state key of ``proxy_set_property(k, v)`` is ``wasm.k``."""


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
    for tree in (plugin.properties if plugin is not None else None, host.properties):
        if tree is None:
            continue
        node = lookup(tree, path)
        if node is not MISSING:
            return _encoded(node)
    value = stream_attribute(stream, path) if stream is not None else root_attribute(host.node, path)
    if value is MISSING and stream is not None and head not in ENVOY_NAMES:
        value = _wasm_state(stream.filter_state, path)
    if value is MISSING:
        return Status.NotFound, b""
    if value is WRAPPER:
        return Status.SerializationFailure, b""
    return _encoded(value)


def _wasm_state(filter_state: dict[bytes, bytes], path: tuple[bytes, ...]) -> Any:
    """Envoy's fallback for a name that is no attribute: the CelState ``wasm.<name>`` (context.cc
    ``Context::findValue``: ``absl::StrCat(CelStateKeyPrefix, name)``). Its default type is bytes,
    which has no fields, so a longer path finds nothing."""
    value = filter_state.get(WASM_PREFIX + path[0])
    return MISSING if value is None or len(path) > 1 else value


def set_filter_state(ctx: Any, raw_path: bytes, value: bytes) -> Status:
    """``proxy_set_property`` on a stream: Envoy writes the CelState ``wasm.<raw path bytes>`` into
    the stream's filter state (context.cc ``Context::setProperty``: ``absl::StrAppend(&key,
    CelStateKeyPrefix, path)``); ``get_property([name])`` reads ``wasm.<name>`` back, and CEL's
    ``filter_state`` map takes the full key (``filter_state["wasm.<name>"]``).

    A path with a NUL in it (several segments, or the C++ SDK's trailing NUL) is stored under its
    raw bytes, which ``get_property`` never looks up (it prefixes only the first segment): the
    value is written but cannot be read back, as in Envoy, and the stream notes it.
    """
    if b"\0" in raw_path:
        shown = raw_path.decode(errors="replace").replace("\0", "\\0")
        ctx.notes.append(
            f"set_property path '{shown}' has a NUL: Envoy stores filter state 'wasm.{shown}', which get_property cannot read back (it looks up wasm.<first segment>)"
        )
    ctx.filter_state[WASM_PREFIX + raw_path] = value
    return Status.Ok
