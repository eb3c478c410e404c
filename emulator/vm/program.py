"""A Program is a compiled and linked module, shared by every VM made from the same bytes.

Loading goes: parse the outline (clear error for a malformed file) -> detect the ABI -> compile
through the module cache -> build the import table (ours, plus stubs for unknown imports if asked)
-> link. Host functions reach the VM being run through ``calls.vm``, which each VM sets when it
enters the guest, so one linked program serves many VMs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from abi import START_IMPORTS, LogLevel, Status, WasiErrno, allowed_imports_text, detect_abi, import_table
from abi.records import record_values, replace

from ..engines import CompileError, Engine, HostFunction, LinkError, MemoryAccessError, accelerator
from ..engines._codegen import build
from ..engines.base import Outline
from ..errors import HostCallNotImplemented, ModuleLoadError, RestrictedHostCall, UnknownImportsError, UnsupportedProposalError
from ..glue import ImportCalls
from .cache import ModuleCache, wasm_digest
from .coverage import INSTRUMENTATION_VERSION, CoverageError, CoverageMap, instrument
from .module import OUTLINE_VERSION, ModuleFormatError, ModuleInfo, outline_data, outline_from_data, parse_module
from .rewrite import export_mutable_globals

if TYPE_CHECKING:
    from .instance import Vm

__all__ = ["Program", "implemented_functions"]


def implemented_functions() -> set[str]:
    """Names of the ABI and WASI functions the emulator implements (the rest raise when called)."""
    return {name for _, name in import_table() if callable(getattr(ImportCalls, name, None))}


_META_FORMAT = 3
"""The cached outline's format, beyond :data:`OUTLINE_VERSION` (2: without the data segment table; 3:
plain data, read with ``marshal``)."""


class Program:
    """Compiled module + import implementations + link, ready to instantiate VMs.

    ``info`` is the module's outline (:class:`ModuleInfo`) without its data segment table
    (``data_segments`` and ``data_addresses`` are empty): :func:`parse_module` gives the whole one.
    """

    def __init__(
        self,
        engine: Engine,
        wasm: bytes,
        *,
        cache: ModuleCache | None = None,
        stub_unknown_imports: bool = False,
        source: str = "<bytes>",
        allowed_capabilities: frozenset[str] | None = None,
        sha256: str | None = None,
        coverage: bool = False,
    ) -> None:
        """``coverage`` compiles the module with basic-block probes (:mod:`emulator.vm.coverage`)."""
        self.source = source
        self.coverage: CoverageMap | None = None
        self.engine = engine
        self.sha256 = sha256 or wasm_digest(wasm)
        meta_key = f"{self.sha256}.outline{OUTLINE_VERSION}.{_META_FORMAT}"
        meta = cache.load_meta(meta_key) if cache is not None else None
        if meta is not None:
            try:
                self.info, self.snapshot_globals = outline_from_data(meta[0]), list(meta[1])
            except (TypeError, KeyError, IndexError, ValueError):  # not what this version stores: parse again
                meta = None
        if meta is None:
            try:
                self.info = parse_module(wasm)
            except ModuleFormatError as exc:
                raise ModuleLoadError(f"{source}: {exc}", envoy="Envoy fails to load the module and the plugin is not created") from None
            self.snapshot_globals = export_mutable_globals(wasm, self.info)[1]
            # Go modules have tens of thousands of data segments: their table would be most of the
            # cached outline and of the time to read it, and nothing after loading needs it (the
            # harvest and inspect parse the module themselves). Dropped on every load, cached or not.
            self.info = replace(self.info, data_segments=[], data_addresses=[])
        self.abi = detect_abi(self.info.export_types(), self.info.import_names())
        self.calls = ImportCalls()
        self.stubbed: list[str] = []
        self.allowed_capabilities = allowed_capabilities
        self.restricted: list[str] = []

        lacking = sorted(self.info.proposals & engine.unsupported_proposals)
        if lacking:  # before compiling: wasmer panics on some of them
            raise UnsupportedProposalError(source, lacking, f"{engine.name} {engine.version}")
        variant = "+snapshot-globals"
        if coverage:
            if "multi-memory" in engine.unsupported_proposals:
                raise ModuleLoadError(
                    f"{source}: guest coverage needs an engine with multi-memory (the probes write to a memory of their own); {engine.name} has none: use wasmtime",
                    envoy="not an Envoy matter: coverage is the emulator's instrumentation",
                )
            variant += f"+coverage{INSTRUMENTATION_VERSION}"
            cov_key = f"{self.sha256}.coverage{OUTLINE_VERSION}.{INSTRUMENTATION_VERSION}"
            stored = cache.load_meta(cov_key) if cache is not None else None
            try:
                self.coverage = CoverageMap(*stored) if stored is not None else None
            except TypeError:
                self.coverage = None

        def code() -> bytes:
            out = export_mutable_globals(wasm, self.info)[0]
            if coverage:
                try:
                    out, self.coverage = instrument(out)
                except CoverageError as exc:
                    raise ModuleLoadError(f"{source}: cannot instrument for coverage: {exc}", envoy="not an Envoy matter") from None
                if cache is not None:
                    cache.store_meta(cov_key, record_values(self.coverage))
            return out

        if coverage and self.coverage is None and cache is not None:
            cache.path_for(engine, digest=self.sha256, variant=variant).unlink(missing_ok=True)  # the map and the artifact go together
        try:
            compiled = cache.compile(engine, code, digest=self.sha256, variant=variant) if cache is not None else engine.compile(code())
        except CompileError as exc:
            raise ModuleLoadError(f"{source}: {exc}", envoy="Envoy fails to load the module and the plugin is not created") from None
        # after compiling, as Envoy does: an invalid module is reported as invalid, not as unlinkable
        _check_memory(self.info, source)
        imports = self._import_table(stub_unknown_imports)
        if cache is not None and meta is None:
            cache.store_meta(meta_key, (outline_data(self.info), self.snapshot_globals))
        info = self.info
        outline = Outline(
            imports=tuple((i.module, i.name, *(i.type if i.type is not None else (None, None))) for i in info.imports),
            exports={e.name: e.type for e in info.exports if e.kind == "func"},
            memory_export=next((e.name for e in info.exports if e.kind == "memory"), None),
        )
        try:
            self.linked = engine.link(compiled, imports, outline)
        except LinkError as exc:
            raise ModuleLoadError(f"{source}: {exc}", envoy="cpp-host fails to link the module ('import type mismatch' or 'missing import')") from None

    def _import_table(self, stub_unknown: bool) -> dict[tuple[str, str], HostFunction]:
        known = import_table()
        table: dict[tuple[str, str], HostFunction] = {}
        unknown: list[str] = []
        for imp in self.info.imports:
            key = (imp.module, imp.name)
            if imp.kind != "func" or key in table:
                continue
            sig = known.get(key)
            if sig is None:
                if not stub_unknown:
                    unknown.append(f"{imp.module}.{imp.name} {_sig(imp.type)}")
                    continue
                self.stubbed.append(f"{imp.module}.{imp.name}")
                params, results = imp.type or ((), ())
                table[key] = HostFunction(_stub(self.calls, f"{imp.module}.{imp.name}", results), params, results)
                continue
            wasi = imp.module != "env"
            impl = getattr(self.calls, sig.name, None)
            caps = self.allowed_capabilities
            if caps is not None and sig.name not in caps and sig.name not in _ALWAYS_ALLOWED:
                self.restricted.append(f"{imp.module}.{imp.name}")
                table[key] = HostFunction(_capability_stub(self.calls, sig.name, sig.results, wasi), sig.params, sig.results)
                continue
            fn = _wrap(self.calls, sig.name, impl, len(sig.params), wasi) if impl is not None else _not_implemented(sig.name)
            table[key] = HostFunction(fn, sig.params, sig.results)
        if unknown:
            raise UnknownImportsError(unknown)
        return table

    def switch(self, vm: Vm) -> None:
        """Point every host function at ``vm`` (called on each entry into the guest)."""
        self.calls.vm = vm


def _check_memory(info: ModuleInfo, source: str) -> None:
    """The proxy-wasm rule on the exported memory: 32-bit, since every ABI pointer is an i32."""
    memory = info.exported_memory()
    if memory is not None and memory.is64:
        raise ModuleLoadError(
            f"{source}: the exported memory is 64-bit (memory64), but proxy-wasm passes every guest pointer as an i32 into a 32-bit memory",
            envoy="Envoy's runtimes do not run proxy-wasm modules with a 64-bit memory; the plugin is not created",
        )


def _sig(ty: Any) -> str:
    if ty is None:
        return ""
    return f"({', '.join(ty[0])}) -> ({', '.join(ty[1])})"


C_WRAPPERS = True
"""Whether imports get the C accelerator's wrapper where it is built (tests turn it off to run the
generated Python wrapper, the reference, on the same paths)."""


def _wrap(calls: ImportCalls, name: str, impl: Callable[..., Any], nparams: int, wasi: bool) -> Callable[..., Any]:
    """A per-arity wrapper: phase restrictions, the observer (trace, expectations), bad pointers.

    A plain observer of a host that only keeps a trace hands the call to its one-frame recorder
    (``observer.recorders[name]``); any other observer gets the generic ``observer(vm, name, ...)``.
    Where the speed mode's C accelerator is built, its :class:`HostCall` does the same in C.
    """
    fault = int(WasiErrno.FAULT if wasi else Status.InvalidMemoryAccess)
    c = accelerator() if C_WRAPPERS else None
    if c is not None:
        return c.HostCall(calls, name, impl, restricted=_restricted, access_error=MemoryAccessError, fault=fault, wasi=wasi)  # type: ignore[no-any-return]
    args = ", ".join(f"a{i}" for i in range(nparams))
    observe = (
        ""
        if wasi
        else (
            "    vm.host_calls += 1\n"
            "    host = vm.host\n"
            "    obs = host.observer\n"
            "    if obs is not None:\n"
            "        if obs.plain and host.expectations is None and host.trace is not None:\n"
            f"            return obs.recorders[name](vm, obs, impl{', ' if nparams else ''}{args})\n"
            f"        return obs(vm, name, impl, ({args}{',' if nparams == 1 else ''}), {fault})\n"
        )
    )
    src = (
        f"def host({args}):\n"
        "    vm = calls.vm\n"
        "    allowed = vm.allowed_imports\n"
        "    if allowed is not None and name not in allowed:\n"
        "        raise restricted(vm, name)\n"
        f"{observe}"
        "    try:\n"
        f"        return impl({args})\n"
        "    except MemoryAccessError as exc:\n"
        "        vm.note(f'{name}: {exc}')\n"
        f"        return {fault}\n"
    )
    return build("host", src, {"calls": calls, "name": name, "impl": impl, "restricted": _restricted, "MemoryAccessError": MemoryAccessError})


def _restricted(vm: Vm, name: str) -> RestrictedHostCall:
    allowed = allowed_imports_text(vm.allowed_imports)
    legacy = ""
    if vm.allowed_imports == START_IMPORTS:
        legacy = (
            ". A module built for 2020-era Envoy, whose start code made such calls before cpp-host restricted them"
            " (proxy-wasm-cpp-host#306, 2022), runs with Host(restricted_start=False) or the CLI's --legacy-start"
        )
    return RestrictedHostCall(f"{name} called during {vm.phase_name()}, where cpp-host allows only {allowed} (the call traps in Envoy){legacy}")


def _not_implemented(name: str) -> Callable[..., Any]:
    def host(*_: int) -> int:
        raise HostCallNotImplemented(name)

    return host


_ALWAYS_ALLOWED = frozenset({"emscripten_notify_memory_growth", "pthread_equal"})


def _capability_stub(calls: ImportCalls, name: str, results: tuple[str, ...], wasi: bool) -> Callable[..., Any]:
    """cpp-host's restricted-capability stub: log, then InternalFailure (WASI: ENOTCAPABLE)."""
    ret = None if not results else int(WasiErrno.NOTCAPABLE if wasi else Status.InternalFailure)

    def host(*_: int) -> int | None:
        calls.vm.active.log(LogLevel.WARN, f"{name} is not in allowed_capabilities: returning {ret}", source="host")
        return ret

    return host


def _stub(calls: ImportCalls, name: str, results: tuple[str, ...]) -> Callable[..., Any]:
    ret = None if not results else int(Status.InternalFailure) if results[0] == "i32" else 0

    def host(*_: int) -> int | None:
        calls.vm.active.log(LogLevel.WARN, f"call to unknown import {name}: stubbed, returns {ret}", source="host")
        return ret

    return host
