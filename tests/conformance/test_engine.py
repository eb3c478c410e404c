"""Engine conformance: every adapter must behave the same through the engine protocol."""

from __future__ import annotations

import pytest

from emulator.engines import CompileError, EngineConfig, GuestMemory, GuestTrap, HostFunction, LinkError, MemoryAccessError, get_engine, wasmtime_engine
from emulator.vm.cache import ModuleCache
from tests.conftest import wat_module

I32, I64 = ("i32",), ("i64",)

# wasmtime's fast path crosses between Python and the guest in C where the speed mode built its
# accelerator (emulator.engines._crossing), else through ctypes: every test here runs on each
# crossing this process has (the pure-Python run of the suite has only ctypes).
CROSSINGS = ["c", "ctypes"] if wasmtime_engine._crossing is not None else ["ctypes"]


@pytest.fixture(params=CROSSINGS, autouse=True)
def crossing(request, monkeypatch):
    if request.param == "ctypes":
        monkeypatch.setattr(wasmtime_engine, "_crossing", None)
    return request.param


class Recorder:
    def __init__(self):
        self.calls = []
        self.instance = None

    def imports(self):
        def h_add(a, b):
            self.calls.append(("h_add", a, b))
            return a + b

        def h_i64(v):
            self.calls.append(("h_i64", v))
            return v * 2

        def h_raise(code):
            raise ValueError(f"host says no ({code})")

        def h_reenter(x):
            return self.instance.export("double")(x) + 1

        return {
            ("env", "h_add"): HostFunction(h_add, I32 * 2, I32),
            ("env", "h_i64"): HostFunction(h_i64, I64, I64),
            ("env", "h_raise"): HostFunction(h_raise, I32, ()),
            ("env", "h_reenter"): HostFunction(h_reenter, I32, I32),
        }


@pytest.fixture
def conf(engine_name):
    engine = get_engine(engine_name)
    rec = Recorder()
    module = engine.compile(wat_module("engine_conformance").read_bytes())
    rec.instance = engine.link(module, rec.imports()).instantiate()
    return rec


def test_i32_values_are_unsigned_both_ways(conf):
    add = conf.instance.export("add")
    assert add(2, 3) == 5
    assert add(0xFFFFFFFF, 0) == 0xFFFFFFFF
    assert add(0xFFFFFFFF, 2) == 1
    assert conf.instance.export("call_add")(0xFFFFFFFE, 1) == 0xFFFFFFFF
    assert conf.calls == [("h_add", 0xFFFFFFFE, 1)]


def test_arguments_are_taken_modulo_their_width_and_counted(conf, engine_name, crossing):
    add = conf.instance.export("add")
    assert add(-1, 2) == 1  # -1 is 0xFFFFFFFF as an i32
    assert conf.instance.export("neg64")(-(2**63)) == -(2**63)  # i64 wraps: -(-2**63) is itself
    if engine_name == "wasmtime":  # the fast path: the crossing this test asked for is the one in use
        assert (type(add).__name__ == "ExportCaller") == (crossing == "c")
        with pytest.raises(TypeError):
            add(1)


def test_i64_values_are_signed_both_ways(conf):
    assert conf.instance.export("neg64")(5) == -5
    assert conf.instance.export("call_i64")(-21) == -42
    assert conf.calls == [("h_i64", -21)]


def test_arguments_stay_exact_when_values_recur_and_collide(conf):
    # the C crossing hands out the same int object for a value that recurs: values that share its
    # slots, repeats, and signed i64s must still arrive as themselves
    small = [1000 + 7 * i for i in range(600)] + [0xFFFFFFFE, 257, 1000, 1000 + 256, 1000 + 1024]
    wide = [-(2**40) - 1024 * i for i in range(300)] + [2**50, -(2**50), -6, 2**40]
    for v in small + small[::-1]:
        conf.instance.export("call_add")(v, 300)
    for v in wide + wide[::-1]:
        conf.instance.export("call_i64")(v)
    expected = [("h_add", v, 300) for v in small + small[::-1]] + [("h_i64", v) for v in wide + wide[::-1]]
    assert conf.calls == expected


