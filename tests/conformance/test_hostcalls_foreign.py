"""Foreign functions: the registry, Envoy's built-ins and callbacks into the guest (abi-spec.md §1.14, §4.5, §8)."""

from __future__ import annotations

import dataclasses
import zlib

import pytest

from abi import BufferType, Status
from emulator import CallbackError
from emulator.contexts import ContextBase
from emulator.foreign import ForeignCall, ProtobufError, parse_protobuf
from tests.conftest import wat_module
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness

BAD = 2**31
STREAM_CTX = 99
OUT_PTR, OUT_LEN = 32, 36  # not the harness's RET_PTR: address 0 means "discard the result" here


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine, vm_id="a", root_id="r")


def call(h, name, args=b"", *, ctx=None):
    """``(status, result)``; result ``None`` when the out-params were left untouched."""
    h.mem.write(OUT_PTR, b"\xaa" * 8)
    status = h.call("proxy_call_foreign_function", *h.put(name), *h.put(args), OUT_PTR, OUT_LEN, context_id=ctx)
    if h.mem.read(OUT_PTR, 8) == b"\xaa" * 8:
        return status, None
    ptr, size = h.mem.u32(OUT_PTR), h.mem.u32(OUT_LEN)
    return status, h.mem.read(ptr, size) if size else b""


class FakeStream(ContextBase):
    """A stream context of the harness plugin, with just what the built-ins touch."""

    def __init__(self, plugin):
        self.vm, self.host, self.root = plugin.vm, plugin.host, plugin
        self.id, self.parent_id = STREAM_CTX, plugin.root_context_id
        self.route_cache_cleared, self.filter_state = 0, {}

    @property
    def stream(self):
        return self

    def clear_route_cache(self):
        self.route_cache_cleared += 1
        return Status.Ok


def with_stream(h):
    stream = FakeStream(h.plugin)
    h.vm.contexts[STREAM_CTX] = stream
    return stream


# -- a tiny protobuf encoder for the argument messages ------------------------------------------


def varint(n: int) -> bytes:
    n &= 2**64 - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(*fields: tuple[int, int | bytes | str]) -> bytes:
    out = b""
    for number, value in fields:
        if isinstance(value, int):
            out += varint(number << 3) + varint(value)
        else:
            raw = value.encode() if isinstance(value, str) else value
            out += varint(number << 3 | 2) + varint(len(raw)) + raw
    return out


# -- the registry ---------------------------------------------------------------------------------


def test_unknown_function_is_not_found_and_writes_nothing(h):
    assert call(h, "no_such_function", b"x") == (Status.NotFound, None)
    assert h.host.foreign_functions.calls[-1] == ("no_such_function", b"x", Status.NotFound)


def test_registered_function_results(h):
    ff = h.host.foreign_functions
    seen = []
    ff.register("echo_upper", lambda args: seen.append(args) or args.upper())
    ff.register("nothing", lambda args: None)
    ff.register("text", lambda args: "é")
    ff.register("fails", lambda args: (Status.BadArgument, b"why"))
    ff.register("fails_quietly", lambda args: (Status.InternalFailure, None))
    assert call(h, "echo_upper", b"abc") == (Status.Ok, b"ABC")
    assert seen == [b"abc"]
    assert call(h, "nothing") == (Status.Ok, b"")
    assert h.mem.u32(OUT_PTR) == 0  # no result: ptr 0, size 0
    assert call(h, "text") == (Status.Ok, "é".encode())
    assert call(h, "fails") == (Status.BadArgument, b"why")  # the function's own status, result still written
    assert call(h, "fails_quietly") == (Status.InternalFailure, b"")
    assert ff.calls[-5:] == [
        ForeignCall("echo_upper", b"abc", Status.Ok),
        ("nothing", b"", Status.Ok),
        ("text", b"", Status.Ok),
        ("fails", b"", Status.BadArgument),
        ("fails_quietly", b"", Status.InternalFailure),
    ]
    assert "echo_upper" in ff and "compress" in ff.names


def test_null_ret_ptr_discards_the_result(h):
    h.host.foreign_functions.register("big", lambda args: b"x" * 100)
    heap = h.vm.export("heap")()
    h.mem.write(OUT_PTR, b"\xaa" * 8)
    assert h.call("proxy_call_foreign_function", *h.put("big"), 0, 0, 0, OUT_LEN) == Status.Ok
    assert h.vm.export("heap")() == heap  # no guest allocation
    assert h.mem.u32(OUT_LEN) == 100  # cpp-host still reports the size
    assert h.mem.u32(OUT_PTR) == 0xAAAAAAAA
    # a zero ret_size address: the pointer is written, the size is not
    assert h.call("proxy_call_foreign_function", *h.put("big"), 0, 0, OUT_PTR, 0) == Status.Ok
    assert h.mem.read(h.mem.u32(OUT_PTR), 100) == b"x" * 100
    assert h.call("proxy_call_foreign_function", *h.put("big"), 0, 0, 0, 0) == Status.Ok


