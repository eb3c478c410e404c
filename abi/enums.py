"""Every enumeration of the proxy-wasm ABI, with the values Envoy and proxy-wasm-cpp-host use.

The numbering follows ``proxy_wasm_common.h`` of the C++ SDK and the spec (abi-spec.md §3).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = [
    "Action",
    "BufferFlags",
    "BufferType",
    "FailState",
    "FailurePolicy",
    "FilterDataStatus",
    "FilterHeadersStatus",
    "FilterMetadataStatus",
    "FilterStatus",
    "FilterTrailersStatus",
    "GrpcStatus",
    "LogLevel",
    "MapType",
    "MetricType",
    "PeerType",
    "Status",
    "StreamType",
    "WasiClock",
    "WasiErrno",
]


class Status(IntEnum):
    """``proxy_status_t`` / cpp-host ``WasmResult``: what every ``proxy_*`` host function returns."""

    Ok = 0
    NotFound = 1
    BadArgument = 2
    SerializationFailure = 3
    ParseFailure = 4
    BadExpression = 5
    InvalidMemoryAccess = 6
    Empty = 7
    CasMismatch = 8
    ResultMismatch = 9
    InternalFailure = 10
    BrokenConnection = 11
    Unimplemented = 12


class LogLevel(IntEnum):
    """``proxy_log_level_t``; Envoy maps it 1:1 onto spdlog levels."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5


class BufferType(IntEnum):
    """``proxy_buffer_type_t``: the buffers ``proxy_get_buffer_bytes`` can read."""

    HTTP_REQUEST_BODY = 0
    HTTP_RESPONSE_BODY = 1
    DOWNSTREAM_DATA = 2
    UPSTREAM_DATA = 3
    HTTP_CALL_RESPONSE_BODY = 4
    GRPC_RECEIVE_BUFFER = 5
    VM_CONFIGURATION = 6
    PLUGIN_CONFIGURATION = 7
    CALL_DATA = 8


class BufferFlags(IntEnum):
    """Flags written by ``proxy_get_buffer_status`` (cpp-host never sets any)."""

    NONE = 0
    END_OF_STREAM = 1


class MapType(IntEnum):
    """``proxy_map_type_t`` in the final 0.1.0 and all 0.2.x numbering."""

    HTTP_REQUEST_HEADERS = 0
    HTTP_REQUEST_TRAILERS = 1
    HTTP_RESPONSE_HEADERS = 2
    HTTP_RESPONSE_TRAILERS = 3
    GRPC_RECEIVE_INITIAL_METADATA = 4
    GRPC_RECEIVE_TRAILING_METADATA = 5
    HTTP_CALL_RESPONSE_HEADERS = 6
    HTTP_CALL_RESPONSE_TRAILERS = 7


class PeerType(IntEnum):
    """``proxy_peer_type_t`` / cpp-sdk ``CloseType``: who closed a connection."""

    UNKNOWN = 0
    LOCAL = 1
    REMOTE = 2


class MetricType(IntEnum):
    """``proxy_metric_type_t``; the low two bits of a metric id carry it."""

    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2


class StreamType(IntEnum):
    """``proxy_stream_type_t`` (0.2.0+), the argument of continue/close stream."""

    HTTP_REQUEST = 0
    HTTP_RESPONSE = 1
    DOWNSTREAM = 2
    UPSTREAM = 3


class Action(IntEnum):
    """The spec's ``proxy_action_t``: what Rust and Go SDK callbacks return."""

    CONTINUE = 0
    PAUSE = 1


class _NamedResult(IntEnum):
    """A step result that also compares equal to its name: ``stream.send_request_headers(...) == "Continue"``."""

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, str):
            return self.name == other
        return int.__eq__(self, other)

    def __ne__(self, other: Any) -> bool:
        return not self == other

    __hash__ = IntEnum.__hash__


class FilterHeadersStatus(_NamedResult):
    """Envoy's headers-callback result after cpp-host's conversion (abi-spec §3.8)."""

    Continue = 0
    StopIteration = 1
    ContinueAndEndStream = 2
    StopAllIterationAndBuffer = 3
    StopAllIterationAndWatermark = 4


class FilterDataStatus(_NamedResult):
    """Envoy's body-callback result."""

    Continue = 0
    StopIterationAndBuffer = 1
    StopIterationAndWatermark = 2
    StopIterationNoBuffer = 3


class FilterTrailersStatus(_NamedResult):
    """Envoy's trailers-callback result."""

    Continue = 0
    StopIteration = 1


class FilterMetadataStatus(_NamedResult):
    """Envoy's metadata-callback result (always treated as Continue)."""

    Continue = 0


class FilterStatus(_NamedResult):
    """Envoy's network-filter result for ``on_new_connection`` / ``on_*_data``."""

    Continue = 0
    StopIteration = 1


class GrpcStatus(IntEnum):
    """gRPC status codes, as carried by ``proxy_on_grpc_close`` and local replies."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16
    INVALID_CODE = -1


class WasiErrno(IntEnum):
    """The WASI errno values cpp-host returns."""

    SUCCESS = 0
    BADF = 8
    NOTDIR = 20
    FAULT = 21
    INVAL = 28
    NOENT = 44
    NOSYS = 52
    NOTSUP = 58
    NOTCAPABLE = 76


class WasiClock(IntEnum):
    """WASI clock ids."""

    REALTIME = 0
    MONOTONIC = 1
    PROCESS_CPUTIME = 2
    THREAD_CPUTIME = 3


class FailurePolicy(IntEnum):
    """Envoy ``extensions.wasm.v3.FailurePolicy`` (UNSPECIFIED resolves to FAIL_CLOSED)."""

    UNSPECIFIED = 0
    FAIL_RELOAD = 1
    FAIL_CLOSED = 2
    FAIL_OPEN = 3


class FailState(IntEnum):
    """cpp-host ``FailState``: why a VM stopped working."""

    Ok = 0
    UnableToCreateVm = 1
    UnableToCloneVm = 2
    MissingFunction = 3
    UnableToInitializeCode = 4
    StartFailed = 5
    ConfigureFailed = 6
    RuntimeError = 7
