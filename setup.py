"""Packaging hook: after the pure-Python build, compile the request-path modules with Cython.

Everything else about the package is in pyproject.toml. Without Cython or a C compiler (or with
PROXY_WASM_EMULATOR_PURE=1) the install goes on and the package runs its pure-Python modules;
``proxy-wasm-emulator --version`` says which mode an installation has.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _load(name: str, path: Path):  # by path: the package's dependencies are not installed yet
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: a class defined there looks its module up
    spec.loader.exec_module(module)
    return module


class BuildPyWithSpeedups(build_py):
    """``build_py``, then the compiled speed mode into the build (or, when editable, the source tree)."""

    def run(self) -> None:
        super().run()
        speedups = _load("_pwe_speedups", ROOT / "emulator/speedups/__init__.py")
        if speedups.pure_requested():
            return
        builder = _load("_pwe_speedups_build", ROOT / "emulator/speedups/build.py")
        target = ROOT if getattr(self, "editable_mode", False) else Path(self.build_lib)
        out_dir = target / speedups.COMPILED_DIR.relative_to(ROOT)
        if not speedups.stale(speedups.read_manifest(out_dir) or {}, ROOT):
            print("proxy-wasm-emulator: compiled speed mode already built from these sources")
            return
        try:
            sources, entries = speedups.build_inputs(ROOT)
            files = builder.build(sources, out_dir, entries=entries, manifest=speedups.MANIFEST, render=speedups.render_manifest)
        except Exception as exc:  # no compiler, no Cython: the pure modules run
            print(f"proxy-wasm-emulator: the compiled speed mode was not built ({type(exc).__name__}: {exc}); the pure-Python modules will run")
            return
        print(f"proxy-wasm-emulator: compiled speed mode: {len(files)} modules")


class BinaryDistribution(Distribution):
    """The wheel carries compiled modules: tag it for this platform and Python, not ``py3-none-any``."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildPyWithSpeedups}, distclass=BinaryDistribution)