def test_missing_export_is_none(conf):
    assert conf.instance.export("nope") is None
    assert conf.instance.export("nop")() is None


def test_trap_carries_message_and_named_frame(conf):
    with pytest.raises(GuestTrap) as info:
        conf.instance.export("trap")()
    trap = info.value
    assert trap.kind == "trap" and trap.export == "trap"
    assert "unreachable" in trap.message
    assert trap.frames and trap.frames[0].func_name in ("inner_trap", None)
    assert trap.frames[0].func_index == 8 + 4  # 4 imported functions precede it
    with pytest.raises(GuestTrap, match=r"divide by zero|integer divide"):
        conf.instance.export("div")(1, 0)


def test_host_exception_becomes_trap_and_is_reraised_with_cause(conf):
    with pytest.raises(GuestTrap) as info:
        conf.instance.export("call_raise")(7)
    assert info.value.kind == "host"
    assert isinstance(info.value.cause, ValueError)
    assert "host says no (7)" in str(info.value)
    assert info.value.__cause__ is info.value.cause
    # the instance keeps working after a trap
    assert conf.instance.export("add")(1, 1) == 2


def test_nested_guest_call_from_a_host_function(conf):
    assert conf.instance.export("call_reenter")(20) == 41


def test_memory_view_read_write_bounds_and_growth(conf):
    mem = conf.instance.memory
    assert mem.size == 65536
    mem.write(100, b"hello")
    assert mem.read(100, 5) == b"hello"
    assert conf.instance.export("load")(100) == int.from_bytes(b"hell", "little")
    conf.instance.export("store")(200, 0xDEADBEEF)
    assert mem.u32(200) == 0xDEADBEEF
    mem.put_u64(300, 2**64 - 1)
    assert mem.u64(300) == 2**64 - 1
    with pytest.raises(MemoryAccessError):
        mem.read(65530, 10)
    assert conf.instance.export("grow")(2) == 1
    mem.write(65536 * 2 + 10, b"grown")  # past the cached view: refreshed on demand
    assert mem.read(65536 * 2 + 10, 5) == b"grown"
    assert mem.size == 3 * 65536


def test_memory_edges_behave_alike_on_every_path(conf, engine_name, crossing):
    mem = conf.instance.memory
    size = mem.size
    if engine_name == "wasmtime":  # the fast path: C memory access with the C crossings
        assert (type(mem).__name__ == "LinearMemory") == (crossing == "c")
    assert isinstance(mem, GuestMemory)  # every path's memory is one (the C one a subclass, not registered)
    assert mem.read(size + 100, 0) == b""  # an empty read never fails, wherever it points
    assert len(mem.view(size, 0)) == 0
    with pytest.raises(MemoryAccessError) as info:
        mem.view(size + 1, 0)
    assert (info.value.ptr, info.value.size, info.value.memory_size) == (size + 1, 0, size)
    mem.put_u32(16, -1)  # modulo 2**32
    assert mem.u32(16) == 0xFFFFFFFF and mem.read(16, 4) == b"\xff" * 4
    mem.put_u64(24, 0x0102030405060708)
    assert mem.read(24, 8) == bytes([8, 7, 6, 5, 4, 3, 2, 1]) and mem.u64(24) == 0x0102030405060708
    mem.put_u32_pair(40, 7, 44, 2**32 + 9)
    assert (mem.u32(40), mem.u32(44)) == (7, 9)
    with pytest.raises(MemoryAccessError):
        mem.put_u32_pair(48, 1, size - 2, 2)  # the second is out of range: neither is written
    assert mem.u32(48) == 0
    for data in (b"abc", bytearray(b"def"), memoryview(b"xghij")[1:], memoryview(b"k-l-m")[::2]):
        mem.write(60, data)
        assert mem.read(60, len(bytes(data))) == bytes(data)
    with pytest.raises(MemoryAccessError):
        mem.write(size - 1, b"ab")
    with pytest.raises(MemoryAccessError):
        mem.read(size - 3, 4)
    with pytest.raises(MemoryAccessError):  # a sum that would overflow a machine word is still out of range
        mem.read(2**62, 2**62)
    view = mem.view(100, 4)
    view[:] = b"wxyz"  # a writable view
    assert mem.read(100, 4) == b"wxyz"
    image = mem.snapshot()
    assert len(image) == size and image[100:104] == b"wxyz"
    mem.write(100, b"0000")
    mem.restore(image)
    assert mem.read(100, 4) == b"wxyz"


