"""WASI as cpp-host provides it (abi-spec.md §6.1): captured output, one virtual clock, seeded randomness."""

from __future__ import annotations

import struct

import pytest

from abi import LogLevel, WasiErrno
from emulator import DEFAULT_EPOCH_NS, CallbackError, Host, ProcExit
from tests.conftest import wat_module

IOV = 1000


def vm_for(engine, **kw):
    host = Host(engine=engine, seed=kw.pop("seed", 0))
    vm = host.create_vm(wat_module("wasi_calls"), **kw)
    return host, vm


def write_iovs(vm, *chunks):
    pos = 2000
    for i, chunk in enumerate(chunks):
        vm.memory.write(pos, chunk)
        vm.memory.write(IOV + 8 * i, struct.pack("<II", pos, len(chunk)))
        pos += len(chunk)
    return len(chunks)


def test_fd_write_stdout_and_stderr_become_log_lines(proxy_wasm_engine):
    host, vm = vm_for(proxy_wasm_engine)
    n = write_iovs(vm, b"hello ", b"world\n")
    assert vm.call("t_fd_write", 1, IOV, n, 900) == 0
    assert vm.memory.u32(900) == 12
    n = write_iovs(vm, b"oops\n\n")
    assert vm.call("t_fd_write_unstable", 2, IOV, n, 900) == 0
    assert [(r.level, r.message, r.source) for r in host.logs] == [(LogLevel.INFO, "hello world", "stdout"), (LogLevel.ERROR, "oops\n", "stderr")]


def test_fd_write_edge_cases(proxy_wasm_engine):
    host, vm = vm_for(proxy_wasm_engine)
    assert vm.call("t_fd_write", 1, IOV, 0, 900) == 0
    assert host.logs == []
    assert vm.call("t_fd_write", 5, IOV, 0, 900) == WasiErrno.BADF
    vm.memory.write(IOV, struct.pack("<II", 10**9, 4))
    assert vm.call("t_fd_write", 1, IOV, 1, 900) == WasiErrno.FAULT


def test_clocks_read_the_virtual_clock(proxy_wasm_engine):
    host, vm = vm_for(proxy_wasm_engine)
    assert vm.call("t_clock", 0, 900) == 0
    assert vm.memory.u64(900) == DEFAULT_EPOCH_NS
    assert vm.call("t_clock", 1, 908) == 0
    mono = vm.memory.u64(908)
    assert mono > 0
    host.advance(1500)
    vm.call("t_clock", 0, 900)
    vm.call("t_clock", 1, 908)
    assert vm.memory.u64(900) == DEFAULT_EPOCH_NS + 1_500_000_000
    assert vm.memory.u64(908) == mono + 1_500_000_000
    assert vm.call("t_clock", 2, 900) == WasiErrno.NOTSUP


def test_random_is_seeded_and_capped(proxy_wasm_engine):
    def draw(seed):
        _, vm = vm_for(proxy_wasm_engine, seed=seed)
        assert vm.call("t_random", 3000, 32) == 0
        return vm.memory.read(3000, 32)

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    _, vm = vm_for(proxy_wasm_engine)
    assert vm.call("t_random", 3000, 65537) == WasiErrno.INVAL


def test_environment_comes_from_the_vm_configuration(proxy_wasm_engine):
    _, vm = vm_for(proxy_wasm_engine, environment={"A": "1", "LONG_NAME": "value"})
    assert vm.call("t_env_sizes", 900, 904) == 0
    assert (vm.memory.u32(900), vm.memory.u32(904)) == (2, len("A=1\0LONG_NAME=value\0"))
    assert vm.call("t_env_get", 1000, 1100) == 0
    first, second = vm.memory.u32(1000), vm.memory.u32(1004)
    assert vm.memory.read(first, 4) == b"A=1\0"
    assert vm.memory.read(second, 16) == b"LONG_NAME=value\0"


def test_args_are_empty_and_poll_reports_no_events(proxy_wasm_engine):
    _, vm = vm_for(proxy_wasm_engine)
    vm.memory.write(900, b"\xff" * 8)
    assert vm.call("t_args_sizes", 900, 904) == 0
    assert vm.memory.read(900, 8) == b"\0" * 8
    assert vm.call("t_poll", 908) == 0 and vm.memory.u32(908) == 0
    assert vm.call("t_fd_read", 0, IOV, 0, 900) == WasiErrno.NOSYS


def test_proc_exit_raises(proxy_wasm_engine):
    _, vm = vm_for(proxy_wasm_engine)
    with pytest.raises(CallbackError) as info:
        vm.call("t_exit", 42)
    assert isinstance(info.value.cause, ProcExit) and info.value.cause.code == 42