def test_unregister_and_replace(h):
    ff = h.host.foreign_functions
    ff.register("f", lambda args: b"1")
    ff.register("f", lambda args: b"2")
    assert call(h, "f") == (Status.Ok, b"2")
    ff.unregister("f")
    assert call(h, "f") == (Status.NotFound, None)
    with pytest.raises(TypeError):
        ff.register("g", b"not callable")


def test_a_raising_function_fails_the_vm(h):
    h.host.foreign_functions.register("boom", lambda args: 1 / 0)
    with pytest.raises(CallbackError) as info:
        call(h, "boom")
    assert "ZeroDivisionError" in str(info.value)
    assert h.vm.failed is not None


def test_function_can_see_the_calling_vm(h):
    ff = h.host.foreign_functions
    ff.register("whoami", lambda args: ff.current_vm.vm_id)
    assert call(h, "whoami") == (Status.Ok, b"a")
    assert ff.current_vm is None
    assert ff.call("whoami", b"", h.vm) == (Status.Ok, b"a")  # the Python entry point


def test_bad_pointers(h):
    assert h.call("proxy_call_foreign_function", BAD, 4, 0, 0, OUT_PTR, OUT_LEN) == Status.InvalidMemoryAccess
    assert h.call("proxy_call_foreign_function", *h.put("compress"), BAD, 4, OUT_PTR, OUT_LEN) == Status.InvalidMemoryAccess
    assert h.call("proxy_call_foreign_function", *h.put("compress"), *h.put("x"), BAD, OUT_LEN) == Status.InvalidMemoryAccess
    assert h.call("proxy_call_foreign_function", *h.put("compress"), *h.put("x"), OUT_PTR, BAD) == Status.InvalidMemoryAccess
    assert h.call("proxy_call_foreign_function", *h.put("nope"), *h.put("x"), BAD, BAD) == Status.NotFound


# -- Envoy's built-ins ----------------------------------------------------------------------------


def test_compress_and_uncompress_round_trip(h):
    text = b"hello hello hello hello"
    status, packed = call(h, "compress", text)
    assert status == Status.Ok and packed == zlib.compress(text)  # zlib format, not gzip
    assert packed[:1] == b"\x78"
    assert call(h, "uncompress", packed) == (Status.Ok, text)
    assert call(h, "compress", b"") == (Status.Ok, zlib.compress(b""))
    assert call(h, "uncompress", zlib.compress(b"")) == (Status.Ok, b"")
    big = bytes(range(256)) * 200
    assert call(h, "uncompress", zlib.compress(big)) == (Status.Ok, big)  # grows past the 2n+2 estimate


@pytest.mark.parametrize("bad", [b"", b"not zlib", zlib.compress(b"truncated data")[:-3], b"\x1f\x8b\x08\x00"])
def test_uncompress_bad_input_is_serialization_failure(h, bad):
    assert call(h, "uncompress", bad) == (Status.SerializationFailure, b"")  # ptr 0, size 0 written


def test_clear_route_cache(h):
    assert call(h, "clear_route_cache") == (Status.Ok, b"")  # root context: nothing to clear
    stream = with_stream(h)
    assert call(h, "clear_route_cache", b"ignored", ctx=STREAM_CTX) == (Status.Ok, b"")
    assert stream.route_cache_cleared == 1


def test_declare_property(h):
    ff = h.host.foreign_functions
    args = pb((1, "my_prop"), (2, 1), (3, 3), (4, b"schema"), (5, 1))
    assert call(h, "declare_property", args) == (Status.Ok, b"")
    decl = ff.declared("my_prop")
    assert (decl.name, decl.readonly, decl.type, decl.schema, decl.span) == ("my_prop", True, "Protobuf", b"schema", "DownstreamRequest")
    assert (decl.vm_id, decl.context_id) == ("a", h.plugin.root_context_id)
    assert call(h, "declare_property", args) == (Status.BadArgument, b"")  # already declared here
    # prototypes live on the calling context: another root may declare the same name
    p2 = h.host.add_plugin(h.vm, root_id="other")
    assert call(h, "declare_property", args, ctx=p2.root_context_id) == (Status.Ok, b"")
    assert len(ff.declarations) == 2


def test_declare_property_defaults_and_unknown_fields(h):
    ff = h.host.foreign_functions
    assert call(h, "declare_property", pb((1, "plain"))) == (Status.Ok, b"")
    assert dataclasses.astuple(ff.declared("plain"))[:5] == ("plain", False, "Bytes", b"", "FilterChain")
    # unknown enum values act as the defaults; unknown fields and wrong wire types are skipped
    odd = pb((1, "odd"), (3, 17), (5, 9), (9, "extra"), (2, b"wire type 2 for a bool"))
    assert call(h, "declare_property", odd) == (Status.Ok, b"")
    assert dataclasses.astuple(ff.declared("odd"))[:5] == ("odd", False, "Bytes", b"", "FilterChain")
    assert call(h, "declare_property", b"") == (Status.Ok, b"")  # an empty message is valid: name ""


