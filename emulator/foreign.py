"""Foreign functions: a registry of Python callables and Envoy's built-ins (abi-spec.md §1.14, §8).

A foreign function is ``fn(args: bytes) -> result``; the result is ``bytes`` (or ``str``), ``None``
(no result: the guest gets ptr=0, size=0), or ``(status, bytes | None)`` to return a status other
than Ok. Register your own with ``host.foreign_functions.register(name, fn)``; one that needs the
calling VM (its stream, its plugin) reads ``host.foreign_functions.current_vm`` during the call.

Built-ins registered on every host, as Envoy registers them (``foreign.cc``): ``compress`` and
``uncompress`` (zlib format), ``clear_route_cache``, ``declare_property`` and
``set_envoy_filter_state``. ``verify_signature``, ``sign`` and the CEL ``expr_*`` functions are not
provided (NotFound); register a stand-in if a filter needs one.

Like Envoy, the built-ins act on the context that is really running (``proxy_wasm::current_context_``),
not on the one chosen with ``proxy_set_effective_context``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from abi import BufferType, Status
from abi.records import record

from .buffer import Buffer
from .contexts import CallInputs

if TYPE_CHECKING:
    from .plugin import Plugin
    from .vm.instance import Vm

__all__ = ["FilterStateWrite", "ForeignCall", "ForeignFunctions", "PropertyDeclaration", "ProtobufError", "parse_protobuf"]

ForeignResult = bytes | str | None | tuple[int, bytes | str | None]
ForeignFunction = Callable[[bytes], ForeignResult]

WASM_TYPES = {0: "Bytes", 1: "String", 2: "FlatBuffers", 3: "Protobuf"}
"""``envoy.source.extensions.common.wasm.WasmType``; unknown values act as Bytes, as in Envoy."""
LIFE_SPANS = {0: "FilterChain", 1: "DownstreamRequest", 2: "DownstreamConnection"}
"""``envoy.source.extensions.common.wasm.LifeSpan``; unknown values act as FilterChain, as in Envoy."""


class ForeignCall(NamedTuple):
    """One ``proxy_call_foreign_function`` (or :meth:`ForeignFunctions.call`): what and with which outcome."""

    name: str
    args: bytes
    status: Status


@record(frozen=True)
class PropertyDeclaration:
    """A ``declare_property`` call Envoy accepted (a CelState prototype on the calling context)."""

    name: str
    readonly: bool
    type: str
    """``Bytes``, ``String``, ``FlatBuffers`` or ``Protobuf``."""
    schema: bytes
    span: str
    """``FilterChain``, ``DownstreamRequest`` or ``DownstreamConnection``."""
    vm_id: str
    context_id: int


@record(frozen=True)
class FilterStateWrite:
    """A ``set_envoy_filter_state`` call Envoy accepted."""

    path: str
    value: bytes
    span: str
    context_id: int


class ForeignFunctions:
    """The foreign-function registry of one host, with Envoy's built-ins and a record of calls."""

    def __init__(self) -> None:
        self._functions: dict[str, ForeignFunction] = {}
        self.calls: list[ForeignCall] = []
        """Every call, oldest first (unknown names too, with NotFound)."""
        self.current_vm: Vm | None = None
        """The VM whose guest is calling a foreign function right now (``None`` outside a call)."""
        self.declarations: list[PropertyDeclaration] = []
        """Every accepted ``declare_property``, oldest first."""
        self.filter_state_writes: list[FilterStateWrite] = []
        """Every accepted ``set_envoy_filter_state``, oldest first."""
        self.filter_state_keys: set[str] | None = None
        """Envoy answers NotFound for a path with no registered ObjectFactory. ``None`` (the default)
        accepts every path; a set accepts only those paths."""
        self._declared: dict[tuple[int, int], set[str]] = {}
        self.register("compress", self._compress)
        self.register("uncompress", self._uncompress)
        self.register("clear_route_cache", self._clear_route_cache)
        self.register("declare_property", self._declare_property)
        self.register("set_envoy_filter_state", self._set_envoy_filter_state)

    # -- registry ------------------------------------------------------------------------------
    def register(self, name: str, fn: ForeignFunction) -> None:
        """Add (or replace) foreign function ``name``."""
        if not callable(fn):
            raise TypeError(f"foreign function {name!r} must be callable, not {type(fn).__name__}")
        self._functions[name] = fn

    def unregister(self, name: str) -> None:
        """Remove ``name`` (built-ins too); the guest then gets NotFound."""
        self._functions.pop(name, None)

    @property
    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    # -- calling -------------------------------------------------------------------------------
    def call(self, name: str | bytes, args: bytes, vm: Vm | None = None) -> tuple[Status, bytes | None]:
        """Run ``name`` as the guest would: ``(status, result or None)``; NotFound for an unknown name.

        ``vm`` is the calling VM (what the built-ins act on); Python callers may leave it out.
        """
        key = name if isinstance(name, str) else bytes(name).decode("utf-8", "surrogateescape")
        args = bytes(args)
        fn = self._functions.get(key)
        if fn is None:
            self.calls.append(ForeignCall(key, args, Status.NotFound))
            return Status.NotFound, None
        saved = self.current_vm
        self.current_vm = vm
        try:
            status, result = _normalize(key, fn(args))
        finally:
            self.current_vm = saved
        self.calls.append(ForeignCall(key, args, status))
        return status, result

    def invoke_callback(self, plugin: Plugin, function_id: int, data: bytes | str = b"") -> bool:
        """Call the guest back: ``proxy_on_foreign_function(root, function_id, len(data))``.

        ``data`` is readable as buffer 8 (CallData) during the callback. Skipped for ABI 0.1.0
        modules, which have no such callback. Returns whether the guest ran the callback. A trap
        is recorded on the plugin, logged as Envoy logs it, and raised as :class:`CallbackError`.
        """
        vm = plugin.vm
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if vm.abi.version == "0.1.0" or not vm.has_export("proxy_on_foreign_function"):
            return False
        inputs = CallInputs(buffers={BufferType.CALL_DATA: Buffer(raw, mutable=False)})
        plugin.run("proxy_on_foreign_function", plugin.root_context_id, function_id, len(raw), inputs=inputs, reraise=True)
        return True

    # -- Envoy's built-ins ---------------------------------------------------------------------
    @staticmethod
    def _compress(args: bytes) -> ForeignResult:
        try:
            return zlib.compress(args)
        except zlib.error:  # pragma: no cover - zlib.compress does not fail on bytes
            return Status.SerializationFailure, None

    @staticmethod
    def _uncompress(args: bytes) -> ForeignResult:
        try:
            return zlib.decompress(args)
        except zlib.error:
            return Status.SerializationFailure, None

    def _context(self) -> Any:
        """The context that is really running in the calling VM (not the effective one)."""
        vm = self.current_vm
        return vm.running if vm is not None else None

    def _clear_route_cache(self, args: bytes) -> ForeignResult:
        ctx = self._context()
        if ctx is not None:
            ctx.clear_route_cache()
        return None

    def _declare_property(self, args: bytes) -> ForeignResult:
        try:
            fields = parse_protobuf(args)
            name = _string(fields, 1)
            readonly = _varint(fields, 2) != 0
            wasm_type = WASM_TYPES.get(_enum(fields, 3), "Bytes")
            schema = _bytes(fields, 4)
            span = LIFE_SPANS.get(_enum(fields, 5), "FilterChain")
        except ProtobufError:
            return Status.BadArgument, None
        vm, ctx = self.current_vm, self._context()
        context_id = ctx.id if ctx is not None else 0
        declared = self._declared.setdefault((id(vm), context_id), set())
        if name in declared:
            return Status.BadArgument, None
        declared.add(name)
        self.declarations.append(PropertyDeclaration(name, readonly, wasm_type, schema, span, vm.vm_id if vm is not None else "", context_id))
        return None

    def declared(self, name: str) -> PropertyDeclaration | None:
        """The first declaration of property ``name`` (any VM, any context), if any."""
        return next((d for d in self.declarations if d.name == name), None)

    def _set_envoy_filter_state(self, args: bytes) -> ForeignResult:
        try:
            fields = parse_protobuf(args)
            path = _string(fields, 1)
            value = _string(fields, 2)
            span = LIFE_SPANS.get(_enum(fields, 3), "FilterChain")
        except ProtobufError:
            return Status.BadArgument, None
        if self.filter_state_keys is not None and path not in self.filter_state_keys:
            return Status.NotFound, None
        ctx = self._context()
        stream = ctx.stream if ctx is not None else None
        if stream is None or not hasattr(stream, "filter_state"):
            return Status.NotFound, None
        stream.filter_state[path.encode()] = value.encode()
        self.filter_state_writes.append(FilterStateWrite(path, value.encode(), span, ctx.id))
        return None

    def __repr__(self) -> str:
        return f"<ForeignFunctions {', '.join(self.names)}>"


