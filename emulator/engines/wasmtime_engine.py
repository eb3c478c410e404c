"""The wasmtime adapter: the stock wasmtime-py objects plus a fast path through its C API.

Stock wasmtime-py costs ~8 us per host call and ~26 us per export call, all in Python type
handling. The fast path (engines.md) reaches the same C library through the ctypes handle that
wasmtime-py already loaded: ``wasmtime_linker_define_func_unchecked`` callbacks that read raw
16-byte value slots, ``wasmtime_func_call_unchecked`` with pre-wrapped arguments, and one cached
``memoryview`` over linear memory. Python exceptions raised by host functions are stashed, turned
into a wasm trap, and re-raised at the call site as :class:`GuestTrap`. If a symbol is missing
(a future wasmtime-py), the adapter falls back to the stock API.
"""

from __future__ import annotations

import ctypes
import re
import time
from collections.abc import Mapping
from ctypes import POINTER, byref, c_size_t, c_uint64, c_void_p, cast
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern

from abi.records import record

from . import accelerator
from ._codegen import build
from .base import (
    CompileError,
    Engine,
    EngineError,
    Frame,
    GuestMemory,
    GuestTrap,
    HostFunction,
    Instance,
    Linked,
    LinkError,
    MemoryAccessError,
    Outline,
)

__all__ = ["FAST_PATH_AVAILABLE", "WasmtimeEngine"]

_CALLBACK = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, POINTER(c_uint64), c_size_t)

_crossing = accelerator()  # the crossings in C; without it the ctypes crossings below, the reference

_EPOCH_TICK_S = 0.005


class _CApi:
    """The raw C functions of the fast path, resolved once; ``ok`` is False if any is missing."""

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.call = self._fn("wasmtime_func_call_unchecked", c_void_p)
        self.define = self._fn("wasmtime_linker_define_func_unchecked", c_void_p)
        self.trap_new = self._fn("wasmtime_trap_new", c_void_p, [ctypes.c_char_p, c_size_t])
        self.mem_data = self._fn("wasmtime_memory_data", c_void_p)
        self.mem_size = self._fn("wasmtime_memory_data_size", c_size_t)
        # no argtypes: both arguments are ctypes objects (the context pointer, a byref), so nothing
        # is converted per call (0.16 us a read instead of 0.28; metering reads fuel per callback)
        self.get_fuel = self._fn("wasmtime_context_get_fuel", c_void_p)
        self.set_fuel = self._fn("wasmtime_context_set_fuel", c_void_p, [c_void_p, c_uint64])
        self.ok = not self.missing

    def _fn(self, name: str, restype: Any, argtypes: list[Any] | None = None) -> Any:
        try:
            fn = ffi.dll[name]
        except AttributeError:
            self.missing.append(name)
            return None
        fn.restype = restype
        fn.argtypes = argtypes
        return fn


_C = _CApi()
FAST_PATH_AVAILABLE: bool = _C.ok

_GLOBAL_KINDS = {"i32": (ffi.WASMTIME_I32, "i32"), "i64": (ffi.WASMTIME_I64, "i64"), "f32": (ffi.WASMTIME_F32, "f32"), "f64": (ffi.WASMTIME_F64, "f64")}
"""The numeric value kinds of ``wasmtime_val_t`` a global is set with on the fast path."""

PRIVATE_API = (
    "wasmtime._ffi.wasmtime_global_set",
    "wasmtime._ffi.wasmtime_val_t",
    "wasmtime._ffi.WASMTIME_I32",
    "wasmtime._ffi.wasmtime_instance_export_get",
    "wasmtime._ffi.wasmtime_error_wasm_trace",
    "wasmtime._ffi.wasm_trap_t",
    "wasmtime._ffi.wasmtime_error_t",
    "wasmtime._extern.wrap_extern",
    "wasmtime.Trap._from_ptr",
    "wasmtime.WasmtimeError._from_ptr",
    "wasmtime.Store._context",
)
"""The private names of wasmtime-py this module uses (all of them, and no other module uses any):
a new wasmtime-py that renames one fails tests/unit/test_architecture.py, naming it."""


def missing_private_api() -> list[str]:
    """The entries of :data:`PRIVATE_API` this wasmtime-py does not have."""
    import importlib

    missing = []
    for dotted in PRIVATE_API:
        parts = dotted.split(".")
        try:
            obj: Any = importlib.import_module(".".join(parts[:2])) if parts[1].startswith("_") else importlib.import_module(parts[0])
            for attr in parts[2 if parts[1].startswith("_") else 1 :]:
                obj = getattr(obj, attr)
        except (ImportError, AttributeError):
            missing.append(dotted)
    return missing


