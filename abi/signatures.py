"""The proxy-wasm contract as data: every host function and callback with its wasm signature.

Each fact about an import is written exactly once, on the function's own line in the tables below
(abi-spec.md §1.2, §2, §6.1), and everything else (the per-version import and export tables, the
trace decoder, the hostile-guest fuzzer, fault injection, the phase allow-lists and their messages)
is derived from them.

Table syntax, one entry per line::

    name  param[:role] ... -> result  [!status,...]  [@phase,...]  [versions]

* Parameters are ``i32`` scalars unless a role says otherwise: ``:i64``, an enum of
  :mod:`abi.enums` the host checks (``:MapType``), an input range (``:in``, ``:in.pairs``,
  ``:in.path``, followed by its size), an out-pointer and the bytes written through it (``:out4``,
  ``:out8``), a copy-out ``ptr**`` (``:copyout``, followed by its ``size*``; the host allocates in
  the guest), WASI iovecs, buffers and arrays (``:iov``, ``:buf``, ``:mem``). See :mod:`abi.roles`.
* The result is ``i32`` (a status: ``proxy_status_t`` for ``env``, an errno for WASI), ``i32:bool``,
  ``i64`` or ``none``.
* ``!NotFound,BadArgument`` lists the error statuses the function answers on its own (from the
  spec and the emulator's glue). ``Ok`` and, for a function that takes a guest address,
  ``InvalidMemoryAccess`` (WASI: ``FAULT``) are implied. Fault injection draws from this list.
* ``@start,alloc`` names the phases where cpp-host allows the import: ``start`` is the wasm
  start function (``_initialize``/``_start``/``main``), ``alloc`` a call of the guest allocator
  (abi-spec.md §2.1). Every import is allowed in every other phase.
* Versions default to every ABI version; ``[0.1.0]`` means 0.1.0 only, ``[0.2.0+]`` 0.2.0 and later.

For example::

    proxy_log               level:LogLevel msg_ptr:in msg_size -> i32 !BadArgument @start,alloc
    proxy_get_metric        metric_id ret_value:out8 -> i32 !BadArgument,NotFound
    proxy_get_header_map_value  map_type:MapType key_ptr:in key_size ret_ptr:copyout ret_size -> i32 !BadArgument,NotFound
"""

from __future__ import annotations

from enum import IntEnum
from functools import cache

from .enums import Status, WasiErrno
from .records import record
from .roles import COPY_OUT, ENUM, Param, parse_params

__all__ = [
    "ABI_VERSIONS",
    "ALLOCATOR_IMPORTS",
    "CALLBACKS",
    "ENV_MODULE",
    "HOST_FUNCTIONS",
    "INTEGRATION_EXPORTS",
    "PHASES",
    "START_IMPORTS",
    "Signature",
    "WASI_FUNCTIONS",
    "WASI_MODULES",
    "allowed_imports_text",
    "callbacks_for",
    "fault_statuses",
    "host_functions_for",
    "import_table",
]

ABI_VERSIONS: tuple[str, ...] = ("0.1.0", "0.2.0", "0.2.1")
ENV_MODULE = "env"
WASI_MODULES: tuple[str, ...] = ("wasi_snapshot_preview1", "wasi_unstable")
PHASES: tuple[str, ...] = ("start", "alloc")
"""The restricted phases of cpp-host: the wasm start function and calls of the guest allocator."""


