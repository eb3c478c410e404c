"""The wasmer 1.1 adapter (cranelift compiler), for Python 3.10 and older.

wasmer-python has native wheels only up to CPython 3.10 and has not been released since 2022; on
newer Pythons ``import wasmer`` fails and this adapter reports that clearly. It has no fuel and no
way to interrupt a running guest, so those limits raise ``NotImplementedError``; the memory
page limit is enforced on the host side only (checked after each call).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from abi.records import record

from ._codegen import build
from .base import (
    CompileError,
    Engine,
    Frame,
    GuestMemory,
    GuestTrap,
    HostFunction,
    Instance,
    Linked,
    LinkError,
)

__all__ = ["WasmerEngine", "wasmer_available"]

_FRAME = re.compile(r"at (\S+) \([^()\[\]]*\[(\d+)\]:0x([0-9a-f]+)\)")


def wasmer_available() -> str | None:
    """``None`` when wasmer and its cranelift compiler import; otherwise the reason they do not."""
    try:
        import wasmer  # noqa: F401
        import wasmer_compiler_cranelift  # noqa: F401
    except ImportError as exc:
        return f"wasmer is not usable on this Python ({exc}); it has native wheels only for CPython <= 3.10: pip install 'proxy-wasm-emulator[wasmer]' under Python 3.10"
    return None


@record
class WasmerEngine(Engine):
    """wasmer 1.1 with the cranelift compiler and the universal engine."""

    def __post_init__(self) -> None:
        reason = wasmer_available()
        if reason:
            raise RuntimeError(reason)
        import wasmer
        import wasmer_compiler_cranelift

        self.name = "wasmer"
        self.capabilities = frozenset()
        # wasmer 2.1 validates with these off; a tag section (id 13, "module linking" to it) makes it panic
        self.unsupported_proposals = frozenset({"compact-imports", "exceptions", "gc", "memory64", "multi-memory", "threads"})
        self._w = wasmer
        self._store = wasmer.Store(wasmer.engine.Universal(wasmer_compiler_cranelift.Compiler))
        if self.config.fuel or self.config.epoch:
            raise NotImplementedError("wasmer-python 1.1 has no fuel (instruction counting) and no epoch interruption: use the wasmtime engine")

    @property
    def version(self) -> str:
        if getattr(self, "_version", None) is None:
            from importlib.metadata import version

            self._version = f"{version('wasmer')}+cranelift-{version('wasmer-compiler-cranelift')}"
        return self._version

    def compile(self, wasm: bytes) -> Any:
        try:
            return self._w.Module(self._store, bytes(wasm))
        except Exception as exc:  # wasmer raises bare RuntimeError/ValueError for bad modules
            raise CompileError(f"wasmer cannot compile the module: {exc}") from None
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":
                raise
            # a Rust panic poisons the store's locks: later compiles need a new store
            import wasmer_compiler_cranelift

            self._store = self._w.Store(self._w.engine.Universal(wasmer_compiler_cranelift.Compiler))
            raise CompileError(f"wasmer panicked compiling the module: {exc}") from None

    def serialize(self, module: Any) -> bytes:
        return bytes(module.serialize())

    def deserialize_file(self, path: str) -> Any:
        try:
            with open(path, "rb") as fh:
                return self._w.Module.deserialize(self._store, fh.read())
        except Exception as exc:
            raise CompileError(f"unusable cached artifact {path}: {exc}") from None

    def link(self, module: Any, imports: Mapping[tuple[str, str], HostFunction], outline: Any = None) -> Linked:
        return _WasmerLinked(self, module, imports)


_TYPENAMES = {1: "i32", 2: "i64", 3: "f32", 4: "f64", 5: "v128", 6: "externref", 7: "funcref"}


def _typename(t: Any) -> str:
    return _TYPENAMES[int(t)]


class _WasmerLinked(Linked):
    def __init__(self, engine: WasmerEngine, module: Any, imports: Mapping[tuple[str, str], HostFunction]) -> None:
        w = engine._w
        self.engine = engine
        self.module = module
        self.pending: list[BaseException] = []
        self.namespaces: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for imp in module.imports:
            key = (imp.module, imp.name)
            if imp.name in self.namespaces.get(imp.module, {}):
                continue
            if not isinstance(imp.type, w.FunctionType):
                problems.append(f"{key[0]}.{key[1]}: imports a {type(imp.type).__name__}, only functions can be provided")
                continue
            want = (tuple(map(_typename, imp.type.params)), tuple(map(_typename, imp.type.results)))
            hf = imports.get(key)
            if hf is None:
                problems.append(f"{key[0]}.{key[1]}: not provided")
                continue
            if (hf.params, hf.results) != want:
                problems.append(f"{key[0]}.{key[1]}: the module expects {want}, the host provides {(hf.params, hf.results)}")
                continue
            fty = w.FunctionType([getattr(w.Type, p.upper()) for p in hf.params], [getattr(w.Type, r.upper()) for r in hf.results])
            self.namespaces.setdefault(key[0], {})[key[1]] = w.Function(engine._store, _host(self, hf), fty)
        if problems:
            raise LinkError("cannot link the module:\n  " + "\n  ".join(problems))

    def instantiate(self, deadline_s: float | None = None) -> Instance:
        return _WasmerInstance(self)


def _host(linked: _WasmerLinked, hf: HostFunction) -> Any:
    names = [f"a{i}" for i in range(len(hf.params))]
    args = ", ".join(f"{n} & MASK32" if t == "i32" else n for n, t in zip(names, hf.params, strict=True))
    ret = "fn(" + args + ")"
    if hf.results and hf.results[0] == "i32":
        ret = f"_s32({ret})"
    src = f"def host({', '.join(names)}):\n    try:\n        return {ret}\n    except BaseException as e:\n        pending.append(e)\n        raise\n"
    return build("host", src, {"fn": hf.fn, "pending": linked.pending, "_s32": _s32})


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


class _WasmerMemory(GuestMemory):
    __slots__ = ("_mem",)

    def __init__(self, mem: Any) -> None:
        super().__init__()
        self._mem = mem

    def _fresh_view(self) -> memoryview:
        return memoryview(self._mem.buffer).cast("B")


class _WasmerInstance(Instance):
    def __init__(self, linked: _WasmerLinked) -> None:
        w = linked.engine._w
        self.linked = linked
        io = w.ImportObject()
        for ns, funcs in linked.namespaces.items():
            io.register(ns, funcs)
        try:
            self.w = w.Instance(linked.module, io)
        except BaseException as exc:
            pending = linked.pending[-1] if linked.pending else None
            linked.pending.clear()
            if pending is not None:
                raise GuestTrap(f"start function failed: host function raised {pending!r}", export="(start)", kind="host", cause=pending) from pending
            text = str(exc)
            if isinstance(exc, RuntimeError) and ("unreachable" in text or "trap" in text.lower() or "<module>" in text):
                raise GuestTrap(text.split("\n", 1)[0].removeprefix("RuntimeError: "), export="(start)", kind="trap") from None
            raise LinkError(f"instantiation failed: {text.splitlines()[0]}") from None
        self._exports = dict(iter(self.w.exports))
        mem = next((v for v in self._exports.values() if isinstance(v, w.Memory)), None)
        self.memory = _WasmerMemory(mem) if mem is not None else None
        self._callers: dict[str, Any] = {}
        max_pages = linked.engine.config.max_memory_pages
        self._max_bytes = None if max_pages is None else max_pages * 65536

    def export(self, name: str) -> Any:
        caller = self._callers.get(name)
        if caller is None:
            func = self._exports.get(name)
            if not isinstance(func, self.linked.engine._w.Function):
                return None
            params = tuple(map(_typename, func.type.params))
            results = tuple(map(_typename, func.type.results))
            caller = self._callers[name] = self._make_caller(name, func, params, results)
        return caller

    def _make_caller(self, name: str, func: Any, params: tuple[str, ...], results: tuple[str, ...]) -> Any:
        names = [f"a{i}" for i in range(len(params))]
        args = ", ".join(f"_s32({n})" if t == "i32" else n for n, t in zip(names, params, strict=True))
        ret = "r & MASK32" if results and results[0] == "i32" else "r"
        limit = "    if max_bytes is not None and mem is not None and mem.size > max_bytes:\n        raise too_big(name)\n" if self._max_bytes else ""
        src = (
            f"def caller({', '.join(names)}):\n"
            "    try:\n"
            f"        r = func({args})\n"
            "    except BaseException as e:\n"
            "        t = fail(name, e)\n"
            "        raise t from getattr(t, 'cause', None)\n"
            f"{limit}"
            f"    return {ret}\n"
        )
        ns = {"func": func, "fail": self.fail, "name": name, "_s32": _s32, "max_bytes": self._max_bytes, "mem": self.memory, "too_big": self._too_big}
        return build("caller", src, ns)

    def _too_big(self, name: str) -> GuestTrap:
        return GuestTrap(
            f"linear memory grew past the limit of {self._max_bytes} bytes (checked after the call: wasmer cannot refuse a grow)", export=name, kind="trap"
        )

    def fail(self, export: str, exc: BaseException) -> BaseException:
        """Classify an exception out of a guest call: stashed host exception, or a wasm trap."""
        pending = self.linked.pending[-1] if self.linked.pending else None
        self.linked.pending.clear()
        if isinstance(pending, GuestTrap):
            return pending
        if pending is not None:
            trap = GuestTrap(f"host function raised {type(pending).__name__}: {pending}", export=export, kind="host", cause=pending)
            trap.__cause__ = pending
            return trap
        if isinstance(exc, GuestTrap):
            return exc
        text = str(exc)
        if not isinstance(exc, RuntimeError):
            return exc
        message = text.split("\n", 1)[0].removeprefix("RuntimeError: ")
        frames = tuple(Frame(int(i), None if n == "<unnamed>" else n, int(off, 16)) for n, i, off in _FRAME.findall(text))
        return GuestTrap(message, export=export, frames=frames, kind="trap")

    def grow_memory(self, pages: int) -> None:
        mem = next((v for v in self._exports.values() if isinstance(v, self.linked.engine._w.Memory)), None)
        if mem is not None and pages > 0:
            mem.grow(pages)

    def global_get(self, name: str) -> int | float:
        g = self._exports.get(name)
        if not isinstance(g, self.linked.engine._w.Global):
            raise KeyError(f"no exported global {name!r}")
        return g.value

    def global_set(self, name: str, value: int | float) -> None:
        g = self._exports.get(name)
        if not isinstance(g, self.linked.engine._w.Global):
            raise KeyError(f"no exported global {name!r}")
        g.value = value

    def close(self) -> None:
        self._callers.clear()
        self.memory = None