"""Whether this wasmtime-py exposes every C function the fast path needs."""

_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64, "f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64}


@record
class WasmtimeEngine(Engine):
    """wasmtime with the C-API fast path (``fast=False`` forces the stock wasmtime-py API)."""

    fast: bool = True

    def __post_init__(self) -> None:
        self.name = "wasmtime"
        self.fast = self.fast and FAST_PATH_AVAILABLE
        self.capabilities = frozenset({"fuel", "epoch", "cow_instantiate", "mmap_cache"})
        self.unsupported_proposals = frozenset({"compact-imports"})  # wasmtime 50 has no switch for it
        cfg = wasmtime.Config()
        cfg.consume_fuel = self.config.fuel
        cfg.epoch_interruption = self.config.epoch
        cfg.cranelift_opt_level = self.config.opt_level
        self._wt = wasmtime.Engine(cfg)
        self._functypes: dict[tuple[tuple[str, ...], tuple[str, ...]], wasmtime.FuncType] = {}
        self._ticker: Any = None  # the threading.Thread, once started
        self._version: str | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = getattr(wasmtime, "__version__", None) or _dist_version("wasmtime")
        return self._version

    def compile(self, wasm: bytes) -> wasmtime.Module:
        try:
            return wasmtime.Module(self._wt, wasm)
        except wasmtime.WasmtimeError as exc:
            raise CompileError(f"wasmtime cannot compile the module: {_first_line(exc)}") from None

    def validate(self, wasm: bytes) -> None:
        try:
            wasmtime.Module.validate(self._wt, wasm)
        except wasmtime.WasmtimeError as exc:
            raise CompileError(f"wasmtime rejects the module: {_first_line(exc)}") from None

    def serialize(self, module: wasmtime.Module) -> bytes:
        return module.serialize()

    def deserialize_file(self, path: str) -> wasmtime.Module:
        try:
            return wasmtime.Module.deserialize_file(self._wt, path)
        except (wasmtime.WasmtimeError, OSError) as exc:
            raise CompileError(f"unusable cached artifact {path}: {_first_line(exc)}") from None

    def link(self, module: wasmtime.Module, imports: Mapping[tuple[str, str], HostFunction], outline: Outline | None = None) -> Linked:
        return _WasmtimeLinked(self, module, imports, outline)

    def functype(self, params: tuple[str, ...], results: tuple[str, ...]) -> wasmtime.FuncType:
        """A FuncType bound to this engine (sharing one across engines aborts the process)."""
        key = (params, results)
        ft = self._functypes.get(key)
        if ft is None:
            ft = self._functypes[key] = wasmtime.FuncType([_VALTYPES[p]() for p in params], [_VALTYPES[r]() for r in results])
        return ft

    def start_ticker(self) -> None:
        """Start the daemon thread that advances the epoch for deadlines (once per engine)."""
        if self._ticker is None:
            import threading  # here: only deadlines need it (0.6 ms of a new process's first load)

            engine = self._wt

            def tick() -> None:
                while True:
                    time.sleep(_EPOCH_TICK_S)
                    engine.increment_epoch()

            self._ticker = threading.Thread(target=tick, name="proxy-wasm-epoch", daemon=True)
            self._ticker.start()


