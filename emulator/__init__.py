"""proxy-wasm-emulator: an embeddable Python proxy-wasm host for testing, fuzzing and benchmarking filters."""

from __future__ import annotations

import gc as _gc

# Importing the package makes tens of thousands of objects and no garbage: the collector, run
# every 700 allocations, would walk them some twenty times (1 ms). It is paused until the package
# is imported, and left as it was found.
_collecting = _gc.isenabled()
_gc.disable()

try:
    from abi import FailurePolicy, FilterDataStatus, FilterHeadersStatus, FilterStatus, FilterTrailersStatus, LogLevel, Status

    from . import speedups  # noqa: F401 - first of the package: it installs the finder of the compiled request-path modules
    from .clock import DEFAULT_EPOCH_NS, VirtualClock
    from .engines import EngineConfig, available_engines
    from .errors import (
        CallbackError,
        ConfigError,
        EmulatorError,
        HostCallNotImplemented,
        InputWarning,
        ModuleLoadError,
        PluginStartError,
        ProcExit,
        RestrictedHostCall,
        UnknownImportsError,
    )
    from .host import Host
    from .http.chain import ChainedStream, FilterChain
    from .http.headers import HeaderMap
    from .http.stream import HttpStream, StreamStateError
    from .http.types import CallbackRecord, HttpMessage, LocalResponse, Request, Response
    from .logs import LogRecord
    from .plugin import Plugin
    from .stream_info import ConnectionInfo, Node
    from .vm.cache import ModuleCache
    from .vm.instance import Vm, VmFailedError
finally:
    if _collecting:
        _gc.enable()

__all__ = [
    "DEFAULT_EPOCH_NS",
    "FailurePolicy",
    "FilterDataStatus",
    "FilterHeadersStatus",
    "FilterStatus",
    "FilterTrailersStatus",
    "LogLevel",
    "Status",
    "CallbackError",
    "CallbackRecord",
    "ChainedStream",
    "FilterChain",
    "ConnectionInfo",
    "HeaderMap",
    "HttpMessage",
    "HttpStream",
    "LocalResponse",
    "Request",
    "Response",
    "StreamStateError",
    "ConfigError",
    "EmulatorError",
    "EngineConfig",
    "Host",
    "HostCallNotImplemented",
    "InputWarning",
    "LogRecord",
    "ModuleCache",
    "ModuleLoadError",
    "Node",
    "Plugin",
    "PluginStartError",
    "ProcExit",
    "RestrictedHostCall",
    "UnknownImportsError",
    "VirtualClock",
    "Vm",
    "VmFailedError",
    "available_engines",
]
__version__ = "0.1.0"
