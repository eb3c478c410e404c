"""The compiled speed mode: built from the unchanged source, used only while that source is unchanged."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from emulator import Host, speedups
from emulator.speedups import build as speedups_build
from emulator.speedups import train as speedups_train
from tests.conftest import ROOT

MODULE = '''
"""A module to compile."""

def double(x: bytes) -> bytes:
    return x * 2
'''


def _build(root, out):
    source = root / "pkgx/mod.py"
    sources = {"pkgx.mod": source}
    entries = {m: {"source_sha256": speedups.source_digest(p), "source_stamp": speedups.source_stamp(p)} for m, p in sources.items()}
    return speedups_build.build(sources, out, entries=entries, manifest=speedups.MANIFEST, render=speedups.render_manifest, jobs=1)


def test_a_compiled_module_is_used_only_while_its_source_is_unchanged(tmp_path):
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx/__init__.py").write_text("")
    source = tmp_path / "pkgx/mod.py"
    source.write_text(MODULE)
    out = tmp_path / "compiled"
    assert _build(tmp_path, out) == ["pkgx.mod" + speedups.ext_suffix()]

    manifest = speedups.read_manifest(out)
    assert manifest is not None and manifest["pkgx.mod"]["source_sha256"] == speedups.source_digest(source)
    finder = speedups.CompiledFinder(out, manifest, root=tmp_path)
    spec = finder.find_spec("pkgx.mod")
    assert spec is not None and spec.origin == str(out / ("pkgx.mod" + speedups.ext_suffix()))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.double(bytearray(b"ab")) == bytearray(b"abab")  # Python semantics: the annotation is not enforced
    assert finder.loaded == ["pkgx.mod"]

    source.write_text(MODULE + "\n# edited after the build\n")
    assert finder.find_spec("pkgx.mod") is None  # the normal import system loads the edited source
    assert finder.stale == ["pkgx.mod"]
    assert finder.find_spec("pkgx.other") is None  # not built: not this finder's business


def test_an_unchanged_stamp_spares_the_hash_and_a_touched_source_is_hashed(tmp_path, monkeypatch):
    """A new process reads no source while each one's size and mtime are the manifest's; a source
    whose stamp changed is hashed, and stays fresh while its bytes are the same."""
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx/__init__.py").write_text("")
    source = tmp_path / "pkgx/mod.py"
    source.write_text(MODULE)
    out = tmp_path / "compiled"
    _build(tmp_path, out)
    entry = speedups.read_manifest(out)["pkgx.mod"]
    hashed = []
    real_digest = speedups.source_digest
    monkeypatch.setattr(speedups, "source_digest", lambda path: hashed.append(path) or real_digest(path))
    assert speedups.is_fresh("pkgx.mod", entry, tmp_path) and hashed == []
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: the same bytes
    assert speedups.is_fresh("pkgx.mod", entry, tmp_path) and hashed == [source]
    source.write_text(MODULE.replace("double", "triple"))  # the same size, other bytes, a new mtime
    assert not speedups.is_fresh("pkgx.mod", entry, tmp_path)


TYPED = '''
"""A module whose class the build types."""

class Box:
    """One value."""

    def __init__(self, value):
        self.value = value
'''


def test_a_module_with_declarations_is_built_with_them_and_stale_when_they_change(tmp_path):
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx/__init__.py").write_text("")
    (tmp_path / "pkgx/mod.py").write_text(TYPED)
    declarations = tmp_path / "pkgx/mod.pxd"
    declarations.write_text("cdef class Box:\n    cdef dict __dict__\n    cdef public object value\n")
    out = tmp_path / "compiled"
    _build(tmp_path, out)
    finder = speedups.CompiledFinder(out, speedups.read_manifest(out), root=tmp_path)
    spec = finder.find_spec("pkgx.mod")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    box = module.Box(3)
    assert box.value == 3 and type(module.Box.__dict__["value"]).__name__ == "getset_descriptor"  # a typed field
    box.other = 4  # the declared __dict__: any other attribute, as on the pure class
    assert box.other == 4
    declarations.write_text("cdef class Box:\n    cdef public object value\n")  # only the declarations changed
    assert finder.find_spec("pkgx.mod") is None and finder.stale == ["pkgx.mod"]


def test_the_compiled_modules_load_together_or_not_at_all(tmp_path):
    """One module's declarations are C structs to another's build: a compiled module beside a pure
    one it was built against would not import, so one stale source makes every module pure."""
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx/__init__.py").write_text("")
    for name in ("a", "b"):
        (tmp_path / f"pkgx/{name}.py").write_text(MODULE)
    sources = {f"pkgx.{n}": tmp_path / f"pkgx/{n}.py" for n in ("a", "b")}
    out = tmp_path / "compiled"
    entries = {m: {"source_sha256": speedups.source_digest(p), "source_stamp": speedups.source_stamp(p)} for m, p in sources.items()}
    speedups_build.build(sources, out, entries=entries, manifest=speedups.MANIFEST, render=speedups.render_manifest, jobs=1)
    names = tuple(sources)
    finder = speedups.all_or_none(out, speedups.read_manifest(out), root=tmp_path, names=names)
    assert all(finder.find_spec(m) is not None for m in names) and finder.stale == []
    (tmp_path / "pkgx/a.py").write_text(MODULE + "\n# edited after the build\n")
    finder = speedups.all_or_none(out, speedups.read_manifest(out), root=tmp_path, names=names)
    assert [finder.find_spec(m) for m in names] == [None, None] and finder.stale == ["pkgx.a"]


def test_a_manifest_for_another_interpreter_is_ignored(tmp_path):
    entry = {"file": "a.so", "source_sha256": "0" * 64, "source_stamp": "1:2"}
    (tmp_path / speedups.MANIFEST).write_text(speedups.render_manifest({"a": entry}, ext_suffix=speedups.ext_suffix()))
    assert speedups.read_manifest(tmp_path) == {"a": entry}  # the control: this interpreter's manifest is read
    (tmp_path / speedups.MANIFEST).write_text(speedups.render_manifest({"a": entry}, ext_suffix=".cpython-27-other.so"))
    assert speedups.read_manifest(tmp_path) is None
    (tmp_path / speedups.MANIFEST).write_text(speedups.render_manifest({"a": entry}, ext_suffix=speedups.ext_suffix()).replace("format 2", "format 1"))
    assert speedups.read_manifest(tmp_path) is None
    (tmp_path / speedups.MANIFEST).write_text(f"format {speedups.MANIFEST_FORMAT}\next_suffix {speedups.ext_suffix()}\nmodule a a.so\n")  # a line cut short
    assert speedups.read_manifest(tmp_path) is None
    assert speedups.read_manifest(tmp_path / "missing") is None


def _modes(env_pure: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != speedups.PURE_ENV}
    if env_pure is not None:
        env[speedups.PURE_ENV] = env_pure
    code = (
        "import json, emulator\n"
        "from emulator import Host, speedups\n"
        "from emulator.engines import wasmtime_engine\n"
        "Host(trace=False)\n"
        "print(json.dumps({'compiled': [m for m in speedups.COMPILED_MODULES if speedups.is_compiled(m)], 'describe': speedups.describe(),\n"
        "                  'c_crossings': wasmtime_engine._crossing is not None}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_the_pure_switch_gives_every_module_in_python():
    modes = _modes("1")
    assert modes["compiled"] == []
    assert modes["describe"] == f"pure Python ({speedups.PURE_ENV} is set)"
    assert modes["c_crossings"] is False  # the ctypes crossings, the reference path


def test_this_checkout_runs_what_its_build_says():
    """With a build (make, pip install), every listed module runs compiled; without one, none does."""
    modes = _modes(None)
    built = speedups.read_manifest() is not None
    fresh = built and not speedups.stale(speedups.read_manifest())
    if fresh:
        assert modes["compiled"] == list(speedups.COMPILED_MODULES)
        assert modes["describe"] == f"compiled ({len(speedups.COMPILED_MODULES)} request-path modules, Cython; C crossings)"
        assert modes["c_crossings"] is True
    elif built:  # a source changed since the build: every module runs as Python, and the mode says which changed
        assert modes["compiled"] == [] and modes["c_crossings"] is False
        assert modes["describe"].startswith("pure Python (the compiled modules load together or not at all, and these changed since the build: ")
    else:
        assert modes["compiled"] == []
        assert modes["describe"].startswith("pure Python (the compiled modules are not built")
        assert modes["c_crossings"] is False


@pytest.mark.parametrize("module", speedups.BUILT_MODULES)
def test_each_compiled_module_exists_as_source(module):
    assert speedups.source_path(module).is_file()


def test_a_failed_build_raises_and_leaves_the_previous_build_in_place(tmp_path, monkeypatch, capsys):
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx/__init__.py").write_text("")
    (tmp_path / "pkgx/mod.py").write_text(MODULE)
    out = tmp_path / "compiled"
    _build(tmp_path, out)
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setenv("CC", "/bin/false")  # no working C compiler: setup.py then installs the pure modules
    (tmp_path / "pkgx/mod.py").write_text(MODULE + "\n# changed\n")
    with pytest.raises(Exception, match="false"):
        _build(tmp_path, out)
    assert sorted(p.name for p in out.iterdir()) == before  # the old build is whole (and stale: the finder skips it)
    assert speedups.CompiledFinder(out, speedups.read_manifest(out), root=tmp_path).find_spec("pkgx.mod") is None


def test_stale_names_the_modules_a_manifest_lacks_or_built_from_other_source():
    assert speedups.stale({}) == list(speedups.BUILT_MODULES)
    built = {m: {"file": "x.so", "source_sha256": speedups.source_digest(speedups.source_path(m))} for m in speedups.BUILT_MODULES}
    assert speedups.stale(built) == []
    built["emulator.trace"] = {"file": "x.so", "source_sha256": "0" * 64}
    assert speedups.stale(built) == ["emulator.trace"]


def test_a_profile_guided_build_trains_the_instrumented_modules_then_compiles_from_their_profile(tmp_path):
    """With GCC, ``train`` gets a folder of instrumented modules (a manifest's layout), runs them in
    another process, and the profile that process leaves beside the objects is what the second
    compilation reads; with another compiler it is never called. The result works either way."""
    (tmp_path / "pkgx").mkdir()
    (tmp_path / "pkgx/__init__.py").write_text("")
    source = tmp_path / "pkgx/mod.py"
    source.write_text(MODULE)
    seen = []

    def train(folder):
        program = (
            "import importlib.util, pathlib\n"
            "from emulator import speedups\n"
            f"folder = pathlib.Path({str(folder)!r})\n"
            f"finder = speedups.CompiledFinder(folder, speedups.read_manifest(folder), root=pathlib.Path({str(tmp_path)!r}))\n"
            "spec = finder.find_spec('pkgx.mod'); module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "assert all(module.double(b'ab') == b'abab' for _ in range(1000))\n"
        )
        subprocess.run([sys.executable, "-c", program], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        seen.append((sorted(p.name for p in folder.iterdir()), sorted(p.name for p in folder.parents[1].rglob("*.gcda"))))
        return True

    out = tmp_path / "compiled"
    sources = {"pkgx.mod": source}
    entries = {m: {"source_sha256": speedups.source_digest(p), "source_stamp": speedups.source_stamp(p)} for m, p in sources.items()}
    files = speedups_build.build(sources, out, entries=entries, manifest=speedups.MANIFEST, render=speedups.render_manifest, jobs=1, train=train)
    assert files == ["pkgx.mod" + speedups.ext_suffix()]
    if speedups_build.compiler_is_gcc():
        assert seen == [(sorted([speedups.MANIFEST, files[0]]), ["mod.gcda"])]  # the training's profile, beside the module's object
    else:
        assert seen == []
    finder = speedups.CompiledFinder(out, speedups.read_manifest(out), root=tmp_path)
    spec = finder.find_spec("pkgx.mod")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.double(b"xy") == b"xyxy"


def test_the_training_run_refuses_when_the_compiled_modules_do_not_load(tmp_path):
    """Exit 3: a profile of pure-Python modules would be empty, so the build compiles without one."""
    env = {**os.environ, speedups.COMPILED_DIR_ENV: str(tmp_path)}  # an empty folder: nothing compiled to load
    env.pop(speedups.PURE_ENV, None)
    done = subprocess.run([sys.executable, "-m", "emulator.speedups.train"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "did not load" in done.stderr


def test_the_training_sends_each_feature_filter_requests_its_roles_act_on():
    """A feature filter with no root_id passes a request through after one property read, so a
    training on it would leave the SDK's request paths unprofiled: each plugin it is given must
    read or write headers, metrics or shared data on every request."""
    features = [ROOT / "fixtures" / f for f in speedups_train.FILTERS if "_features/" in f]
    assert len(features) == 2
    for wasm in features:
        host = Host()
        plugins = speedups_train.trained_plugins(host, wasm)
        assert len(plugins) >= 2
        for plugin in plugins:
            host.trace.clear()
            stream = plugin.http_stream()
            stream.send_request_headers(speedups_train._REQUEST, end_of_stream=True)
            called = {e.function for e in host.trace}
            assert called & {"proxy_add_header_map_value", "proxy_get_header_map_value", "proxy_increment_metric", "proxy_get_shared_data"}, (
                wasm.name,
                plugin.root_id,
                called,
            )