def _normalize(name: str, result: Any) -> tuple[Status, bytes | None]:
    status: int = Status.Ok
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError(f"foreign function {name!r} returned a {len(result)}-tuple; expected (status, bytes | None)")
        status, result = result
    if isinstance(result, str):
        result = result.encode()
    elif isinstance(result, bytearray | memoryview):
        result = bytes(result)
    if result is not None and not isinstance(result, bytes):
        raise TypeError(f"foreign function {name!r} returned {type(result).__name__}; expected bytes, str, None or (status, bytes | None)")
    return Status(int(status)), result


# -- a tiny protobuf decoder (just enough for Envoy's argument messages) --------------------------


class ProtobufError(ValueError):
    """The bytes are not a valid protobuf message (C++ ``ParseFromString`` would return false)."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(10):
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        if i == 9:
            break
    raise ProtobufError("varint longer than 10 bytes")


def _skip_field(data: bytes, pos: int, field: int, wire: int) -> tuple[Any, int]:
    if wire == 0:
        return _read_varint(data, pos)
    if wire in (1, 5):
        end = pos + (8 if wire == 1 else 4)
        if end > len(data):
            raise ProtobufError("truncated fixed-width field")
        return data[pos:end], end
    if wire == 2:
        size, pos = _read_varint(data, pos)
        if size > len(data) - pos:
            raise ProtobufError("length-delimited field overruns the message")
        return data[pos : pos + size], pos + size
    if wire == 3:  # a (deprecated) group: skip up to its matching end-group tag
        while True:
            tag, pos = _read_varint(data, pos)
            inner_field, inner_wire = tag >> 3, tag & 7
            if inner_wire == 4:
                if inner_field != field:
                    raise ProtobufError("mismatched end-group tag")
                return None, pos
            if inner_field == 0 or tag > 0xFFFFFFFF:
                raise ProtobufError("invalid tag")
            _, pos = _skip_field(data, pos, inner_field, inner_wire)
    raise ProtobufError(f"invalid wire type {wire}")


def parse_protobuf(data: bytes) -> dict[int, list[tuple[int, Any]]]:
    """Decode one message into ``{field number: [(wire type, value), ...]}`` (values in wire order).

    Varints become ``int``, length-delimited fields and fixed-width fields ``bytes``. Raises
    :class:`ProtobufError` where C++ protobuf refuses the input (truncation, bad tags or wire types).
    """
    fields: dict[int, list[tuple[int, Any]]] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0 or tag > 0xFFFFFFFF:
            raise ProtobufError("invalid tag")
        value, pos = _skip_field(data, pos, field, wire)
        if wire != 3:
            fields.setdefault(field, []).append((wire, value))
    return fields


def _last(fields: dict[int, list[tuple[int, Any]]], number: int, wire: int) -> Any:
    """The last occurrence of a singular field with the expected wire type (others are unknown fields)."""
    values = [v for w, v in fields.get(number, ()) if w == wire]
    return values[-1] if values else None


def _string(fields: dict[int, list[tuple[int, Any]]], number: int) -> str:
    raw = _last(fields, number, 2)
    try:
        return raw.decode("utf-8") if raw is not None else ""
    except UnicodeDecodeError:
        raise ProtobufError(f"field {number}: a proto3 string must be valid UTF-8") from None


def _bytes(fields: dict[int, list[tuple[int, Any]]], number: int) -> bytes:
    raw = _last(fields, number, 2)
    return bytes(raw) if raw is not None else b""


def _varint(fields: dict[int, list[tuple[int, Any]]], number: int) -> int:
    raw = _last(fields, number, 0)
    return raw if raw is not None else 0


def _enum(fields: dict[int, list[tuple[int, Any]]], number: int) -> int:
    value = _varint(fields, number) & 0xFFFFFFFF  # an enum is an int32 on the wire
    return value - (1 << 32) if value >= 1 << 31 else value
