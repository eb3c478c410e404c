"""The engine protocol: the only surface of a wasm engine the rest of the emulator sees.

An engine compiles bytes into a module, links host functions into it, and instantiates it. An
instance exposes raw export callers (plain ``int`` in, ``int`` out), a :class:`GuestMemory` with a
cached view, exported globals, fuel and a deadline where the engine has them. Every failure comes
out as one of the errors below, so nothing above this layer imports an engine.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from abi.records import field, record

__all__ = [
    "CompileError",
    "demangle",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Frame",
    "GuestMemory",
    "GuestTrap",
    "HostFunction",
    "Instance",
    "LinkError",
    "Linked",
    "MemoryAccessError",
    "Outline",
    "ValueTypes",
]

ValueTypes = tuple[str, ...]
ExportCaller = Callable[..., int | None]

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class EngineError(Exception):
    """Base class of every error the engine layer raises."""


class CompileError(EngineError):
    """The engine refused the module (malformed or invalid wasm)."""


class LinkError(EngineError):
    """An import could not be satisfied, or an instantiation failed."""


class MemoryAccessError(EngineError):
    """A guest pointer and size fall outside linear memory (ABI status InvalidMemoryAccess)."""

    def __init__(self, ptr: int, size: int, memory_size: int) -> None:
        super().__init__(f"guest memory access [{ptr}, {ptr}+{size}) is outside linear memory of {memory_size} bytes")
        self.ptr, self.size, self.memory_size = ptr, size, memory_size


@record(frozen=True)
class Frame:
    """One guest stack frame of a trap backtrace."""

    func_index: int
    func_name: str | None = None
    module_offset: int | None = None

    def __str__(self) -> str:
        name = demangle(self.func_name) if self.func_name else f"<func {self.func_index}>"
        return f"{name} @ 0x{self.module_offset:x}" if self.module_offset is not None else name


_RUST_ESCAPES = {
    "$LT$": "<",
    "$GT$": ">",
    "$RF$": "&",
    "$BP$": "*",
    "$C$": ",",
    "$SP$": "@",
    "$u20$": " ",
    "$u27$": "'",
    "$u5b$": "[",
    "$u5d$": "]",
    "$u7b$": "{",
    "$u7d$": "}",
    "$u7e$": "~",
}


def demangle(name: str) -> str:
    """Readable Rust (legacy ``_ZN...E``) symbol names; other names unchanged.

    ``_ZN10proxy_wasm9hostcalls13get_map_value17h...E`` -> ``proxy_wasm::hostcalls::get_map_value``.
    """
    if not name.startswith("_ZN") or not name.endswith("E"):
        return name
    body, parts, i = name[3:-1], [], 0
    while i < len(body):
        j = i
        while j < len(body) and body[j].isdigit():
            j += 1
        if j == i:
            return name
        n = int(body[i:j])
        parts.append(body[j : j + n])
        i = j + n
    if parts and len(parts[-1]) == 17 and parts[-1][0] == "h" and all(c in "0123456789abcdef" for c in parts[-1][1:]):
        parts.pop()
    out = []
    for part in parts:
        part = (part[1:] if part.startswith("_$") else part).replace("..", "::")
        for esc, ch in _RUST_ESCAPES.items():
            part = part.replace(esc, ch)
        out.append(part)
    return "::".join(out)


class GuestTrap(EngineError):
    """The guest trapped (or a host function raised) during a call into the guest.

    ``kind`` is ``"trap"`` for a wasm trap, ``"host"`` when a Python host function raised (the
    exception is ``cause`` and ``__cause__``), ``"interrupt"`` for a passed deadline and
    ``"fuel"`` for exhausted fuel.
    """

    def __init__(
        self,
        message: str,
        *,
        export: str = "",
        frames: tuple[Frame, ...] = (),
        kind: str = "trap",
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.export = export
        self.frames = frames
        self.kind = kind
        self.cause = cause

    def backtrace(self) -> str:
        """The guest backtrace, innermost frame first, one frame per line."""
        return "\n".join(f"  {i}: {f}" for i, f in enumerate(self.frames)) or "  (no guest frames)"

    def __str__(self) -> str:
        where = f" in {self.export}" if self.export else ""
        return f"guest {self.kind}{where}: {self.message}\nguest backtrace:\n{self.backtrace()}"


@record(frozen=True)
class HostFunction:
    """A Python implementation of one import: ``fn(*int_args) -> int | None``.

    Arguments arrive as unsigned ``int`` for i32 and signed ``int`` for i64. The function returns
    an ``int`` when ``results`` has one entry, ``None`` when it is empty.
    """

    fn: Callable[..., int | None]
    params: ValueTypes
    results: ValueTypes


@record(frozen=True)
class Outline:
    """A module's function imports and exports, as the loader parsed them."""

    imports: tuple[tuple[str, str, ValueTypes, ValueTypes] | tuple[str, str, None, None], ...]
    """``(module, name, params, results)``; params/results are ``None`` for non-function imports."""
    exports: dict[str, tuple[ValueTypes, ValueTypes] | None]
    memory_export: str | None