def test_globals(conf):
    inst = conf.instance
    assert inst.global_get("counter") == 7
    assert inst.export("bump")() == 8
    inst.global_set("counter", 100)
    assert inst.export("bump")() == 101
    assert inst.global_get("wide") == -2
    with pytest.raises(KeyError):
        inst.global_get("nope")


def test_link_errors_name_every_problem(engine_name):
    engine = get_engine(engine_name)
    module = engine.compile(wat_module("engine_conformance").read_bytes())
    imports = Recorder().imports()
    del imports[("env", "h_add")]
    imports[("env", "h_i64")] = HostFunction(lambda v: v, I32, I32)
    with pytest.raises(LinkError) as info:
        engine.link(module, imports)
    assert "env.h_add: not provided" in str(info.value)
    assert "env.h_i64" in str(info.value)


def test_compile_error(engine_name):
    with pytest.raises(CompileError):
        get_engine(engine_name).compile(b"\0asm\x01\0\0\0\x01\x04\x01\x60\x00")


def test_module_cache_round_trip_and_rebuild(engine_name, tmp_path):
    engine = get_engine(engine_name)
    cache = ModuleCache(tmp_path)
    wasm = wat_module("engine_conformance").read_bytes()
    cache.compile(engine, wasm)
    module = cache.compile(engine, wasm)
    assert (cache.misses, cache.hits) == (1, 1)
    rec = Recorder()
    rec.instance = engine.link(module, rec.imports()).instantiate()
    assert rec.instance.export("add")(40, 2) == 42
    # replace the entry (never truncate it in place: the live module may be mmapped from it)
    path = cache.path_for(engine, wasm)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"garbage")
    tmp.replace(path)
    cache.compile(engine, wasm)
    assert cache.rebuilt == 1 and cache.misses == 2


def test_fuel_counts_and_limits(engine_name):
    engine = get_engine(engine_name, EngineConfig(fuel=True)) if engine_name != "wasmer" else None
    if engine is None:
        with pytest.raises(NotImplementedError, match="fuel"):
            get_engine("wasmer", EngineConfig(fuel=True))
        return
    rec = Recorder()
    rec.instance = engine.link(engine.compile(wat_module("engine_conformance").read_bytes()), rec.imports()).instantiate()
    rec.instance.set_fuel(1_000_000)
    rec.instance.export("count")(1000)
    used_1000 = 1_000_000 - rec.instance.get_fuel()
    rec.instance.set_fuel(1_000_000)
    rec.instance.export("count")(2000)
    used_2000 = 1_000_000 - rec.instance.get_fuel()
    assert 1.9 < used_2000 / used_1000 < 2.1
    rec.instance.set_fuel(100)
    with pytest.raises(GuestTrap) as info:
        rec.instance.export("count")(10_000)
    assert info.value.kind == "fuel"


def test_deadline_interrupts_a_runaway_loop(engine_name):
    if engine_name == "wasmer":
        with pytest.raises(NotImplementedError, match="epoch"):
            get_engine("wasmer", EngineConfig(epoch=True))
        return
    engine = get_engine(engine_name, EngineConfig(epoch=True))
    rec = Recorder()
    rec.instance = engine.link(engine.compile(wat_module("engine_conformance").read_bytes()), rec.imports()).instantiate()
    rec.instance.set_deadline(0.05)
    with pytest.raises(GuestTrap) as info:
        rec.instance.export("spin")()
    assert info.value.kind == "interrupt"
    rec.instance.set_deadline(None)
    assert rec.instance.export("add")(1, 2) == 3


def test_fuel_is_refused_when_not_configured(engine_name):
    rec = Recorder()
    engine = get_engine(engine_name)
    rec.instance = engine.link(engine.compile(wat_module("engine_conformance").read_bytes()), rec.imports()).instantiate()
    with pytest.raises(NotImplementedError):
        rec.instance.set_fuel(10)
