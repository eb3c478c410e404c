"""Build the compiled speed mode: Cython compiles the request-path modules' unchanged source.

    python -m emulator.speedups.build [--jobs N] [--clean]

``make`` and ``pip install`` run this; it needs Cython and a C compiler. The build is atomic: a
folder of compiled modules and a manifest of the source digests they were built from replaces the
old one whole, so a failed build leaves the previous state (or pure Python) in place.

This file imports nothing from the ``emulator`` package at module level: ``setup.py`` loads it by
path, before the package's dependencies are installed.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

#: Python semantics: annotations are documentation, not enforced types (a ``-> bytes`` function
#: may return a bytearray, as it may in the pure module).
DIRECTIVES = {"language_level": 3, "binding": True, "annotation_typing": False, "embedsignature": True}


@contextlib.contextmanager
def _compiler_output_to(log: Path, quiet: bool) -> Iterator[None]:
    """Send the C compiler's output (pages of warnings about generated code) to ``log``; shown on failure."""
    if not quiet:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("wb") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            sys.stderr.write(log.read_text(errors="replace")[-6000:])
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def build(
    sources: Mapping[str, Path],
    out_dir: Path,
    *,
    entries: Mapping[str, Mapping[str, str]],
    manifest: str,
    render: Callable[..., str],
    jobs: int = 2,
    quiet: bool = True,
) -> list[str]:
    """Compile ``sources`` (dotted module name -> its ``.py`` or ``.pyx`` file, with a ``.pxd`` of
    declarations beside it where it has one) into ``out_dir`` with a manifest named ``manifest``:
    ``render`` (``emulator.speedups.render_manifest``) writes it from each module's file and its
    ``entries`` (``emulator.speedups.build_inputs``). Returns the files built.

    Raises whatever Cython or the C compiler raise: the callers decide whether that is fatal.
    """
    from Cython import __version__ as cython_version
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pwe-speedups-") as tmp_name:
        tmp = Path(tmp_name)
        modules = list(sources)
        with _compiler_output_to(tmp / "build.log", quiet):
            extensions = cythonize(
                [Extension(m, [str(p)]) for m, p in sources.items()],
                build_dir=str(tmp / "c"),
                compiler_directives=DIRECTIVES,
                quiet=quiet,
                nthreads=jobs if jobs > 1 else 0,
            )
            dist = Distribution({"name": "proxy-wasm-emulator-speedups", "ext_modules": extensions})
            cmd = build_ext(dist)
            cmd.build_lib = str(tmp / "lib")
            cmd.build_temp = str(tmp / "obj")
            cmd.parallel = jobs
            cmd.ensure_finalized()
            cmd.run()
        staged = tmp / "staged"
        staged.mkdir()
        built_entries: dict[str, dict[str, str]] = {}
        for m in modules:
            built = (tmp / "lib").joinpath(*m.split(".")).with_name(m.rsplit(".", 1)[-1] + suffix)
            name = m + suffix
            shutil.copy2(built, staged / name)
            built_entries[m] = {"file": name, **entries[m]}
        (staged / manifest).write_text(render(built_entries, ext_suffix=suffix, cython=cython_version, python=sys.version.split()[0]))
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            out_dir.rename(old)
        shutil.move(str(staged), str(out_dir))
        shutil.rmtree(old, ignore_errors=True)
    return sorted(built_entries[m]["file"] for m in modules)


def clean(out_dir: Path) -> None:
    """Remove the compiled modules: the pure ones run."""
    shutil.rmtree(out_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """The command line: build (or ``--clean``) the compiled modules of this checkout or installation."""
    import argparse

    from emulator.speedups import COMPILED_DIR, MANIFEST, PURE_ENV, build_inputs, pure_requested, read_manifest, render_manifest, stale

    p = argparse.ArgumentParser(prog="python -m emulator.speedups.build", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="C compilations at once (default: the CPU count)")
    p.add_argument("--clean", action="store_true", help="remove the compiled modules instead")
    p.add_argument("--if-stale", action="store_true", help="build only when a module's source changed since the last build (or none was built)")
    args = p.parse_args(argv)
    if args.clean:
        clean(COMPILED_DIR)
        print(f"speedups: removed {COMPILED_DIR}")
        return 0
    if pure_requested():
        print(f"speedups: {PURE_ENV} is set; nothing built")
        return 0
    if args.if_stale and not stale(read_manifest() or {}):
        return 0
    sources, entries = build_inputs()
    files = build(sources, COMPILED_DIR, entries=entries, manifest=MANIFEST, render=render_manifest, jobs=args.jobs)
    print(f"speedups: {len(files)} modules compiled into {COMPILED_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
