"""The per-import facts of the ABI table (roles, out widths, copy-outs, statuses, phases) against
abi-spec.md, written out here by hand: none of the expected values comes from ``abi``."""

from __future__ import annotations

import dataclasses

import pytest

from abi import (
    ALLOCATOR_IMPORTS,
    HOST_FUNCTIONS,
    START_IMPORTS,
    WASI_FUNCTIONS,
    BufferType,
    LogLevel,
    MapType,
    MetricType,
    Signature,
    Status,
    StreamType,
    WasiErrno,
    allowed_imports_text,
    fault_statuses,
)
from abi.signatures import _parse

# abi-spec.md §2.1: what cpp-host's startVm allows during _initialize/_start/main
SPEC_START = {
    "proxy_log", "emscripten_notify_memory_growth",
    "fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get", "clock_time_get", "clock_res_get",
    "random_get", "poll_oneoff", "fd_fdstat_get", "fd_fdstat_set_flags",
    "fd_advise", "fd_allocate", "fd_datasync", "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size",
    "fd_filestat_set_times", "fd_pread", "fd_prestat_dir_name", "fd_prestat_get", "fd_pwrite", "fd_readdir", "fd_renumber",
    "fd_sync", "fd_tell",
    "path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link", "path_readlink",
    "path_remove_directory", "path_rename", "path_symlink", "path_unlink_file",
    "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
}  # fmt: skip
SPEC_ALLOCATOR = {"proxy_log", "fd_write", "clock_time_get", "poll_oneoff"}

# abi-spec.md §1.2, "Out-params written": the ptr** functions
SPEC_COPY_OUT = {
    "proxy_get_configuration", "proxy_get_status", "proxy_get_property", "proxy_get_buffer_bytes", "proxy_get_header_map_pairs",
    "proxy_get_header_map_value", "proxy_get_shared_data", "proxy_dequeue_shared_queue", "proxy_call_foreign_function",
}  # fmt: skip

# abi-spec.md §1.2 (u64 out-params) and §6.1 (u64 and struct out-params of WASI)
SPEC_WIDE_OUT = {
    ("proxy_get_current_time_nanoseconds", "ret_time"): 8,
    ("proxy_get_metric", "ret_value"): 8,
    ("fd_seek", "ret_newoffset"): 8,
    ("fd_tell", "ret_offset"): 8,
    ("clock_time_get", "ret_time"): 8,
    ("clock_res_get", "ret_res"): 8,
    ("fd_fdstat_get", "ret_stat"): 24,
    ("fd_prestat_get", "ret_prestat"): 8,
    ("fd_filestat_get", "ret_stat"): 64,
    ("path_filestat_get", "ret_stat"): 64,
    ("sock_recv", "ret_flags"): 2,
}

# abi-spec.md §1.5, §1.6, §1.7, §1.12 and §1.3: the enums cpp-host checks (BadArgument past the end)
SPEC_ENUMS = {
    ("proxy_log", "level"): LogLevel,
    ("proxy_get_buffer_bytes", "buffer_type"): BufferType,
    ("proxy_get_buffer_status", "buffer_type"): BufferType,
    ("proxy_set_buffer_bytes", "buffer_type"): BufferType,
    ("proxy_continue_stream", "stream_type"): StreamType,
    ("proxy_close_stream", "stream_type"): StreamType,
    ("proxy_define_metric", "metric_type"): MetricType,
    **{
        (f"proxy_{op}_header_map_{what}", "map_type"): MapType
        for op, what in [("get", "pairs"), ("set", "pairs"), ("get", "value"), ("add", "value"), ("replace", "value"), ("remove", "value"), ("get", "size")]
    },
}

# abi-spec.md §4.2 / §4.3: inputs with a wire format
SPEC_FORMATS = {
    ("proxy_set_header_map_pairs", "pairs_ptr"): "pairs",
    ("proxy_get_header_map_pairs", "ret_ptr"): "pairs",  # what comes back is decoded in the trace too
    ("proxy_send_local_response", "headers_ptr"): "pairs",
    ("proxy_http_call", "headers_ptr"): "pairs",
    ("proxy_http_call", "trailers_ptr"): "pairs",
    ("proxy_grpc_call", "initial_md_ptr"): "pairs",
    ("proxy_grpc_stream", "initial_md_ptr"): "pairs",
    ("proxy_get_property", "path_ptr"): "path",
    ("proxy_set_property", "path_ptr"): "path",
}