@record(frozen=True)
class Signature:
    """One wasm function signature of the ABI, with what each parameter is for (see the module docstring)."""

    name: str
    param_names: tuple[str, ...]
    params: tuple[str, ...]
    results: tuple[str, ...]
    versions: frozenset[str]
    parameters: tuple[Param, ...] = ()
    """Each parameter with its role (:class:`abi.roles.Param`)."""
    statuses: tuple[IntEnum, ...] = ()
    """The error statuses the function answers on its own (``!...`` in the table)."""
    phases: frozenset[str] = frozenset()
    """The restricted phases where cpp-host allows the call (``@...`` in the table)."""
    status_type: type[IntEnum] | None = None
    """What the ``i32`` result is: :class:`Status` (``env``), :class:`WasiErrno` (WASI), or ``None``
    (callbacks, and results that are not a status, such as ``pthread_equal``'s)."""

    @property
    def wasm_type(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(params, results)`` as wasm value type names."""
        return self.params, self.results

    @property
    def allocates(self) -> bool:
        """Whether the call may call the guest allocator (it returns data through a ``ptr**``)."""
        return any(p.role == COPY_OUT for p in self.parameters)

    @property
    def touches_memory(self) -> bool:
        """Whether a parameter is a guest address (so a bad one gives InvalidMemoryAccess / FAULT)."""
        return any(p.is_pointer for p in self.parameters)

    @property
    def copy_outs(self) -> tuple[tuple[int, int], ...]:
        """``(ptr** index, size* index)`` of each copy-out pair."""
        return tuple((i, p.pair) for i, p in enumerate(self.parameters) if p.role == COPY_OUT and p.pair is not None)

    @property
    def enums(self) -> dict[str, type[IntEnum]]:
        """The enum parameters the host checks, by name."""
        return {p.name: p.enum for p in self.parameters if p.role == ENUM and p.enum is not None}

    @property
    def answers(self) -> frozenset[int]:
        """Every value the call can return: success, :attr:`statuses`, and the bad-pointer status
        when it takes a guest address (``{0, 1}`` for a boolean result, empty without a result)."""
        if not self.results:
            return frozenset()
        if self.status_type is None:
            return frozenset({0, 1})
        fault = Status.InvalidMemoryAccess if self.status_type is Status else WasiErrno.FAULT
        return frozenset({0, *map(int, self.statuses), *([int(fault)] if self.touches_memory else [])})

    def describe(self) -> str:
        """A one-line human form, e.g. ``proxy_log(level: i32, ...) -> i32``."""
        args = ", ".join(f"{n}: {t}" for n, t in zip(self.param_names, self.params, strict=True))
        res = self.results[0] if self.results else "()"
        return f"{self.name}({args}) -> {res}"


def _parse(table: str, status_type: type[IntEnum] | None = None) -> dict[str, Signature]:
    out: dict[str, Signature] = {}
    for raw in table.strip().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        versions = frozenset(ABI_VERSIONS)
        if line.endswith("]"):
            line, tag = line[:-1].rsplit("[", 1)
            versions = _versions(tag.strip())
        head, tail = line.split("->")
        name, *tokens = head.split()
        parameters = parse_params(name, tokens)
        result, *marks = tail.split()
        kind = status_type
        if result == "i32:bool":
            result, kind = "i32", None
        if result not in ("i32", "i64", "none"):
            raise ValueError(f"{name}: unknown result {result!r}")
        statuses: tuple[IntEnum, ...] = ()
        phases: frozenset[str] = frozenset()
        for mark in marks:
            if mark.startswith("!") and status_type is not None and not statuses:
                statuses = tuple(_status(name, status_type, s) for s in mark[1:].split(","))
            elif mark.startswith("@") and not phases:
                phases = frozenset(mark[1:].split(","))
                if not phases <= set(PHASES):
                    raise ValueError(f"{name}: unknown phase in {mark!r} (known: {', '.join(PHASES)})")
            else:
                raise ValueError(f"{name}: cannot read {mark!r} after the result")
        if name in out:
            raise ValueError(f"duplicate signature {name}")
        results = () if result == "none" else (result,)
        out[name] = Signature(
            name,
            tuple(p.name for p in parameters),
            tuple(p.type for p in parameters),
            results,
            versions,
            parameters,
            statuses,
            phases,
            kind if results else None,
        )
    return out


def _status(function: str, status_type: type[IntEnum], name: str) -> IntEnum:
    try:
        return status_type[name]
    except KeyError:
        raise ValueError(f"{function}: unknown {status_type.__name__} {name!r}") from None


def _versions(tag: str) -> frozenset[str]:
    if tag.endswith("+"):
        first = ABI_VERSIONS.index(tag[:-1])
        return frozenset(ABI_VERSIONS[first:])
    return frozenset(v.strip() for v in tag.split(","))


# abi-spec.md §1.2 (host functions imported from module "env"); statuses from §1.3-§1.14, §8 and
# emulator/hostcalls; phases from §2.1.
HOST_FUNCTIONS: dict[str, Signature] = _parse(
    """
proxy_log                           level:LogLevel msg_ptr:in msg_size -> i32 !BadArgument @start,alloc
proxy_get_log_level                 ret_level:out4 -> i32                                                                    [0.2.1]
proxy_get_current_time_nanoseconds  ret_time:out8 -> i32
proxy_set_tick_period_milliseconds  period_ms -> i32
proxy_get_configuration             ret_ptr:copyout ret_size -> i32                                                          [0.1.0]
proxy_get_status                    ret_code:out4 ret_msg_ptr:copyout ret_msg_size -> i32
proxy_get_property                  path_ptr:in.path path_size ret_ptr:copyout ret_size -> i32 !NotFound,SerializationFailure,InternalFailure
proxy_set_property                  path_ptr:in.path path_size value_ptr:in value_size -> i32 !NotFound,BadArgument
proxy_get_buffer_bytes              buffer_type:BufferType start max_size ret_ptr:copyout ret_size -> i32 !BadArgument,NotFound
proxy_get_buffer_status             buffer_type:BufferType ret_size:out4 ret_flags:out4 -> i32 !BadArgument,NotFound
proxy_set_buffer_bytes              buffer_type:BufferType start size data_ptr:in data_size -> i32 !BadArgument,NotFound
proxy_get_header_map_pairs          map_type:MapType ret_ptr:copyout.pairs ret_size -> i32 !BadArgument
proxy_set_header_map_pairs          map_type:MapType pairs_ptr:in.pairs pairs_size -> i32 !BadArgument
proxy_get_header_map_value          map_type:MapType key_ptr:in key_size ret_ptr:copyout ret_size -> i32 !BadArgument,NotFound
proxy_add_header_map_value          map_type:MapType key_ptr:in key_size value_ptr:in value_size -> i32 !BadArgument
proxy_replace_header_map_value      map_type:MapType key_ptr:in key_size value_ptr:in value_size -> i32 !BadArgument
proxy_remove_header_map_value       map_type:MapType key_ptr:in key_size -> i32 !BadArgument
proxy_get_header_map_size           map_type:MapType ret_size:out4 -> i32 !BadArgument
proxy_send_local_response           status_code details_ptr:in details_size body_ptr:in body_size headers_ptr:in.pairs headers_size grpc_status -> i32
proxy_continue_request              -> i32                                                                                   [0.1.0]
proxy_continue_response             -> i32                                                                                   [0.1.0]
proxy_clear_route_cache             -> i32                                                                                   [0.1.0]
proxy_continue_stream               stream_type:StreamType -> i32 !BadArgument,Unimplemented                                 [0.2.0+]
proxy_close_stream                  stream_type:StreamType -> i32 !BadArgument                                               [0.2.0+]
proxy_http_call                     upstream_ptr:in upstream_size headers_ptr:in.pairs headers_size body_ptr:in body_size trailers_ptr:in.pairs trailers_size timeout_ms ret_token:out4 -> i32 !BadArgument,InternalFailure
proxy_grpc_call                     upstream_ptr:in upstream_size service_ptr:in service_size method_ptr:in method_size initial_md_ptr:in.pairs initial_md_size msg_ptr:in msg_size timeout_ms ret_token:out4 -> i32 !ParseFailure,BadArgument,InternalFailure
proxy_grpc_stream                   upstream_ptr:in upstream_size service_ptr:in service_size method_ptr:in method_size initial_md_ptr:in.pairs initial_md_size ret_token:out4 -> i32 !ParseFailure,BadArgument,InternalFailure
proxy_grpc_send                     token msg_ptr:in msg_size end_stream -> i32 !BadArgument,NotFound
proxy_grpc_cancel                   token -> i32 !NotFound,BadArgument
proxy_grpc_close                    token -> i32 !NotFound,BadArgument
proxy_get_shared_data               key_ptr:in key_size ret_ptr:copyout ret_size ret_cas:out4 -> i32 !NotFound
proxy_set_shared_data               key_ptr:in key_size value_ptr:in value_size cas -> i32 !CasMismatch
proxy_register_shared_queue         name_ptr:in name_size ret_token:out4 -> i32
proxy_resolve_shared_queue          vm_id_ptr:in vm_id_size name_ptr:in name_size ret_token:out4 -> i32 !NotFound
proxy_enqueue_shared_queue          token data_ptr:in data_size -> i32 !NotFound
proxy_dequeue_shared_queue          token ret_ptr:copyout ret_size -> i32 !NotFound,Empty
proxy_define_metric                 metric_type:MetricType name_ptr:in name_size ret_id:out4 -> i32 !BadArgument
proxy_increment_metric              metric_id offset:i64 -> i32 !BadArgument,NotFound
proxy_record_metric                 metric_id value:i64 -> i32 !NotFound
proxy_get_metric                    metric_id ret_value:out8 -> i32 !BadArgument,NotFound
proxy_set_effective_context         context_id -> i32 !BadArgument
proxy_done                          -> i32 !NotFound
proxy_call_foreign_function         name_ptr:in name_size args_ptr:in args_size ret_ptr:copyout ret_size -> i32 !NotFound,BadArgument,SerializationFailure,InternalFailure
emscripten_notify_memory_growth     memory_index -> none @start
pthread_equal                       a b -> i32:bool
envoy_resolve_dns                   addr_ptr:in addr_size ret_token:out4 -> i32
""",
    Status,
)

# abi-spec.md §6.1 (registered under both WASI module names, same for every ABI version); errnos
# from §6.1 and emulator/wasi.py; phases from §2.1.
WASI_FUNCTIONS: dict[str, Signature] = _parse(
    """
fd_write                 fd iovs:iov iovs_len ret_nwritten:out4 -> i32 !BADF @start,alloc
fd_read                  fd iovs:iov iovs_len ret_nread:out4 -> i32 !NOSYS
fd_seek                  fd offset:i64 whence ret_newoffset:out8 -> i32
fd_close                 fd -> i32
fd_fdstat_get            fd ret_stat:out24 -> i32 !BADF @start
fd_fdstat_set_flags      fd flags -> i32 !NOSYS @start
fd_prestat_get           fd ret_prestat:out8 -> i32 !BADF @start
fd_prestat_dir_name      fd path:buf path_len -> i32 !NOSYS @start
path_open                fd dirflags path:in path_len oflags rights_base:i64 rights_inheriting:i64 fdflags ret_fd:out4 -> i32 !NOENT
environ_sizes_get        ret_count:out4 ret_buf_size:out4 -> i32 @start
environ_get              environ_ptrs:mem environ_buf:mem -> i32 @start
args_sizes_get           ret_argc:out4 ret_buf_size:out4 -> i32 @start
args_get                 argv:mem argv_buf:mem -> i32 @start
clock_time_get           clock_id precision:i64 ret_time:out8 -> i32 !NOTSUP @start,alloc
clock_res_get            clock_id ret_res:out8 -> i32 !NOTSUP @start
random_get               buf:buf buf_len -> i32 !INVAL @start
sched_yield              -> i32
poll_oneoff              subs:mem events:mem nsubs ret_nevents:out4 -> i32 @start,alloc
proc_exit                code -> none
fd_advise                fd offset:i64 length:i64 advice -> i32 @start
fd_allocate              fd offset:i64 length:i64 -> i32 !BADF @start
fd_datasync              fd -> i32 !BADF @start
fd_sync                  fd -> i32 !BADF @start
fd_fdstat_set_rights     fd rights_base:i64 rights_inheriting:i64 -> i32 !BADF @start
fd_filestat_get          fd ret_stat:out64 -> i32 !BADF @start
fd_filestat_set_size     fd size:i64 -> i32 !BADF @start
fd_filestat_set_times    fd atim:i64 mtim:i64 fst_flags -> i32 !BADF @start
fd_pread                 fd iovs:iov iovs_len offset:i64 ret_nread:out4 -> i32 !NOSYS @start
fd_pwrite                fd iovs:iov iovs_len offset:i64 ret_nwritten:out4 -> i32 !BADF @start
fd_readdir               fd buf:buf buf_len cookie:i64 ret_bufused:out4 -> i32 !NOTDIR @start
fd_renumber              fd to -> i32 !BADF,NOTSUP @start
fd_tell                  fd ret_offset:out8 -> i32 !BADF @start
path_create_directory    fd path:in path_len -> i32 !NOTSUP @start
path_remove_directory    fd path:in path_len -> i32 !NOTSUP @start
path_unlink_file         fd path:in path_len -> i32 !NOTSUP @start
path_filestat_get        fd flags path:in path_len ret_stat:out64 -> i32 !NOTSUP @start
path_filestat_set_times  fd flags path:in path_len atim:i64 mtim:i64 fst_flags -> i32 !NOTSUP @start
path_link                old_fd old_flags old_path:in old_path_len new_fd new_path:in new_path_len -> i32 !NOTSUP @start
path_readlink            fd path:in path_len buf:buf buf_len ret_bufused:out4 -> i32 !NOTSUP @start
path_rename              fd old_path:in old_path_len new_fd new_path:in new_path_len -> i32 !NOTSUP @start
path_symlink             old_path:in old_path_len fd new_path:in new_path_len -> i32 !NOTSUP @start
sock_accept              fd flags ret_fd:out4 -> i32 !NOTSUP @start
sock_recv                fd ri_data:iov ri_data_len ri_flags ret_datalen:out4 ret_flags:out2 -> i32 !NOTSUP @start
sock_send                fd si_data:iov si_data_len si_flags ret_datalen:out4 -> i32 !NOTSUP @start
sock_shutdown            fd how -> i32 !NOTSUP @start
""",
    WasiErrno,
)

# abi-spec.md §2.2 (callbacks exported by the guest). Headers callbacks change arity in 0.2.0;
# the 0.1.0 shape is listed separately under the same export name, see ``callbacks_for``.
CALLBACKS: dict[str, Signature] = _parse(
    """
proxy_on_context_create                  context_id parent_context_id -> none
proxy_on_vm_start                        root_context_id vm_configuration_size -> i32
proxy_validate_configuration             root_context_id plugin_configuration_size -> i32
proxy_on_configure                       root_context_id plugin_configuration_size -> i32
proxy_on_tick                            root_context_id -> none
proxy_on_queue_ready                     root_context_id queue_token -> none
proxy_on_foreign_function                context_id function_id arguments_size -> none   [0.2.0+]
proxy_on_new_connection                  context_id -> i32
proxy_on_downstream_data                 context_id data_size end_of_stream -> i32
proxy_on_upstream_data                   context_id data_size end_of_stream -> i32
proxy_on_downstream_connection_close     context_id peer_type -> none
proxy_on_upstream_connection_close       context_id peer_type -> none
proxy_on_request_headers                 context_id num_headers end_of_stream -> i32     [0.2.0+]
proxy_on_request_body                    context_id body_size end_of_stream -> i32
proxy_on_request_trailers                context_id num_trailers -> i32
proxy_on_request_metadata                context_id num_elements -> i32
proxy_on_response_headers                context_id num_headers end_of_stream -> i32     [0.2.0+]
proxy_on_response_body                   context_id body_size end_of_stream -> i32
proxy_on_response_trailers               context_id num_trailers -> i32
proxy_on_response_metadata               context_id num_elements -> i32
proxy_on_http_call_response              root_context_id token num_headers body_size num_trailers -> none
proxy_on_grpc_receive_initial_metadata   root_context_id token num_elements -> none
proxy_on_grpc_receive                    root_context_id token message_size -> none
proxy_on_grpc_receive_trailing_metadata  root_context_id token num_elements -> none
proxy_on_grpc_close                      root_context_id token status_code -> none
proxy_on_done                            context_id -> i32
proxy_on_log                             context_id -> none
proxy_on_delete                          context_id -> none
envoy_on_resolve_dns                     root_context_id token data_size -> none
envoy_on_stats_update                    root_context_id data_size -> none
"""
)

# The 0.1.0 shapes of the two headers callbacks (abi-spec.md §2.2).
CALLBACKS_0_1_0: dict[str, Signature] = _parse(
    """
proxy_on_request_headers                 context_id num_headers -> i32     [0.1.0]
proxy_on_response_headers                context_id num_headers -> i32     [0.1.0]
"""
)

# abi-spec.md §2.1 (integration exports).
INTEGRATION_EXPORTS: dict[str, Signature] = _parse(
    """
proxy_abi_version_0_1_0    -> none
proxy_abi_version_0_2_0    -> none
proxy_abi_version_0_2_1    -> none
_initialize                -> none
_start                     -> none
main                       argc argv -> i32
__main_void                -> i32
malloc                     size -> i32
proxy_on_memory_allocate   size -> i32
"""
)


@cache
def host_functions_for(version: str) -> dict[str, Signature]:
    """The ``env`` host functions cpp-host registers for one ABI version (abi-spec.md §1.1)."""
    _check_version(version)
    return {n: s for n, s in HOST_FUNCTIONS.items() if version in s.versions}


@cache
def callbacks_for(version: str) -> dict[str, Signature]:
    """The callbacks a module of one ABI version may export, with their expected signatures."""
    _check_version(version)
    table = {n: s for n, s in CALLBACKS.items() if version in s.versions}
    if version == "0.1.0":
        table.update(CALLBACKS_0_1_0)
    return table


@cache
def import_table(version: str | None = None) -> dict[tuple[str, str], Signature]:
    """Every import the host links, keyed by ``(module, name)``.

    With ``version=None`` the table is the union over all versions, which is what the emulator
    links by default (cpp-host links only the version's own set, see ``host_functions_for``).
    """
    env = HOST_FUNCTIONS if version is None else host_functions_for(version)
    table: dict[tuple[str, str], Signature] = {(ENV_MODULE, n): s for n, s in env.items()}
    for module in WASI_MODULES:
        table.update({(module, n): s for n, s in WASI_FUNCTIONS.items()})
    return table


def _check_version(version: str) -> None:
    if version not in ABI_VERSIONS:
        raise ValueError(f"unknown proxy-wasm ABI version {version!r}; known: {ABI_VERSIONS}")


def _allowed_in(phase: str) -> frozenset[str]:
    return frozenset(n for table in (HOST_FUNCTIONS, WASI_FUNCTIONS) for n, s in table.items() if phase in s.phases)


START_IMPORTS: frozenset[str] = _allowed_in("start")
"""Imports cpp-host allows during ``_initialize``/``_start``/``main`` (abi-spec.md §2.1), by name
(the WASI ones under both module names)."""
ALLOCATOR_IMPORTS: frozenset[str] = _allowed_in("alloc")
"""Imports cpp-host allows while the guest allocator runs (abi-spec.md §2.1)."""


@cache
def allowed_imports_text(allowed: frozenset[str]) -> str:
    """The imports of a phase allow-list in words, for RestrictedHostCall messages.

    ``allowed_imports_text(ALLOCATOR_IMPORTS)`` is ``"proxy_log, fd_write, clock_time_get and
    poll_oneoff"``; an allow-list with most of WASI says "WASI calls other than ..." instead.
    """
    parts = [n for n in HOST_FUNCTIONS if n in allowed]
    wasi_in = [n for n in WASI_FUNCTIONS if n in allowed]
    wasi_out = [n for n in WASI_FUNCTIONS if n not in allowed]
    if not wasi_out:
        parts.append("every WASI call")
    elif len(wasi_in) > len(wasi_out):
        parts.append(f"WASI calls other than {_and(wasi_out)}")
    else:
        parts += wasi_in
    return _and(parts) if parts else "no import"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def fault_statuses(version: str | None = None) -> dict[str, tuple[IntEnum, ...]]:
    """The error statuses each ``env`` host function answers on its own, for fault injection.

    Functions that only ever answer ``Ok`` (or InvalidMemoryAccess for a bad pointer) are left out.
    ``version`` limits the table to the functions of one ABI version.
    """
    table = HOST_FUNCTIONS if version is None else host_functions_for(version)
    return {n: s.statuses for n, s in table.items() if s.statuses}