@pytest.mark.parametrize(
    "bad",
    [
        b"\x0a\x05ab",  # length overruns the message
        b"\x0a",  # truncated length
        b"\x10\xff",  # truncated varint
        b"\x00\x01",  # field number 0
        b"\x0c",  # end-group without start
        b"\x0e\x00",  # wire type 6
        b"\x0a\x02\xff\xfe",  # name is not UTF-8
        b"\x10" + b"\xff" * 10 + b"\x01",  # varint longer than 10 bytes
    ],
)
def test_declare_property_parse_failure_is_bad_argument(h, bad):
    assert call(h, "declare_property", bad) == (Status.BadArgument, b"")
    assert h.host.foreign_functions.declarations == []


def test_set_envoy_filter_state(h):
    ff = h.host.foreign_functions
    args = pb((1, "envoy.tcp_proxy.cluster"), (2, "egress"), (3, 2))
    assert call(h, "set_envoy_filter_state", args) == (Status.NotFound, b"")  # no stream in a root context
    stream = with_stream(h)
    assert call(h, "set_envoy_filter_state", args, ctx=STREAM_CTX) == (Status.Ok, b"")
    assert stream.filter_state == {b"envoy.tcp_proxy.cluster": b"egress"}
    write = ff.filter_state_writes[-1]
    assert (write.path, write.value, write.span, write.context_id) == ("envoy.tcp_proxy.cluster", b"egress", "DownstreamConnection", STREAM_CTX)
    assert call(h, "set_envoy_filter_state", b"\x0a\x09short", ctx=STREAM_CTX) == (Status.BadArgument, b"")
    ff.filter_state_keys = {"envoy.tcp_proxy.cluster"}  # only these have an ObjectFactory
    assert call(h, "set_envoy_filter_state", pb((1, "unknown.key"), (2, "v")), ctx=STREAM_CTX) == (Status.NotFound, b"")
    assert call(h, "set_envoy_filter_state", pb((1, "envoy.tcp_proxy.cluster"), (2, "v2")), ctx=STREAM_CTX) == (Status.Ok, b"")
    assert stream.filter_state[b"envoy.tcp_proxy.cluster"] == b"v2"


def test_builtins_use_the_real_context_not_the_effective_one(h):
    stream = with_stream(h)
    ff = h.host.foreign_functions
    args = pb((1, "k"), (2, "v"))
    seen = []

    def probe(_):
        # as if the guest had called proxy_set_effective_context(stream) earlier in this callback
        h.vm.effective_context = STREAM_CTX
        seen.append(h.vm.active is stream)
        seen.append(ff.call("set_envoy_filter_state", args, h.vm))
        seen.append(ff.call("clear_route_cache", b"", h.vm))

    ff.register("probe", probe)
    assert call(h, "probe") == (Status.Ok, b"")
    # other host calls would act on the stream, but Envoy's built-ins use current_context_ (the root)
    assert seen == [True, (Status.NotFound, None), (Status.Ok, None)]
    assert stream.filter_state == {} and stream.route_cache_cleared == 0


def test_parse_protobuf_helper():
    assert parse_protobuf(pb((1, "n"), (2, 1), (1, "m"))) == {1: [(2, b"n"), (2, b"m")], 2: [(0, 1)]}
    assert parse_protobuf(b"\x0b\x08\x01\x0c\x10\x02") == {2: [(0, 2)]}  # a group is skipped
    with pytest.raises(ProtobufError):
        parse_protobuf(b"\x0b\x08\x01\x14")  # mismatched end-group


# -- callbacks into the guest ---------------------------------------------------------------------


def test_invoke_callback_delivers_call_data(h):
    rx = h.host.load(wat_module("queue_receiver"), vm_id="a", root_id="receiver")
    ff = h.host.foreign_functions
    assert ff.invoke_callback(rx, 7, b"payload") is True
    assert [r.message for r in rx.logs][-1] == "payload"
    assert (rx.vm.export("last_root")(), rx.vm.export("last_function_id")(), rx.vm.export("last_size")()) == (rx.root_context_id, 7, 7)
    assert rx.inputs is None  # buffer 8 is empty again outside the callback
    assert rx.get_buffer(BufferType.CALL_DATA).size == 0
    assert ff.invoke_callback(rx, 8, "") is True
    assert [r.message for r in rx.logs][-1] == "" and rx.vm.export("last_size")() == 0


def test_invoke_callback_is_skipped_for_abi_0_1_0(h):
    rx = h.host.load(wat_module("queue_receiver"), vm_id="a", root_id="receiver")
    rx.vm.abi = dataclasses.replace(rx.vm.abi, version="0.1.0")  # 0.1.0 has no proxy_on_foreign_function
    before = len(rx.logs)
    assert h.host.foreign_functions.invoke_callback(rx, 1, b"x") is False
    assert len(rx.logs) == before
    assert h.host.foreign_functions.invoke_callback(h.plugin, 1, b"x") is False  # no export at all


def test_call_data_is_readable_from_the_guest_only_during_the_callback(h):
    assert h.plugin.inputs is None
    assert h.call("proxy_get_buffer_bytes", BufferType.CALL_DATA, 0, 100, RET_PTR, RET_LEN) == Status.Ok
    assert h.returned() == b""