class _WasmtimeLinked(Linked):
    def __init__(
        self, engine: WasmtimeEngine, module: wasmtime.Module, imports: Mapping[tuple[str, str], HostFunction], outline: Outline | None = None
    ) -> None:
        self.engine = engine
        self.module = module
        self.pending: list[BaseException] = []
        self.linker = wasmtime.Linker(engine._wt)
        self._keep: list[Any] = []
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        for mod, name, params, results in outline.imports if outline is not None else _reflect_imports(module):
            key = (mod, name)
            if key in seen:
                continue
            seen.add(key)
            if params is None or results is None:
                problems.append(f"{mod}.{name}: imports a non-function, only functions can be provided")
                continue
            want = (params, results)
            hf = imports.get(key)
            if hf is None:
                problems.append(f"{key[0]}.{key[1]}: not provided")
            elif (hf.params, hf.results) != want:
                problems.append(f"{key[0]}.{key[1]}: the module expects {_sig(*want)}, the host provides {_sig(hf.params, hf.results)}")
            else:
                self._define(key, hf)
        if problems:
            raise LinkError("cannot link the module:\n  " + "\n  ".join(problems))
        if outline is not None:
            self.export_types = dict(outline.exports)
            self.memory_export = outline.memory_export
            return
        self.export_types: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}
        for exp in module.exports:
            ty = exp.type
            self.export_types[exp.name] = (tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)) if isinstance(ty, wasmtime.FuncType) else None
        self.memory_export = next((e.name for e in module.exports if isinstance(e.type, wasmtime.MemoryType)), None)

    def _define(self, key: tuple[str, str], hf: HostFunction) -> None:
        ft = self.engine.functype(hf.params, hf.results)
        if not self.engine.fast:
            self.linker.define_func(key[0], key[1], ft, _stock_host(self, key, hf))
            return
        if _crossing is not None and _crossing.supports(hf.params, hf.results):
            thunk = _crossing.HostThunk(hf.fn, hf.params, hf.results, self.trap_for, key)
            cb, env = c_void_p(_crossing.trampoline_address()), c_void_p(thunk.address)
            self._keep.append(thunk)
        else:
            cb, env = _CALLBACK(_fast_host(self, key, hf)), None
            self._keep.append(cb)
        mod, name = key[0].encode(), key[1].encode()
        err = _C.define(
            c_void_p(ctypes.addressof(self.linker.ptr().contents)),
            mod,
            c_size_t(len(mod)),
            name,
            c_size_t(len(name)),
            c_void_p(ctypes.addressof(ft.ptr().contents)),
            cb,
            env,
            None,
        )
        if err:
            raise LinkError(f"wasmtime refused to define {key[0]}.{key[1]}: {_error_text(err)}")

    def trap_for(self, key: tuple[str, str], exc: BaseException) -> int:
        """Stash ``exc`` for the call site and return a new trap for wasmtime to unwind with."""
        self.pending.append(exc)
        msg = f"host function {key[0]}.{key[1]} raised {type(exc).__name__}: {exc}".encode()
        return _C.trap_new(msg, len(msg)) or 0

    def instantiate(self, deadline_s: float | None = None) -> Instance:
        return _WasmtimeInstance(self, deadline_s)


def _reflect_imports(module: wasmtime.Module) -> list[tuple[str, str, Any, Any]]:
    """Import types through wasmtime-py's reflection (when the caller gave no outline)."""
    out: list[tuple[str, str, Any, Any]] = []
    for imp in module.imports:
        ty = imp.type
        if isinstance(ty, wasmtime.FuncType):
            out.append((imp.module, imp.name or "", tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)))
        else:
            out.append((imp.module, imp.name or "", None, None))
    return out


def _fast_host(linked: _WasmtimeLinked, key: tuple[str, str], hf: HostFunction) -> Any:
    args = ", ".join(f"p[{2 * i}] & MASK32" if t == "i32" else f"to_s64(p[{2 * i}])" for i, t in enumerate(hf.params))
    if not hf.results:
        call = f"fn({args})"
    else:
        mask = "MASK32" if hf.results[0] == "i32" else "MASK64"
        call = f"p[0] = fn({args}) & {mask}"
    src = f"def cb(env, caller, p, n):\n    try:\n        {call}\n        return 0\n    except BaseException as e:\n        return trap(key, e)\n"
    return build("cb", src, {"fn": hf.fn, "trap": linked.trap_for, "key": key})


def _stock_host(linked: _WasmtimeLinked, key: tuple[str, str], hf: HostFunction) -> Any:
    fn = hf.fn

    def host(*args: int) -> int | None:
        try:
            return fn(*(a & 0xFFFFFFFF if t == "i32" else a for a, t in zip(args, hf.params, strict=True)))
        except BaseException as exc:
            linked.pending.append(exc)
            raise wasmtime.WasmtimeError(f"host function {key[0]}.{key[1]} raised {type(exc).__name__}: {exc}") from None

    return host


