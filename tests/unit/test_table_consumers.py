"""What the trace decoder, the hostile fuzzer, the observer and expectations read from the ABI table.

Each case is written from abi-spec.md (out-parameter widths, copy-out pairs, statuses); the guest
memory is a small fake, so nothing here needs an engine.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from abi import Status, encode_pairs, encode_path
from emulator.expectations import ExpectedCall
from emulator.hardening.calls import HostCall
from emulator.hardening.guest_checks import _check_statuses
from emulator.hardening.layout import MEM
from emulator.hardening.plans import GuestPlan
from emulator.hardening.results import PlanResult
from emulator.observer import _answer
from emulator.trace import decode_call, decode_results


class FakeMemory:
    def __init__(self, size: int = 4096) -> None:
        self.data = bytearray(size)

    def read(self, ptr: int, size: int) -> bytes:
        if ptr + size > len(self.data):
            raise IndexError(f"{ptr}+{size}")
        return bytes(self.data[ptr : ptr + size])

    def u32(self, ptr: int) -> int:
        return struct.unpack_from("<I", self.read(ptr, 4))[0]

    def u64(self, ptr: int) -> int:
        return struct.unpack_from("<Q", self.read(ptr, 8))[0]

    def put(self, ptr: int, raw: bytes) -> None:
        self.data[ptr : ptr + len(raw)] = raw


def fake_vm() -> SimpleNamespace:
    return SimpleNamespace(memory=FakeMemory())


def test_a_u64_out_parameter_is_decoded_whole():
    vm = fake_vm()
    vm.memory.put(64, struct.pack("<Q", (7 << 32) | 5))
    assert decode_results(vm, "proxy_get_metric", (12, 64)) == {"value": (7 << 32) | 5}
    assert decode_results(vm, "proxy_get_current_time_nanoseconds", (64,)) == {"time": (7 << 32) | 5}
    # a u32 out-parameter reads only its 4 bytes
    assert decode_results(vm, "proxy_define_metric", (0, 0, 0, 64)) == {"id": 5}


def test_copy_out_results_and_plain_out_parameters():
    vm = fake_vm()
    vm.memory.put(100, b"reset")
    vm.memory.put(16, struct.pack("<III", 11, 100, 5))  # ret_code, ret_msg_ptr -> 100, ret_msg_size -> 5
    assert decode_results(vm, "proxy_get_status", (16, 20, 24)) == {"code": 11, "msg": "reset"}
    vm.memory.put(32, struct.pack("<II", 100, 5))
    assert decode_results(vm, "proxy_get_property", (0, 0, 32, 36)) == {"data": "reset"}
    assert decode_results(vm, "proxy_get_buffer_status", (0, 16, 20)) == {"size": 11, "flags": 100}
    assert decode_results(vm, "proxy_get_metric", (4, 4090)) == {"ret_value": "<unreadable>"}


def test_arguments_are_decoded_by_role():
    vm = fake_vm()
    pairs = encode_pairs([(b":path", b"/x"), (b"k", b"v")])
    vm.memory.put(200, pairs)
    path = encode_path(["request", "path"])
    vm.memory.put(400, path)
    vm.memory.put(500, b"hello")
    assert decode_call(vm, "proxy_set_header_map_pairs", (2, 200, len(pairs))) == {"map_type": "HTTP_RESPONSE_HEADERS", "pairs": [(":path", "/x"), ("k", "v")]}
    assert decode_call(vm, "proxy_get_property", (400, len(path), 0, 0)) == {"path": ["request", "path"]}
    assert decode_call(vm, "proxy_log", (9, 500, 5)) == {"level": 9, "msg": "hello"}  # not a LogLevel: left as a number
    assert decode_call(vm, "proxy_send_local_response", (403, 500, 5, 0, 0, 200, len(pairs), 0)) == {
        "status_code": 403,
        "details": "hello",
        "body": "",
        "headers": [(":path", "/x"), ("k", "v")],
        "grpc_status": 0,  # a scalar, not an enum: no name
    }
    assert decode_call(vm, "proxy_get_buffer_bytes", (7, 0, 10, 0, 0)) == {"buffer_type": "PLUGIN_CONFIGURATION", "start": 0, "max_size": 10}


def test_injected_data_goes_through_the_copy_out_pair():
    seen = []
    vm = SimpleNamespace(program=SimpleNamespace(calls=SimpleNamespace(copy_out=lambda data, p, s: seen.append((data, p, s)) or Status.Ok)))
    assert _answer(vm, "proxy_get_status", (16, 20, 24), b"x") == Status.Ok
    assert _answer(vm, "proxy_get_shared_data", (1, 2, 30, 34, 38), b"y") == Status.Ok
    assert seen == [(b"x", 20, 24), (b"y", 30, 34)]
    assert _answer(vm, "proxy_get_header_map_size", (0, 16), b"z") == Status.Ok and len(seen) == 2


def test_returns_data_needs_a_copy_out_function():
    with pytest.raises(ValueError, match=r"proxy_get_header_map_size returns no data.*proxy_get_property"):
        ExpectedCall("proxy_get_header_map_size", {}).returns(data="x")
    assert ExpectedCall("proxy_get_status", {}).returns(data="x").data == b"x"
    assert ExpectedCall("proxy_log", {}).returns(Status.BadArgument).status == Status.BadArgument


def test_hostile_out_pointers_use_the_width_the_host_writes():
    assert HostCall.make("fd_tell", 1, MEM - 4).tags == {"out_oob"}  # a u64
    assert HostCall.make("fd_tell", 1, MEM - 8).tags == {"out_valid"}
    assert HostCall.make("fd_fdstat_get", 1, MEM - 16).tags == {"out_oob"}  # a 24-byte fdstat
    assert HostCall.make("proxy_get_log_level", MEM - 4).tags == {"out_valid"}  # a u32
    assert HostCall.make("proxy_get_metric", 4, MEM - 4).tags == {"out_oob"}
    assert HostCall.make("proxy_get_header_map_value", 8, 0, 0, 16, 20).tags == {"bad_enum", "in_valid", "out_valid"}
    assert HostCall.make("proxy_get_header_map_value", 7, 0, 0, 16, 20).tags == {"in_valid", "out_valid"}
    assert "bad_enum" not in HostCall.make("proxy_send_local_response", 200, 0, 0, 0, 0, 0, 0, 99).tags


def test_hostile_flags_a_status_the_table_does_not_list():
    calls = [HostCall.make("proxy_set_tick_period_milliseconds", 10), HostCall.make("proxy_done"), HostCall.make("fd_read", 0, 0, 0, 16)]
    plan = GuestPlan("root", "bump", calls)
    result = PlanResult(plan, statuses=[int(Status.NotFound), int(Status.NotFound), 8])
    _check_statuses(plan, result)
    assert len(result.problems) == 2
    assert "proxy_set_tick_period_milliseconds" in result.problems[0] and "NotFound" in result.problems[0]
    assert "fd_read" in result.problems[1] and "wasi:BADF" in result.problems[1] and "wasi:NOSYS" in result.problems[1]
    fine = PlanResult(plan, statuses=[0, int(Status.NotFound), 52])
    _check_statuses(plan, fine)
    assert fine.problems == []