ALL = {**HOST_FUNCTIONS, **WASI_FUNCTIONS}


def test_phase_allow_lists_follow_cpp_host():
    assert len(SPEC_START) == 41
    assert START_IMPORTS == SPEC_START
    assert ALLOCATOR_IMPORTS == SPEC_ALLOCATOR
    assert "proxy_get_property" not in START_IMPORTS and "path_open" not in START_IMPORTS and "proc_exit" not in START_IMPORTS


def test_the_restricted_call_messages():
    assert allowed_imports_text(ALLOCATOR_IMPORTS) == "proxy_log, fd_write, clock_time_get and poll_oneoff"
    assert allowed_imports_text(START_IMPORTS) == (
        "proxy_log, emscripten_notify_memory_growth and WASI calls other than fd_read, fd_seek, fd_close, path_open, sched_yield and proc_exit"
    )
    assert allowed_imports_text(frozenset({"fd_write"})) == "fd_write"
    assert allowed_imports_text(frozenset()) == "no import"


def test_out_parameters_and_their_widths():
    outs = {(n, p.name): p.width for n, s in ALL.items() for p in s.parameters if p.role == "out"}
    for key, width in SPEC_WIDE_OUT.items():
        assert outs[key] == width, key
    others = {k: w for k, w in outs.items() if k not in SPEC_WIDE_OUT}
    assert set(others.values()) == {4}
    assert ("proxy_get_buffer_status", "ret_flags") in others and ("proxy_http_call", "ret_token") in others
    assert ("fd_write", "ret_nwritten") in others and ("poll_oneoff", "ret_nevents") in others
    # every env out-parameter is named ret_*, and no ret_* is anything but an output
    env_outputs = [(n, p.name) for n, s in HOST_FUNCTIONS.items() for p in s.parameters if p.is_output]
    env_rets = [(n, p.name) for n, s in HOST_FUNCTIONS.items() for p in s.parameters if p.name.startswith("ret")]
    assert env_outputs == env_rets


def test_copy_out_pairs_make_the_host_allocate():
    assert {n for n, s in HOST_FUNCTIONS.items() if s.allocates} == SPEC_COPY_OUT
    assert not any(s.allocates for s in WASI_FUNCTIONS.values())
    assert HOST_FUNCTIONS["proxy_get_status"].copy_outs == ((1, 2),)
    assert HOST_FUNCTIONS["proxy_get_shared_data"].copy_outs == ((2, 3),)
    roles = [p.role for p in HOST_FUNCTIONS["proxy_get_shared_data"].parameters]
    assert roles == ["in", "size", "copyout", "size_out", "out"]


def test_enum_parameters():
    enums = {(n, p.name): p.enum for n, s in ALL.items() for p in s.parameters if p.role == "enum"}
    assert enums == SPEC_ENUMS
    assert HOST_FUNCTIONS["proxy_get_header_map_value"].parameters[0].enum_max == 7
    assert HOST_FUNCTIONS["proxy_get_buffer_bytes"].parameters[0].enum_max == 8
    # grpc_status of a local reply is not checked: anything outside 0..16 just sends no grpc-status
    assert HOST_FUNCTIONS["proxy_send_local_response"].parameters[-1].role == "scalar"


def test_inputs_pair_a_pointer_with_its_size():
    formats = {(n, p.name): p.format for n, s in HOST_FUNCTIONS.items() for p in s.parameters if p.format}
    assert formats == SPEC_FORMATS
    http = HOST_FUNCTIONS["proxy_http_call"].parameters
    assert [p.role for p in http] == ["in", "size"] * 4 + ["scalar", "out"]
    assert [p.pair for p in http[:4]] == [1, 0, 3, 2]
    # WASI: iovecs with their count, a buffer the host fills, arrays sized by an earlier call
    assert [p.role for p in WASI_FUNCTIONS["fd_write"].parameters] == ["scalar", "iov", "count", "out"]
    assert [p.role for p in WASI_FUNCTIONS["random_get"].parameters] == ["buf", "size"]
    assert [p.role for p in WASI_FUNCTIONS["environ_get"].parameters] == ["mem", "mem"]
    assert [p.role for p in WASI_FUNCTIONS["path_open"].parameters][2:4] == ["in", "size"]


