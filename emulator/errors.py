"""The errors the emulator raises, each saying what happened in a filter author's terms."""

from __future__ import annotations

from .engines.base import GuestTrap

__all__ = [
    "CallbackError",
    "ConfigError",
    "EmulatorError",
    "HostCallNotImplemented",
    "InputWarning",
    "ModuleLoadError",
    "PlacedConfigError",
    "PluginStartError",
    "ProcExit",
    "RestrictedHostCall",
    "UnknownImportsError",
    "UnsupportedProposalError",
    "VmFailedError",
]


class EmulatorError(Exception):
    """Base class of every error raised by the emulator."""


class ConfigError(EmulatorError, ValueError):
    """Bad user input: a scenario, configuration or option that names the field and the problem."""


class PlacedConfigError(ConfigError):
    """Bad input in a file, at a named place: ``where`` (a field path) and ``problem``."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class ModuleLoadError(EmulatorError):
    """The module cannot be loaded: malformed, missing an export, or a bad export signature.

    ``envoy`` says what Envoy would do with the same module.
    """

    def __init__(self, message: str, *, envoy: str = "Envoy rejects the module and the plugin is not created") -> None:
        super().__init__(f"{message}\n(what Envoy does: {envoy})")
        self.reason = message
        self.envoy = envoy


class UnsupportedProposalError(ModuleLoadError):
    """The module is valid wasm but uses a proposal the engine does not enable (``proposals`` names them)."""

    def __init__(self, source: str, proposals: list[str], engine: str) -> None:
        names = ", ".join(proposals)
        super().__init__(
            f"{source}: the module uses the WebAssembly {names} proposal{'s' if len(proposals) > 1 else ''}, which {engine} does not enable "
            "(a proxy-wasm host runs only the modules its engine accepts)",
            envoy="Envoy's runtime refuses the module the same way unless its engine enables the proposal; the plugin is not created",
        )
        self.proposals = proposals


class UnknownImportsError(ModuleLoadError):
    """The module imports functions the emulator does not provide; ``missing`` lists them all."""

    def __init__(self, missing: list[str]) -> None:
        lines = "\n  ".join(missing)
        super().__init__(
            f"the module imports {len(missing)} function(s) the emulator does not provide:\n  {lines}\n"
            "pass stub_unknown_imports=True (CLI: --stub-unknown-imports) to link them as stubs that log and "
            "return InternalFailure",
            envoy="cpp-host fails to link the module ('Failed to load Wasm module due to a missing import')",
        )
        self.missing = missing


class HostCallNotImplemented(EmulatorError, NotImplementedError):
    """A guest called an ABI function the emulator does not implement yet (the guest traps)."""

    def __init__(self, function: str, detail: str = "") -> None:
        more = f": {detail}" if detail else ""
        super().__init__(f"{function} is not implemented by proxy-wasm-emulator yet{more}")
        self.function = function


class InputWarning(UserWarning):
    """The test gave the emulator something Envoy would never deliver to a filter (e.g. request
    headers without ``:method`` or ``:path``); the run goes on with the input as given."""


class RestrictedHostCall(EmulatorError):
    """A host call made where cpp-host forbids it (e.g. ``proxy_http_call`` during ``_initialize``)."""


class ProcExit(EmulatorError):
    """The guest called WASI ``proc_exit``; the current callback is aborted."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the guest called proc_exit({code})")
        self.code = code


class CallbackError(EmulatorError):
    """A callback into the guest failed: a trap, a panic, ``proc_exit`` or a host-side error.

    Carries the callback name, the context id, the guest backtrace and the original cause.
    """

    def __init__(self, callback: str, context_id: int | None, trap: GuestTrap, *, logs: list[str] | None = None) -> None:
        self.callback = callback
        self.context_id = context_id
        self.trap = trap
        self.cause = trap.cause
        ctx = f" (context {context_id})" if context_id is not None else ""
        if isinstance(trap.cause, ProcExit):
            what = f"the guest called proc_exit({trap.cause.code})"
        elif trap.kind == "host":
            what = f"{type(trap.cause).__name__}: {trap.cause}"
        else:
            what = trap.message
        tail = ""
        if logs:
            tail = "\nlast guest output:\n" + "\n".join(f"  {line}" for line in logs)
        super().__init__(f"{callback}{ctx} failed: {what}\nguest backtrace:\n{trap.backtrace()}{tail}")
        self.reason = what


class PluginStartError(EmulatorError):
    """The plugin did not start: ``phase`` is the step that failed, ``envoy`` what Envoy does then."""

    def __init__(self, phase: str, message: str, *, envoy: str, cause: BaseException | None = None) -> None:
        super().__init__(f"plugin start failed in {phase}: {message}\n(what Envoy does: {envoy})")
        self.phase = phase
        self.reason = message
        self.envoy = envoy
        self.cause = cause


class VmFailedError(EmulatorError):
    """The VM trapped earlier; like cpp-host, a failed VM never runs the guest again."""

    def __init__(self, first: CallbackError) -> None:
        super().__init__(
            f"the VM failed earlier and cannot run the guest again (cpp-host FailState::RuntimeError); first failure: {first.callback}: {first.reason}"
        )
        self.first = first
