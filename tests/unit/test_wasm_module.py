import pytest
import wasmtime

from emulator.vm.module import ModuleFormatError, parse_module
from tests.conftest import FIXTURES


def test_outline_of_a_small_module():
    info = parse_module(
        bytes(
            wasmtime.wat2wasm(
                '(module (import "env" "proxy_log" (func (param i32 i32 i32) (result i32))) (memory (export "memory") 2 5) (func $f (export "f") (param i64)) (global (mut i32) (i32.const 0)))'
            )
        )
    )
    assert [(i.module, i.name, i.type) for i in info.imports] == [("env", "proxy_log", (("i32",) * 3, ("i32",)))]
    assert info.export_types() == {"memory": None, "f": (("i64",), ())}
    assert info.memory_limits == (2, 5)
    assert info.mutable_globals == 1
    assert info.function_names[1] == "f"


def test_go_fixture_imports_fd_write_twice():
    info = parse_module((FIXTURES / "go/headers_go.wasm").read_bytes())
    assert info.import_names().count(("wasi_snapshot_preview1", "fd_write")) == 2
    assert "Go" in " ".join(info.producers.get("language", []))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 8-byte header"),
        (b"(module)\n", "WebAssembly text"),
        (b"\0asm\x02\0\0\0", "version"),
        (b"\0asm\x01\0\0\0\x01\x05\x01", "runs past the end"),
        (b"\0asm\x01\0\0\0\x07\x01\x05", "unexpected end"),
        (b"\0asm\x01\0\0\0\x2a\x00", "unknown section id 42"),
    ],
)
def test_malformed_modules_give_clear_errors(data, message):
    with pytest.raises(ModuleFormatError, match=message):
        parse_module(data)


def test_every_truncation_of_a_fixture_is_rejected_cleanly():
    data = (FIXTURES / "rust/headers_rust.wasm").read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 97)):
        try:
            parse_module(data[:cut])
        except ModuleFormatError:
            continue
        # a prefix that ends exactly on a section boundary is a valid (smaller) outline
        assert cut >= 8


def test_a_programs_outline_leaves_out_the_data_segment_table_cached_or_not(tmp_path):
    """The Go fixture has tens of thousands of data segments: the table would be most of the cached
    outline, and nothing after loading reads it (the harvest and inspect parse the module)."""
    from emulator.engines import get_engine
    from emulator.vm.cache import ModuleCache
    from emulator.vm.program import Program

    wasm = (FIXTURES / "go/headers_go.wasm").read_bytes()
    assert len(parse_module(wasm).data_segments) > 10_000
    cache = ModuleCache(tmp_path)
    for _ in ("miss", "hit"):
        info = Program(get_engine("wasmtime"), wasm, cache=cache).info
        assert info.data_segments == [] and info.data_addresses == []
        assert info.imports and info.exports  # the rest of the outline is there
    assert cache.misses == 1 and cache.hits == 1


@pytest.mark.parametrize(
    "fixture", ["go/headers_go.wasm", "rust/headers_rust.wasm", "c/headers_cpp.wasm", "assemblyscript_current/headers_assemblyscript_current.wasm"]
)
def test_the_cached_outline_and_coverage_map_equal_the_ones_a_load_computes(tmp_path, fixture):
    """The module cache keeps them as plain data (``marshal``); read back, they are the same records."""
    from abi.records import replace
    from emulator.engines import get_engine
    from emulator.vm.cache import ModuleCache
    from emulator.vm.program import Program

    wasm = (FIXTURES / fixture).read_bytes()
    expected = replace(parse_module(wasm), data_segments=[], data_addresses=[])
    cache = ModuleCache(tmp_path)
    computed = Program(get_engine("wasmtime"), wasm, cache=cache, coverage=True)
    cached = Program(get_engine("wasmtime"), wasm, cache=cache, coverage=True)
    assert cache.misses == 1 and cache.hits == 1
    assert computed.info == expected and cached.info == expected
    assert cached.snapshot_globals == computed.snapshot_globals
    assert cached.coverage == computed.coverage and computed.coverage is not None and computed.coverage.sites


def test_a_file_loaded_before_is_known_by_its_stamp_and_a_changed_one_is_hashed(tmp_path, monkeypatch):
    """A new session (as a new process) that loads a file a load already saw hashes nothing: the
    module cache remembers the sha256 by the file's stamp; any write to the file changes the stamp."""
    import shutil

    import emulator.host
    from emulator import Host
    from emulator.session import Session
    from emulator.vm.cache import ModuleCache, wasm_digest

    module = tmp_path / "filter.wasm"
    shutil.copy(FIXTURES / "wat/minimal.wasm", module)
    cache = ModuleCache(tmp_path / "cache")
    hashed = []
    monkeypatch.setattr(emulator.host, "wasm_digest", lambda wasm: hashed.append(len(wasm)) or wasm_digest(wasm))

    first = Host(cache=cache, session=Session()).program(module)
    assert len(hashed) == 1
    again = Host(cache=cache, session=Session()).program(module)
    assert len(hashed) == 1 and again.sha256 == first.sha256 == wasm_digest(module.read_bytes())

    module.write_bytes((FIXTURES / "wat/null_filter.wasm").read_bytes())  # new bytes: a new stamp
    changed = Host(cache=cache, session=Session()).program(module)
    assert len(hashed) == 2 and changed.sha256 == wasm_digest(module.read_bytes()) != first.sha256
    assert Host(cache=False, session=Session()).program(module).sha256 == changed.sha256 and len(hashed) == 3  # no cache: hashed
