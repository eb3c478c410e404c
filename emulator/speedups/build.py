"""Build the compiled speed mode: Cython compiles the request-path modules' unchanged source.

    python -m emulator.speedups.build [--jobs N] [--clean] [--no-profile]

``make`` and ``pip install`` run this; it needs Cython and a C compiler. The build is atomic: a
folder of compiled modules and a manifest of the source digests they were built from replaces the
old one whole, so a failed build leaves the previous state (or pure Python) in place.

Profile-guided (the command line, with GCC): the modules are first built instrumented, a training
run (:mod:`emulator.speedups.train`) sends requests through them, and GCC then compiles them again
laid out and optimized for the paths that run. The request path is instruction-cache bound (the
guest's code, the interpreter's and ours take turns), and GCC keeps the hot code together. Where
the training cannot run (another compiler, no filters to train on, a failure), the modules are
built once, without a profile; the result behaves the same either way.

This file imports nothing from the ``emulator`` package at module level: ``setup.py`` loads it by
path, before the package's dependencies are installed.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
import sysconfig
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


#: What GCC builds the training run with, and then from its profile (``-fprofile-correction``:
#: the counters of code the training reaches from two threads may disagree a little;
#: ``-fprofile-partial-training``: code the profile counts as never run is compiled for speed, as
#: without a profile, not moved cold and for size. Without it GCC laid the C trace recorder's
#: whole body out as cold though the training runs it, and a traced request cost 3-4% more).
_INSTRUMENT = ["-fprofile-generate", "-fprofile-update=single"]
_FROM_PROFILE = ["-fprofile-use", "-fprofile-correction", "-fprofile-partial-training", "-Wno-missing-profile"]


def build(
    sources: Mapping[str, Path],
    out_dir: Path,
    *,
    entries: Mapping[str, Mapping[str, str]],
    manifest: str,
    render: Callable[..., str],
    jobs: int = 2,
    quiet: bool = True,
    train: Callable[[Path], bool] | None = None,
) -> list[str]:
    """Compile ``sources`` (dotted module name -> its ``.py`` or ``.pyx`` file, with a ``.pxd`` of
    declarations beside it where it has one) into ``out_dir`` with a manifest named ``manifest``:
    ``render`` (``emulator.speedups.render_manifest``) writes it from each module's file and its
    ``entries`` (``emulator.speedups.build_inputs``). Returns the files built.

    ``train``: build profile-guided where the compiler is GCC. The modules are built instrumented
    into a folder of the same layout, ``train(folder)`` runs them (True: it did, and left its
    profile), and they are compiled again from that profile. When it returns False, or the
    compiler is another, they are compiled once without a profile.

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

        def compile_all(flags: list[str]) -> None:
            for ext in extensions:
                ext.extra_compile_args = ext.extra_link_args = flags
            dist = Distribution({"name": "proxy-wasm-emulator-speedups", "ext_modules": extensions})
            cmd = build_ext(dist)
            cmd.build_lib = str(tmp / "lib")
            cmd.build_temp = str(tmp / "obj")  # the same objects' paths both times: GCC finds their profile beside them
            cmd.parallel = jobs
            cmd.force = True  # the second time too, though the C sources are older than the first build's
            cmd.ensure_finalized()
            cmd.run()

        def stage(folder: Path) -> list[str]:
            folder.mkdir(parents=True)
            built_entries: dict[str, dict[str, str]] = {}
            for m in modules:
                built = (tmp / "lib").joinpath(*m.split(".")).with_name(m.rsplit(".", 1)[-1] + suffix)
                name = m + suffix
                shutil.copy2(built, folder / name)
                built_entries[m] = {"file": name, **entries[m]}
            (folder / manifest).write_text(render(built_entries, ext_suffix=suffix, cython=cython_version, python=sys.version.split()[0]))
            return sorted(e["file"] for e in built_entries.values())

        with _compiler_output_to(tmp / "build.log", quiet):
            extensions = cythonize(
                [Extension(m, [str(p)]) for m, p in sources.items()],
                build_dir=str(tmp / "c"),
                compiler_directives=DIRECTIVES,
                quiet=quiet,
                nthreads=jobs if jobs > 1 else 0,
            )
            profiled = False
            if train is not None and compiler_is_gcc():
                compile_all(_INSTRUMENT)
                stage(tmp / "instrumented" / out_dir.name)
                profiled = train(tmp / "instrumented" / out_dir.name)
            compile_all(_FROM_PROFILE if profiled else [])
        staged = tmp / "staged"
        files = stage(staged)
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            out_dir.rename(old)
        shutil.move(str(staged), str(out_dir))
        shutil.rmtree(old, ignore_errors=True)
    return files


def clean(out_dir: Path) -> None:
    """Remove the compiled modules: the pure ones run."""
    shutil.rmtree(out_dir, ignore_errors=True)


def compiler_is_gcc() -> bool:
    """Whether the C compiler the build uses (``CC``, else Python's own) is GCC: its profile files
    are the only ones :func:`build` knows how to make and use."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    try:
        out = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Free Software Foundation" in out and "clang" not in out


def train_in_subprocess(folder: Path) -> bool:
    """Run :mod:`emulator.speedups.train` in a new interpreter on the modules in ``folder``; whether
    it ran them (it needs the package's dependencies and its filters to train on)."""
    from emulator.speedups import COMPILED_DIR_ENV, PURE_ENV

    env = {**os.environ, COMPILED_DIR_ENV: str(folder)}
    env.pop(PURE_ENV, None)
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        done = subprocess.run([sys.executable, "-m", "emulator.speedups.train"], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    """The command line: build (or ``--clean``) the compiled modules of this checkout or installation."""
    import argparse

    from emulator.speedups import COMPILED_DIR, MANIFEST, PURE_ENV, build_inputs, pure_requested, read_manifest, render_manifest, stale

    p = argparse.ArgumentParser(prog="python -m emulator.speedups.build", description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="C compilations at once (default: the CPU count)")
    p.add_argument("--clean", action="store_true", help="remove the compiled modules instead")
    p.add_argument("--if-stale", action="store_true", help="build only when a module's source changed since the last build (or none was built)")
    p.add_argument("--no-profile", action="store_true", help="build once, without the profile-guided training run")
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
    trained: list[bool] = []

    def train(folder: Path) -> bool:
        trained.append(train_in_subprocess(folder))
        return trained[-1]

    files = build(sources, COMPILED_DIR, entries=entries, manifest=MANIFEST, render=render_manifest, jobs=args.jobs, train=None if args.no_profile else train)
    how = "profile-guided" if any(trained) else "without a profile"
    print(f"speedups: {len(files)} modules compiled into {COMPILED_DIR} ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
