"""ABI version detection from a module's exports and imports (abi-spec.md §2.1, §9.1).

cpp-host takes the first exported ``proxy_abi_version_X_Y_Z`` function and refuses a module without
one. Real modules are messier: some have no marker, and some declare 0.1.0 while exporting the
0.2.x three-argument headers callbacks. Detection here is tolerant: the marker decides the host-call
semantics, the export's actual type decides the callback arity, and everything unusual is noted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .records import field, record
from .signatures import ABI_VERSIONS, ENV_MODULE, HOST_FUNCTIONS

__all__ = ["AbiInfo", "FuncType", "detect_abi", "marker_name"]

FuncType = tuple[tuple[str, ...], tuple[str, ...]]
"""A wasm function type as ``(params, results)``, e.g. ``(("i32", "i32"), ("i32",))``."""

_HEADERS_CALLBACKS = ("proxy_on_request_headers", "proxy_on_response_headers")


def marker_name(version: str) -> str:
    """The export that declares ``version``, e.g. ``proxy_abi_version_0_2_1``."""
    return "proxy_abi_version_" + version.replace(".", "_")


_MARKERS = {marker_name(v): v for v in ABI_VERSIONS}


@record(frozen=True)
class AbiInfo:
    """What the emulator knows about a module's ABI after looking at its exports and imports."""

    version: str
    """The version whose host-call semantics apply (the declared one when there is a marker)."""
    declared: str | None
    """The version of the first marker export, as cpp-host reads it; ``None`` if there is none."""
    headers_arity: int
    """2 (0.1.0 shape) or 3 (0.2.x shape) parameters for the headers callbacks."""
    notes: tuple[str, ...] = field(default=())
    """Everything a real host would treat differently, in plain words."""

    @property
    def envoy_loads(self) -> bool:
        """Whether Envoy/cpp-host would accept the module's ABI declaration at all."""
        return self.declared is not None and not any(n.startswith("envoy rejects") for n in self.notes)


def detect_abi(
    exports: Mapping[str, FuncType | None],
    imports: Iterable[tuple[str, str]] = (),
) -> AbiInfo:
    """Work out the ABI version of a module.

    ``exports`` maps export names, in export-section order, to their function type (``None`` for
    non-function exports). ``imports`` lists ``(module, name)`` pairs.
    """
    notes: list[str] = []
    declared = next(
        (_MARKERS[name] for name, ty in exports.items() if name in _MARKERS and ty is not None),
        None,
    )
    extra = [n for n, ty in exports.items() if n in _MARKERS and ty is not None and _MARKERS[n] != declared]
    if extra:
        notes.append(f"several ABI markers exported; the first ({marker_name(declared or '')}) wins, as in cpp-host: ignoring {extra}")

    arities = {len(ty[0]) for name, ty in exports.items() if name in _HEADERS_CALLBACKS and ty is not None}
    env_imports = {name for module, name in imports if module == ENV_MODULE}

    if declared is None:
        version = _infer_version(arities, env_imports)
        notes.append(f"envoy rejects this module: no proxy_abi_version_* export ('Missing or unknown Proxy-Wasm ABI version'); emulating it as {version}")
    else:
        version = declared

    expected_arity = 2 if version == "0.1.0" else 3
    if len(arities) > 1:
        notes.append("proxy_on_request_headers and proxy_on_response_headers disagree on arity")
    headers_arity = max(arities) if arities else expected_arity
    if arities - {2, 3}:
        notes.append(
            f"headers callbacks take {sorted(arities - {2, 3})} parameters, a shape no ABI version has: every host refuses this ('Bad function signature')"
        )
    elif arities and headers_arity != expected_arity:
        notes.append(
            f"declares {version} but exports {headers_arity}-parameter headers callbacks "
            f"(the {'0.2.x' if headers_arity == 3 else '0.1.0'} shape); cpp-host rejects this "
            "('Bad function signature'), the emulator calls them with the exported arity"
        )

    for name in sorted(env_imports):
        sig = HOST_FUNCTIONS.get(name)
        if sig is not None and version not in sig.versions:
            notes.append(f"imports env.{name}, which cpp-host does not offer to ABI {version} modules (link error in Envoy)")
    return AbiInfo(version=version, declared=declared, headers_arity=headers_arity, notes=tuple(notes))


def _infer_version(arities: set[int], env_imports: set[str]) -> str:
    only = {v: {n for n, s in HOST_FUNCTIONS.items() if s.versions == frozenset({v})} for v in ABI_VERSIONS}
    if 2 in arities or env_imports & only["0.1.0"]:
        return "0.1.0"
    if env_imports & only["0.2.1"]:
        return "0.2.1"
    return "0.2.1" if 3 in arities or not arities else "0.2.0"