@record(frozen=True)
class EngineConfig:
    """Knobs that change the compiled code, so they are part of the module-cache key."""

    fuel: bool = False
    """Count guest instructions (wasmtime fuel); costs up to ~1.8x on call-heavy code."""
    epoch: bool = False
    """Allow per-call deadlines (wasmtime epoch interruption)."""
    max_memory_pages: int | None = None
    """Refuse memory growth past this many 64 KiB pages."""
    opt_level: str = "speed"

    def fingerprint(self) -> str:
        """A stable string identifying this configuration for cache keys."""
        return f"fuel={int(self.fuel)},epoch={int(self.epoch)},opt={self.opt_level}"


class GuestMemory:
    """Linear memory through a cached ``memoryview``, refreshed only when an access goes past it.

    Wasm memories never shrink and both engines keep the base address across growth, so the
    cached view is valid for every address below its length. An engine's memory subclasses it and
    gives ``_fresh_view``; the compiled accelerator's ``LinearMemory`` overrides every access in C.
    (Not an ABC: in the compiled speed mode it is an extension type, ``base.pxd``, whose accesses
    the host calls make as C calls.)
    """

    __slots__ = ("_size", "_view")

    def __init__(self) -> None:
        self._view: memoryview = memoryview(b"")
        self._size = 0

    def _fresh_view(self) -> memoryview:
        """Return a byte view of the whole current linear memory."""
        raise NotImplementedError(f"{type(self).__name__} gives no view of its memory")

    def _check(self, ptr: int, size: int) -> memoryview:
        end = ptr + size
        if end > self._size:
            self._view = self._fresh_view()
            self._size = len(self._view)
            if end > self._size or ptr < 0 or size < 0:
                raise MemoryAccessError(ptr, size, self._size)
        return self._view

    def _byte_size(self) -> int:
        """The current size in bytes (an engine may answer without building a view)."""
        return len(self._fresh_view())

    @property
    def size(self) -> int:
        """Current size of linear memory in bytes (the cached view is refreshed on the next access past it)."""
        return self._byte_size()

    def view(self, ptr: int, size: int) -> memoryview:
        """A zero-copy view of ``size`` bytes at ``ptr`` (valid until the memory grows)."""
        return self._check(ptr, size)[ptr : ptr + size]

    def read(self, ptr: int, size: int) -> bytes:
        """Copy ``size`` bytes out of the guest."""
        end = ptr + size
        if end <= self._size and ptr >= 0 and size > 0:  # the hot path: no call, no view refresh
            return self._view[ptr:end].tobytes()
        if size == 0:
            return b""
        return bytes(self._check(ptr, size)[ptr:end])

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` into the guest at ``ptr``."""
        n = len(data)
        if n:
            self._check(ptr, n)[ptr : ptr + n] = data

    def u32(self, ptr: int) -> int:
        """Read a little-endian u32."""
        return _U32.unpack_from(self._check(ptr, 4), ptr)[0]

    def put_u32(self, ptr: int, value: int) -> None:
        """Write a little-endian u32."""
        _U32.pack_into(self._check(ptr, 4), ptr, value & 0xFFFFFFFF)

    def put_u32_pair(self, ptr_a: int, a: int, ptr_b: int, b: int) -> None:
        """Write two little-endian u32s (the ``ptr*``/``size*`` out-parameters of a copy-out)."""
        size = self._size
        if ptr_a + 4 > size or ptr_b + 4 > size:  # off the hot path: the same checks, in order, as two put_u32
            self._check(ptr_a, 4)
            self._check(ptr_b, 4)
        view = self._view
        _U32.pack_into(view, ptr_a, a & 0xFFFFFFFF)
        _U32.pack_into(view, ptr_b, b & 0xFFFFFFFF)

    def u64(self, ptr: int) -> int:
        """Read a little-endian u64."""
        return _U64.unpack_from(self._check(ptr, 8), ptr)[0]

    def put_u64(self, ptr: int, value: int) -> None:
        """Write a little-endian u64."""
        _U64.pack_into(self._check(ptr, 8), ptr, value & 0xFFFFFFFFFFFFFFFF)

    def snapshot(self) -> bytes:
        """A copy of the whole linear memory."""
        return bytes(self._check(0, self.size))

    def restore(self, image: bytes) -> None:
        """Write a snapshot back (the memory must not be smaller than the image)."""
        self._check(0, len(image))[: len(image)] = image


class Instance(ABC):
    """One instantiated module: exports, memory, globals, fuel and deadline."""

    memory: GuestMemory | None

    @abstractmethod
    def export(self, name: str) -> ExportCaller | None:
        """A fast caller for an exported function, or ``None`` if it is not exported.

        Calling it runs the guest; a trap raises :class:`GuestTrap` naming the export.
        """

    @abstractmethod
    def grow_memory(self, pages: int) -> None:
        """Grow the exported linear memory by ``pages`` 64 KiB pages."""

    @abstractmethod
    def global_get(self, name: str) -> int | float:
        """Value of an exported global."""

    @abstractmethod
    def global_set(self, name: str, value: int | float) -> None:
        """Set an exported mutable global."""

    def memory_named(self, name: str) -> GuestMemory | None:
        """Another exported memory (the coverage memory), or ``None``: engines without multi-memory have none."""
        return None

    def set_fuel(self, fuel: int) -> None:
        """Give the next calls ``fuel`` units (about one per wasm operator)."""
        raise NotImplementedError(f"{type(self).__name__}: this engine cannot count or limit guest instructions (no fuel)")

    def get_fuel(self) -> int:
        """Fuel left."""
        raise NotImplementedError(f"{type(self).__name__}: this engine cannot count or limit guest instructions (no fuel)")

    def set_deadline(self, seconds: float | None) -> None:
        """Interrupt any guest call that runs longer than ``seconds`` (``None``: no limit)."""
        raise NotImplementedError(f"{type(self).__name__}: this engine cannot interrupt a running guest (no epochs)")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the instance's engine resources."""


class Linked(ABC):
    """A module with its host functions resolved, ready to be instantiated many times."""

    @abstractmethod
    def instantiate(self, deadline_s: float | None = None) -> Instance:
        """A fresh instance (the wasm start function runs here, within ``deadline_s`` if the engine can interrupt)."""


@record
class Engine(ABC):
    """One wasm engine with one configuration."""

    config: EngineConfig = field(default_factory=EngineConfig)
    name: str = "engine"
    capabilities: frozenset[str] = frozenset()
    unsupported_proposals: frozenset[str] = frozenset()
    """WebAssembly proposals (names as in :attr:`ModuleInfo.proposals`) this engine refuses."""

    @property
    @abstractmethod
    def version(self) -> str:
        """Version of the engine package, part of module-cache keys."""

    @abstractmethod
    def compile(self, wasm: bytes) -> Any:
        """Compile a module; raise :class:`CompileError` with the engine's reason."""

    def validate(self, wasm: bytes) -> None:
        """Check a module as the engine's validator does, without keeping it; raise :class:`CompileError`."""
        self.compile(wasm)

    @abstractmethod
    def serialize(self, module: Any) -> bytes:
        """Compiled artifact bytes for the on-disk cache."""

    @abstractmethod
    def deserialize_file(self, path: str) -> Any:
        """Load a cached artifact; raise :class:`CompileError` if it is unusable."""

    @abstractmethod
    def link(self, module: Any, imports: Mapping[tuple[str, str], HostFunction], outline: Outline | None = None) -> Linked:
        """Resolve the module's imports from ``imports``; raise :class:`LinkError` naming what is missing.

        ``outline`` (optional) describes the module's imports and exports when the caller already
        parsed them, which saves the engine's slower type reflection.
        """

    def cache_key(self) -> str:
        """What a compiled artifact depends on besides the wasm bytes."""
        return f"{self.name}-{self.version}-{self.config.fingerprint()}"
