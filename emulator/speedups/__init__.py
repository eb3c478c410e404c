"""Compiled speed mode: the request path's modules, compiled from their unchanged Python source.

The Python source is the reference and always works alone. Where a C compiler was present at
install time, ``pip install`` (or ``make``) also compiled the modules in :data:`COMPILED_MODULES`
with Cython into ``emulator/speedups/compiled/``, with a manifest of the sources they were built
from (each one's sha256, size and modification time). :func:`install` (run when this module is
imported, first thing in ``import emulator``) puts an import finder in front of the normal one that
loads the compiled modules only while every one's source is unchanged: its size and modification
time are those the manifest recorded (as Python's own ``.pyc`` check), or else its sha256 is (the
source is read and hashed only then). They load all together or not at all, because the types one
module declares (a ``.pxd``) are extended or read as C structs by others, and a compiled module beside a pure one it was built
against would not import. An edited or missing source, another Python, or
``PROXY_WASM_EMULATOR_PURE=1`` gives the pure modules.

Cython compiles with Python semantics (annotations are not enforced), so both modes must behave
the same: CI runs the whole suite in each. Only Python frames differ: a compiled function makes
none, so profilers and ``sys._getframe`` see less.

``proxy-wasm-emulator --version`` names the mode a process gets: :func:`describe`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

#: The modules on the request path, compiled in speed mode (one list: the build reads it too).
COMPILED_MODULES: tuple[str, ...] = (
    "emulator.buffer",
    "emulator.clock",
    "emulator.contexts",
    "emulator.costs",
    "emulator.engines.base",
    "emulator.glue.base",
    "emulator.glue.buffers",
    "emulator.glue.logging_time",
    "emulator.glue.maps",
    "emulator.http.headers",
    "emulator.http.messages",
    "emulator.host",
    "emulator.http.stream",
    "emulator.http.types",
    "emulator.logs",
    "emulator.plugin",
    "emulator.trace",
    "emulator.vm.instance",
)

#: Cython-only accelerators, built with the modules above from a ``.pyx`` beside where a module
#: would be. They have no pure-Python twin: the code that imports one keeps its reference path
#: (``emulator.engines._crossing``: the wasmtime fast path's crossings in C instead of ctypes, and
#: each import's wrapper and trace recorder; ``emulator.untracked``: log records out of the
#: garbage collector).
ACCELERATORS: tuple[str, ...] = ("emulator.engines._crossing", "emulator.untracked")

#: Everything the build compiles and the manifest lists.
BUILT_MODULES: tuple[str, ...] = COMPILED_MODULES + ACCELERATORS

#: Set to a non-empty value other than ``0`` to run the pure-Python modules (and to build none).
PURE_ENV = "PROXY_WASM_EMULATOR_PURE"

#: Where the build puts the compiled modules and their manifest: one folder per interpreter ABI,
#: so that venvs of two Pythons on one checkout (.venv and .venv310) keep a build each.
COMPILED_DIR = Path(__file__).resolve().parent / "compiled" / importlib.machinery.EXTENSION_SUFFIXES[0].strip(".").removesuffix(".so").removesuffix(".pyd")
MANIFEST = "manifest.txt"
#: Load the compiled modules from this folder instead (the profile-guided build's training run
#: loads the instrumented ones it has just built, not those in :data:`COMPILED_DIR`).
COMPILED_DIR_ENV = "PROXY_WASM_EMULATOR_COMPILED_DIR"
#: The manifest's format; a manifest of another format is ignored (the pure modules run). Format 2
#: is lines of text (:func:`render_manifest`): reading it needs no ``json``, nor its digests
#: ``hashlib``, which would be 3 ms of ``import emulator``.
MANIFEST_FORMAT = 2

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the ``emulator`` package


def pure_requested() -> bool:
    """Whether the environment asks for the pure-Python modules."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


_SOURCES: dict[tuple[str, Path], Path] = {}


