"""Make single host calls with chosen arguments through fixtures/wat/hostcalls.wasm."""

from __future__ import annotations

import struct
from typing import Any

from emulator import Host
from tests.conftest import wat_module

SCRATCH = 1024
RET_PTR, RET_LEN = 0, 4


class Harness:
    """A started hostcalls.wasm plugin; ``call(name, *args)`` runs ``t_<name>`` in its root context."""

    def __init__(self, engine: str, module: str = "hostcalls", **load: Any) -> None:
        self.host = Host(
            engine=engine,
            seed=load.pop("seed", 0),
            properties=load.pop("host_properties", None),
            log_level=load.pop("log_level", 0),
            node=load.pop("node", None),
            trace=load.pop("trace", True),
        )
        self.plugin = self.host.load(wat_module(module), **load)
        self.vm = self.plugin.vm
        self.mem = self.vm.memory
        self._next = SCRATCH

    def put(self, data: bytes | str) -> tuple[int, int]:
        """Copy bytes into guest scratch memory; returns ``(ptr, len)``."""
        raw = data.encode() if isinstance(data, str) else data
        ptr = self._next
        self.mem.write(ptr, raw)
        self._next += len(raw) + 8
        return ptr, len(raw)

    def call(self, name: str, *args: int, context_id: int | None = None) -> int:
        ctx = self.plugin.root_context_id if context_id is None else context_id
        return self.vm.call(f"t_{name}", *args, context_id=ctx)

    def returned(self) -> bytes:
        """The data a ``ptr**`` host call returned through (RET_PTR, RET_LEN)."""
        ptr, size = struct.unpack("<II", self.mem.read(RET_PTR, 8))
        return b"" if size == 0 else self.mem.read(ptr, size)

    def returned_ptr(self) -> int:
        return self.mem.u32(RET_PTR)


def open_stream(h: Harness, *, request=None, response=None, request_trailers=None, response_trailers=None):
    """A stream of the harness plugin whose maps are open as inside the matching callbacks."""
    from emulator.http.headers import HeaderMap

    stream = h.plugin.http_stream()
    if request is not None:
        stream.request.headers = HeaderMap(request, kind="request")
        stream.request.headers_open = True
    if response is not None:
        stream.response.headers = HeaderMap(response, kind="response")
        stream.response.headers_open = True
    if request_trailers is not None:
        stream.request.trailers = HeaderMap(request_trailers, kind="trailers")
        stream.request.trailers_open = True
    if response_trailers is not None:
        stream.response.trailers = HeaderMap(response_trailers, kind="trailers")
        stream.response.trailers_open = True
    return stream