class _WasmtimeMemory(GuestMemory):
    __slots__ = ("_ctx", "_mem")

    def __init__(self, store: wasmtime.Store, mem: wasmtime.Memory) -> None:
        super().__init__()
        self._ctx = c_void_p(ctypes.addressof(store._context().contents))
        self._mem = mem

    def _byte_size(self) -> int:
        return int(_C.mem_size(self._ctx, byref(self._mem._memory))) if _C.mem_size else self._mem.data_len(self._ctx)

    def _fresh_view(self) -> memoryview:
        ref = byref(self._mem._memory)
        size = _C.mem_size(self._ctx, ref) if _C.mem_size else self._mem.data_len(self._ctx)
        if not size:
            return memoryview(bytearray())
        addr = _C.mem_data(self._ctx, ref)
        return memoryview((ctypes.c_ubyte * size).from_address(addr)).cast("B")


class _WasmtimeInstance(Instance):
    def __init__(self, linked: _WasmtimeLinked, deadline_s: float | None = None) -> None:
        self.linked = linked
        engine = linked.engine
        self.store = wasmtime.Store(engine._wt)
        if engine.config.epoch:
            if deadline_s is not None:  # the wasm start function runs inside instantiate
                engine.start_ticker()
                self.store.set_epoch_deadline(max(1, int(deadline_s / _EPOCH_TICK_S) + 1))
            else:
                self.store.set_epoch_deadline(1 << 62)
        if engine.config.fuel:
            self.store.set_fuel(1 << 62)
        if engine.config.max_memory_pages is not None:
            self.store.set_limits(memory_size=engine.config.max_memory_pages * 65536)
        self._ctx = c_void_p(ctypes.addressof(self.store._context().contents))
        self._fuel_value = c_uint64()
        self._fuel_out = byref(self._fuel_value)
        self._fast_fuel = bool(engine.config.fuel and engine.fast)
        if self._fast_fuel and _crossing is not None:  # get_fuel is the C reader itself: metering calls it after every callback
            self.get_fuel = _crossing.FuelReader(cast(_C.get_fuel, c_void_p).value, self._ctx.value, self.store, self._read_fuel)  # type: ignore[method-assign]
        try:
            self.wt = linked.linker.instantiate(self.store, linked.module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            pending = _take(linked.pending)
            if pending is not None:
                raise GuestTrap(f"start function failed: host function raised {pending!r}", export="(start)", kind="host", cause=pending) from pending
            reason = _first_line(exc)
            if isinstance(exc, wasmtime.Trap) or "wasm trap" in reason:
                frames = _frames(exc.frames) if isinstance(exc, wasmtime.Trap) else _error_frames(exc)
                raise GuestTrap(reason, export="(start)", frames=frames, kind="interrupt" if "interrupt" in reason else "trap") from None
            raise LinkError(f"instantiation failed: {reason}") from None
        if engine.config.epoch:
            self.store.set_epoch_deadline(1 << 62)
        self._callers: dict[str, Any] = {}
        self._globals: dict[str, Any] = {}
        mem = self._extern(linked.memory_export) if linked.memory_export else None
        self.memory = self._memory(mem)

    def _extern(self, name: str) -> Any:
        """One export by name (looking up all of them through the stock API costs ~1 ms)."""
        item = ffi.wasmtime_extern_t()
        raw = name.encode()
        if not ffi.wasmtime_instance_export_get(self.store._context(), byref(self.wt._instance), raw, len(raw), byref(item)):
            return None
        return wrap_extern(item)

    def export(self, name: str) -> Any:
        caller = self._callers.get(name)
        if caller is None:
            ty = self.linked.export_types.get(name)
            if ty is None:
                return None
            make = _fast_caller if self.linked.engine.fast else _stock_caller
            caller = self._callers[name] = make(self, name, self._extern(name), ty[0], ty[1])
        return caller

    def fail(self, export: str, err: int | None, trap: c_void_p | None) -> GuestTrap:
        """Turn an error/trap pointer plus any stashed host exception into a :class:`GuestTrap`."""
        message, frames = "", ()
        if trap is not None and trap.value:
            t = wasmtime.Trap._from_ptr(cast(trap.value, POINTER(ffi.wasm_trap_t)))
            trap.value = None
            message, frames = t.message, _frames(t.frames)
        if err:
            e = wasmtime.WasmtimeError._from_ptr(cast(err, POINTER(ffi.wasmtime_error_t)))
            message = str(e)
            frames = frames or _error_frames(e)
        return _trap_from(self.linked, export, message, frames)

    def grow_memory(self, pages: int) -> None:
        mem = self._extern(self.linked.memory_export) if self.linked.memory_export else None
        if mem is None or pages <= 0:
            return
        mem.grow(self.store, pages)

    def memory_named(self, name: str) -> GuestMemory | None:
        return self._memory(self._extern(name))

    def _memory(self, mem: Any) -> GuestMemory | None:
        """A memory export as a :class:`GuestMemory`: read and written in C by the accelerator where
        it is built (and the fast path is on), else through a cached ``memoryview``."""
        if not isinstance(mem, wasmtime.Memory):
            return None
        if _crossing is not None and self.linked.engine.fast and _C.mem_size:
            return _crossing.LinearMemory(  # type: ignore[no-any-return]
                cast(_C.mem_data, c_void_p).value,
                cast(_C.mem_size, c_void_p).value,
                self._ctx.value,
                ctypes.addressof(mem._memory),
                MemoryAccessError,
                (self.store, mem),
            )
        return _WasmtimeMemory(self.store, mem)

    def global_get(self, name: str) -> int | float:
        g = self._extern(name)
        if not isinstance(g, wasmtime.Global):
            raise KeyError(f"no exported global {name!r}")
        return g.value(self.store)

    def global_set(self, name: str, value: int | float) -> None:
        entry = self._globals.get(name)
        if entry is None:
            g = self._extern(name)
            if not isinstance(g, wasmtime.Global):
                raise KeyError(f"no exported global {name!r}")
            kind = _GLOBAL_KINDS.get(str(g.type(self.store).content))
            if kind is None or not self.linked.engine.fast:
                g.set_value(self.store, value)  # a reference type, or the stock path
                return
            entry = self._globals[name] = (g, kind)
        g, (kind, field) = entry
        raw = ffi.wasmtime_val_t()
        raw.kind = kind
        setattr(raw.of, field, value)
        err = ffi.wasmtime_global_set(self.store._context(), byref(g._global), byref(raw))
        if err:
            raise EngineError(f"cannot set global {name!r}: {_error_text(err)}")

    def set_fuel(self, fuel: int) -> None:
        if not self.linked.engine.config.fuel:
            raise NotImplementedError("fuel is off: create the engine with EngineConfig(fuel=True)")
        if self.linked.engine.fast:  # one C call; the stock path costs ~0.7 us in Python
            err = _C.set_fuel(self._ctx, fuel)
            if err:
                raise EngineError(f"cannot set fuel: {_error_text(err)}")
            return
        self.store.set_fuel(fuel)

    def get_fuel(self) -> int:
        return self._read_fuel()

    def _read_fuel(self) -> int:
        """The fuel through ctypes or the stock API (where the C accelerator is built, ``get_fuel``
        is its reader, which falls back on this)."""
        if self._fast_fuel:  # fuel on and the fast path: one C call
            err = _C.get_fuel(self._ctx, self._fuel_out)
            if err:
                raise EngineError(f"cannot read fuel: {_error_text(err)}")
            return self._fuel_value.value
        if not self.linked.engine.config.fuel:
            raise NotImplementedError("fuel is off: create the engine with EngineConfig(fuel=True)")
        return self.store.get_fuel()

    def set_deadline(self, seconds: float | None) -> None:
        if not self.linked.engine.config.epoch:
            raise NotImplementedError("deadlines are off: create the engine with EngineConfig(epoch=True)")
        if seconds is None:
            self.store.set_epoch_deadline(1 << 62)
            return
        self.linked.engine.start_ticker()
        self.store.set_epoch_deadline(max(1, int(seconds / _EPOCH_TICK_S) + 1))

    def close(self) -> None:
        self._callers.clear()
        self.memory = None


def _fast_caller(inst: _WasmtimeInstance, name: str, func: wasmtime.Func, params: tuple[str, ...], results: tuple[str, ...]) -> Any:
    if _crossing is not None and _crossing.supports(params, results):
        return _crossing.ExportCaller(
            cast(_C.call, c_void_p).value,
            inst._ctx.value,
            ctypes.addressof(func._func),
            params,
            results,
            inst.fail,
            name,
            (func, inst.store),
            release_gil=inst.linked.engine.config.epoch,  # deadlines: the ticker thread must run meanwhile
        )
    nslots = max(len(params), len(results))
    slots = (c_uint64 * (2 * max(nslots, 1)))()
    trap = c_void_p()
    sets = "".join(f"    slots[{2 * i}] = a{i} & {'MASK32' if t == 'i32' else 'MASK64'}\n" for i, t in enumerate(params))
    if not results:
        ret = "None"
    elif results[0] == "i32":
        ret = "slots[0] & MASK32"
    elif results[0] == "i64":
        ret = "to_s64(slots[0])"
    else:
        ret = "slots[0]"
    argnames = ", ".join(f"a{i}" for i in range(len(params)))
    src = (
        f"def caller({argnames}):\n{sets}"
        "    err = call(ctx, fref, slots, n, tref)\n"
        "    if err or trap.value:\n"
        "        raise fail(name, err, trap)\n"
        f"    return {ret}\n"
    )
    ns = {
        "call": _C.call,
        "ctx": inst._ctx,
        "fref": byref(func._func),
        "slots": slots,
        "n": c_size_t(nslots),
        "trap": trap,
        "tref": byref(trap),
        "fail": inst.fail,
        "name": name,
        "_keep": func,
    }
    return build("caller", src, ns)


def _stock_caller(inst: _WasmtimeInstance, name: str, func: wasmtime.Func, params: tuple[str, ...], results: tuple[str, ...]) -> Any:
    store = inst.store

    def caller(*args: int) -> Any:
        conv = [a - (1 << 32) if t == "i32" and a >= 1 << 31 else a for a, t in zip(args, params, strict=True)]
        try:
            out = func(store, *conv)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            frames = _frames(exc.frames) if isinstance(exc, wasmtime.Trap) else _error_frames(exc)
            msg = exc.message if isinstance(exc, wasmtime.Trap) else str(exc)
            trap = _trap_from(inst.linked, name, msg, frames)
            raise trap from trap.cause
        if results and results[0] == "i32":
            return out & 0xFFFFFFFF
        return out

    return caller


def _trap_from(linked: _WasmtimeLinked, export: str, message: str, frames: tuple[Frame, ...]) -> GuestTrap:
    pending = _take(linked.pending)
    if isinstance(pending, GuestTrap):
        return pending
    short = _first_line(message)
    if pending is not None:
        trap = GuestTrap(f"host function raised {type(pending).__name__}: {pending}", export=export, frames=frames, kind="host", cause=pending)
        trap.__cause__ = pending
        return trap
    kind = "interrupt" if "interrupt" in short else "fuel" if "fuel" in short else "trap"
    return GuestTrap(short, export=export, frames=frames, kind=kind)


def _take(pending: list[BaseException]) -> BaseException | None:
    if not pending:
        return None
    exc = pending[-1]
    pending.clear()
    return exc


def _frames(frames: list[Any]) -> tuple[Frame, ...]:
    return tuple(Frame(f.func_index, f.func_name, f.module_offset) for f in frames)


def _error_frames(err: wasmtime.WasmtimeError) -> tuple[Frame, ...]:
    vec = ffi.wasm_frame_vec_t()
    ffi.wasmtime_error_wasm_trace(err.ptr(), byref(vec))
    out = []
    for i in range(vec.size):
        fp = vec.data[i]
        name_ptr = ffi.wasmtime_frame_func_name(fp)
        out.append(
            Frame(
                ffi.wasm_frame_func_index(fp),
                ffi.to_str(name_ptr.contents) if name_ptr else None,
                ffi.wasm_frame_module_offset(fp),
            )
        )
    ffi.wasm_frame_vec_delete(byref(vec))
    return tuple(out)


def _error_text(err: int) -> str:
    return str(wasmtime.WasmtimeError._from_ptr(cast(err, POINTER(ffi.wasmtime_error_t))))


def _first_line(exc: object) -> str:
    """The reason of a wasmtime error without its backtrace (the frames are reported apart)."""
    text = str(exc).strip()
    if "Caused by:" in text:
        causes = [line.strip() for line in text.split("Caused by:", 1)[1].splitlines() if line.strip()]
        return "; ".join(c.split(": ", 1)[1] if re.match(r"^\d+: ", c) else c for c in causes)
    for marker in ("\nwasm backtrace:", "\nStack backtrace:"):
        text = text.split(marker, 1)[0]
    return text.strip()


def _sig(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def _dist_version(dist: str) -> str:
    """The installed version of ``dist``: from its ``.dist-info`` folder name beside the package (a
    directory listing), else ``importlib.metadata`` (which scans all of sys.path: ~20 ms)."""
    from pathlib import Path

    site = Path(wasmtime.__file__).resolve().parent.parent
    found = sorted(site.glob(f"{dist}-*.dist-info"))
    if len(found) == 1:
        return found[0].name[len(dist) + 1 : -len(".dist-info")]
    from importlib.metadata import version

    return version(dist)