def source_path(module: str, root: Path = _PACKAGE_ROOT) -> Path:
    """The source of one of :data:`BUILT_MODULES`: its ``.py`` file, or an accelerator's ``.pyx``."""
    path = _SOURCES.get((module, root))
    if path is None:  # each import asks once more (CompiledFinder): pathlib's steps, once
        path = _SOURCES[module, root] = root.joinpath(*module.split(".")).with_suffix(".pyx" if module in ACCELERATORS else ".py")
    return path


def declarations_path(source: Path) -> Path:
    """The Cython declarations beside a module's source (``stream.py`` -> ``stream.pxd``), where a
    class is typed for the build (``cdef class`` with declared fields); most modules have none."""
    return source.with_suffix(".pxd")


def source_digest(path: Path) -> str:
    """The sha256 of a module's source and of its declarations, if it has them: a compiled module
    is used only while this is unchanged."""
    import hashlib  # here: only a build, or a source whose stamp changed, is hashed

    digest = hashlib.sha256(path.read_bytes())
    declarations = declarations_path(path)
    if declarations.is_file():
        digest.update(b"\0declarations\0" + declarations.read_bytes())
    return digest.hexdigest()


def source_stamp(path: Path) -> str:
    """``size:mtime_ns`` of a module's source, and of its declarations if it has them: while it is
    the one the manifest recorded, the source is taken as unchanged without reading it."""
    st = os.stat(path)
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    try:
        st = os.stat(declarations_path(path))
    except FileNotFoundError:
        return stamp
    return f"{stamp}/{st.st_size}:{st.st_mtime_ns}"


def build_inputs(root: Path = _PACKAGE_ROOT) -> tuple[dict[str, Path], dict[str, dict[str, str]]]:
    """What a build compiles (``emulator.speedups.build.build``'s arguments): the source of each of
    :data:`BUILT_MODULES` under ``root``, and what its manifest entry records of that source."""
    sources = {m: source_path(m, root) for m in BUILT_MODULES}
    return sources, {m: {"source_sha256": source_digest(p), "source_stamp": source_stamp(p)} for m, p in sources.items()}


def is_fresh(module: str, entry: dict[str, str], root: Path = _PACKAGE_ROOT) -> bool:
    """Whether ``module``'s source is still the one its manifest ``entry`` was built from: the same
    stamp (:func:`source_stamp`), or else the same digest."""
    path = source_path(module, root)
    try:
        return source_stamp(path) == entry.get("source_stamp") or source_digest(path) == entry["source_sha256"]
    except (OSError, KeyError):
        return False


def stale(built: dict[str, dict[str, str]], root: Path = _PACKAGE_ROOT, names: tuple[str, ...] = BUILT_MODULES) -> list[str]:
    """The modules (:data:`BUILT_MODULES`) that ``built`` (a manifest's modules) lacks or built from other source."""
    return [m for m in names if m not in built or not is_fresh(m, built[m], root)]


def ext_suffix() -> str:
    """This interpreter's extension-module suffix (``.cpython-311-x86_64-linux-gnu.so``)."""
    return importlib.machinery.EXTENSION_SUFFIXES[0]


class CompiledFinder:
    """Finds the compiled build of a module while its source is the one it was built from.

    A ``sys.meta_path`` finder (``importlib.abc.MetaPathFinder``'s protocol; that module is not
    imported: it costs 3 ms of ``import emulator``). A plain class: ``setup.py`` loads this file
    by path, where neither this package nor ``abi`` can be imported."""

    def __init__(
        self, folder: Path, modules: dict[str, dict[str, str]], root: Path = _PACKAGE_ROOT, loaded: list[str] | None = None, stale: list[str] | None = None
    ) -> None:
        self.folder = folder
        self.modules = modules  # module -> its manifest entry (render_manifest)
        self.root = root
        self.loaded: list[str] = [] if loaded is None else loaded
        self.stale: list[str] = [] if stale is None else stale

    def usable(self, name: str) -> Path | None:
        """The compiled file for ``name``, or None (not built, missing, or built from another source)."""
        entry = self.modules.get(name)
        if entry is None or not is_fresh(name, entry, self.root):
            return None
        so = os.path.join(self.folder, entry["file"])
        return Path(so) if os.path.isfile(so) else None

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        so = self.usable(fullname)
        if so is None:
            self.stale.append(fullname)
            return None  # the normal finders import the pure module
        self.loaded.append(fullname)
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(so))
        return importlib.util.spec_from_file_location(fullname, so, loader=loader)