@pytest.mark.parametrize(
    ("name", "statuses"),
    [
        ("proxy_log", {Status.BadArgument}),
        ("proxy_get_property", {Status.NotFound, Status.SerializationFailure, Status.InternalFailure}),
        ("proxy_grpc_call", {Status.ParseFailure, Status.BadArgument, Status.InternalFailure}),
        ("proxy_dequeue_shared_queue", {Status.NotFound, Status.Empty}),
        ("proxy_set_shared_data", {Status.CasMismatch}),
        ("proxy_continue_stream", {Status.BadArgument, Status.Unimplemented}),
        ("proxy_set_tick_period_milliseconds", set()),
        ("proxy_register_shared_queue", set()),
        ("proxy_send_local_response", set()),
        ("fd_write", {WasiErrno.BADF}),
        ("random_get", {WasiErrno.INVAL}),
        ("fd_seek", set()),
    ],
)
def test_statuses_from_the_spec(name, statuses):
    assert set(ALL[name].statuses) == statuses


def test_answers_add_success_and_the_bad_pointer_status():
    ima, fault = int(Status.InvalidMemoryAccess), int(WasiErrno.FAULT)
    assert HOST_FUNCTIONS["proxy_get_metric"].answers == {0, int(Status.BadArgument), int(Status.NotFound), ima}
    assert HOST_FUNCTIONS["proxy_set_tick_period_milliseconds"].answers == {0}
    assert HOST_FUNCTIONS["proxy_done"].answers == {0, int(Status.NotFound)}
    assert HOST_FUNCTIONS["pthread_equal"].answers == {0, 1}
    assert HOST_FUNCTIONS["emscripten_notify_memory_growth"].answers == set()
    assert WASI_FUNCTIONS["fd_read"].answers == {0, int(WasiErrno.NOSYS), fault}
    assert WASI_FUNCTIONS["sched_yield"].answers == {0}
    assert WASI_FUNCTIONS["proc_exit"].answers == set()


def test_fault_statuses_for_injection():
    faults = fault_statuses()
    assert faults["proxy_get_shared_data"] == (Status.NotFound,)
    assert "proxy_set_tick_period_milliseconds" not in faults  # always Ok
    assert "fd_write" not in faults  # only env calls are injected
    assert "proxy_continue_stream" in faults and "proxy_continue_stream" not in fault_statuses("0.1.0")


def test_positional_signatures_still_work():
    sig = Signature("f", ("a",), ("i32",), ("i32",), frozenset({"0.2.1"}))
    assert sig.parameters == () and sig.statuses == () and not sig.allocates and sig.describe() == "f(a: i32) -> i32"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("f  a:inout -> i32", "unknown parameter role"),
        ("f  a:Nope -> i32", "unknown parameter role"),
        ("f  a:in -> i32", "followed by its plain partner"),
        ("f  a:in b:out4 -> i32", "followed by its plain partner"),
        ("f  a:in.xml a_size -> i32", "unknown format"),
        ("f  a:copyout.xml a_size -> i32", "unknown format"),
        ("f  a:out4.pairs -> i32", "unknown parameter role"),
        ("f  a:out0 -> i32", "writes no bytes"),
        ("f  -> i32 !Broken", "unknown Status"),
        ("f  -> i32 @main", "unknown phase"),
        ("f  -> i32 stray", "cannot read"),
        ("f  -> i32 !NotFound !Empty", "cannot read"),
        ("f  -> f32", "unknown result"),
    ],
)
def test_the_parser_refuses_what_it_cannot_read(line, message):
    with pytest.raises(ValueError, match=message):
        _parse(line, Status)


def test_the_parser_reads_a_whole_line():
    sig = _parse("f  level:LogLevel data_ptr:in.pairs data_size ret:out8 -> i32 !NotFound,Empty @start,alloc [0.2.0+]", Status)["f"]
    assert sig.param_names == ("level", "data_ptr", "data_size", "ret")
    assert [(p.role, p.enum, p.width, p.format, p.pair) for p in sig.parameters] == [
        ("enum", LogLevel, None, None, None),
        ("in", None, None, "pairs", 2),
        ("size", None, None, None, 1),
        ("out", None, 8, None, None),
    ]
    assert sig.statuses == (Status.NotFound, Status.Empty)
    assert sig.phases == {"start", "alloc"} and sig.versions == {"0.2.0", "0.2.1"}
    assert dataclasses.replace(sig, parameters=()).touches_memory is False and sig.touches_memory