_ENTRY = ("file", "source_sha256", "source_stamp")
"""What a manifest line records of a module, after its name."""


def render_manifest(modules: dict[str, dict[str, str]], **about: str) -> str:
    """The manifest's text: the format, ``about`` (``ext_suffix``, the Cython and Python versions),
    then a line per module: ``module NAME FILE SHA256 STAMP``."""
    lines = ["# the compiled speed mode's modules: python -m emulator.speedups.build", f"format {MANIFEST_FORMAT}"]
    lines += [f"{key} {value}" for key, value in about.items()]
    lines += [" ".join(("module", m, *(modules[m][k] for k in _ENTRY))) for m in sorted(modules)]
    return "\n".join(lines) + "\n"


def read_manifest(folder: Path = COMPILED_DIR) -> dict[str, dict[str, str]] | None:
    """The compiled modules built for this interpreter (name -> what :func:`render_manifest`
    recorded), or None when there are none usable."""
    try:
        text = (folder / MANIFEST).read_text()
    except (OSError, ValueError):
        return None
    about: dict[str, str] = {}
    modules: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "module":
            name, *values = rest.split(" ")
            if len(values) != len(_ENTRY):
                return None
            modules[name] = dict(zip(_ENTRY, values, strict=True))
        elif key and not key.startswith("#"):
            about[key] = rest
    if about.get("format") != str(MANIFEST_FORMAT) or about.get("ext_suffix") != ext_suffix():
        return None
    return modules


_finder: CompiledFinder | None = None


def all_or_none(folder: Path, built: dict[str, dict[str, str]], root: Path = _PACKAGE_ROOT, names: tuple[str, ...] = BUILT_MODULES) -> CompiledFinder:
    """A finder of the compiled ``names`` in ``folder``: every one when all are fresh, none when
    any is stale (the finder's ``stale`` then names those); see the module docstring."""
    old = stale(built, root, names)
    return CompiledFinder(folder, {} if old else {m: built[m] for m in names}, root, stale=old)


def install() -> None:
    """Put the compiled-module finder first on ``sys.meta_path`` (once; nothing when pure or not
    built). When any built module is stale, the finder loads none: see the module docstring."""
    global _finder
    if _finder is not None or pure_requested():
        return
    folder = Path(os.environ.get(COMPILED_DIR_ENV) or COMPILED_DIR)
    modules = read_manifest(folder)
    if not modules:
        return
    _finder = all_or_none(folder, modules)
    sys.meta_path.insert(0, _finder)


def is_compiled(module: str) -> bool:
    """Whether an imported module runs compiled."""
    mod = sys.modules.get(module)
    return mod is not None and str(getattr(mod, "__file__", "")).endswith(ext_suffix())


def describe() -> str:
    """The speed mode, for ``--version``: compiled, or pure Python and why."""
    if pure_requested():
        return f"pure Python ({PURE_ENV} is set)"
    if _finder is None:
        return "pure Python (the compiled modules are not built: `make speedups` builds them)"
    if not _finder.modules:
        return f"pure Python (the compiled modules load together or not at all, and these changed since the build: {', '.join(_finder.stale)}; `make speedups` rebuilds them)"
    return f"compiled ({len(COMPILED_MODULES)} request-path modules, Cython; C crossings)"


install()
