"""The proxy-wasm contract as data: every host function and callback with its wasm signature.

Each signature is written exactly once, in the tables below (abi-spec.md §1.2, §2, §6.1), and the
per-version import and export tables are generated from them.

Table syntax, one entry per line::

    name  param param:i64 ... -> result   [versions]

Parameters are ``i32`` unless suffixed ``:i64``. The result is ``i32``, ``i64`` or ``none``.
Versions default to every ABI version; ``[0.1.0]`` means 0.1.0 only, ``[0.2.0+]`` 0.2.0 and later.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

__all__ = [
    "ABI_VERSIONS",
    "CALLBACKS",
    "ENV_MODULE",
    "HOST_FUNCTIONS",
    "INTEGRATION_EXPORTS",
    "Signature",
    "WASI_FUNCTIONS",
    "WASI_MODULES",
    "callbacks_for",
    "host_functions_for",
    "import_table",
]

ABI_VERSIONS: tuple[str, ...] = ("0.1.0", "0.2.0", "0.2.1")
ENV_MODULE = "env"
WASI_MODULES: tuple[str, ...] = ("wasi_snapshot_preview1", "wasi_unstable")


@dataclass(frozen=True)
class Signature:
    """One wasm function signature of the ABI, with parameter names for traces and docs."""

    name: str
    param_names: tuple[str, ...]
    params: tuple[str, ...]
    results: tuple[str, ...]
    versions: frozenset[str]

    @property
    def wasm_type(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(params, results)`` as wasm value type names."""
        return self.params, self.results

    def describe(self) -> str:
        """A one-line human form, e.g. ``proxy_log(level: i32, ...) -> i32``."""
        args = ", ".join(f"{n}: {t}" for n, t in zip(self.param_names, self.params, strict=True))
        res = self.results[0] if self.results else "()"
        return f"{self.name}({args}) -> {res}"


def _parse(table: str) -> dict[str, Signature]:
    out: dict[str, Signature] = {}
    for raw in table.strip().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        versions = frozenset(ABI_VERSIONS)
        if line.endswith("]"):
            line, tag = line[:-1].rsplit("[", 1)
            versions = _versions(tag.strip())
        head, result = line.split("->")
        name, *params = head.split()
        names = tuple(p.split(":")[0] for p in params)
        types = tuple(p.split(":")[1] if ":" in p else "i32" for p in params)
        result = result.strip()
        results = () if result == "none" else (result,)
        if name in out:
            raise ValueError(f"duplicate signature {name}")
        out[name] = Signature(name, names, types, results, versions)
    return out


def _versions(tag: str) -> frozenset[str]:
    if tag.endswith("+"):
        first = ABI_VERSIONS.index(tag[:-1])
        return frozenset(ABI_VERSIONS[first:])
    return frozenset(v.strip() for v in tag.split(","))


# abi-spec.md §1.2 (host functions imported from module "env")
HOST_FUNCTIONS: dict[str, Signature] = _parse(
    """
proxy_log                           level msg_ptr msg_size -> i32
proxy_get_log_level                 ret_level -> i32                                   [0.2.1]
proxy_get_current_time_nanoseconds  ret_time -> i32
proxy_set_tick_period_milliseconds  period_ms -> i32
proxy_get_configuration             ret_ptr ret_size -> i32                            [0.1.0]
proxy_get_status                    ret_code ret_msg_ptr ret_msg_size -> i32
proxy_get_property                  path_ptr path_size ret_ptr ret_size -> i32
proxy_set_property                  path_ptr path_size value_ptr value_size -> i32
proxy_get_buffer_bytes              buffer_type start max_size ret_ptr ret_size -> i32
proxy_get_buffer_status             buffer_type ret_size ret_flags -> i32
proxy_set_buffer_bytes              buffer_type start size data_ptr data_size -> i32
proxy_get_header_map_pairs          map_type ret_ptr ret_size -> i32
proxy_set_header_map_pairs          map_type pairs_ptr pairs_size -> i32
proxy_get_header_map_value          map_type key_ptr key_size ret_ptr ret_size -> i32
proxy_add_header_map_value          map_type key_ptr key_size value_ptr value_size -> i32
proxy_replace_header_map_value      map_type key_ptr key_size value_ptr value_size -> i32
proxy_remove_header_map_value       map_type key_ptr key_size -> i32
proxy_get_header_map_size           map_type ret_size -> i32
proxy_send_local_response           status_code details_ptr details_size body_ptr body_size headers_ptr headers_size grpc_status -> i32
proxy_continue_request              -> i32                                             [0.1.0]
proxy_continue_response             -> i32                                             [0.1.0]
proxy_clear_route_cache             -> i32                                             [0.1.0]
proxy_continue_stream               stream_type -> i32                                 [0.2.0+]
proxy_close_stream                  stream_type -> i32                                 [0.2.0+]
proxy_http_call                     upstream_ptr upstream_size headers_ptr headers_size body_ptr body_size trailers_ptr trailers_size timeout_ms ret_token -> i32
proxy_grpc_call                     upstream_ptr upstream_size service_ptr service_size method_ptr method_size initial_md_ptr initial_md_size msg_ptr msg_size timeout_ms ret_token -> i32
proxy_grpc_stream                   upstream_ptr upstream_size service_ptr service_size method_ptr method_size initial_md_ptr initial_md_size ret_token -> i32
proxy_grpc_send                     token msg_ptr msg_size end_stream -> i32
proxy_grpc_cancel                   token -> i32
proxy_grpc_close                    token -> i32
proxy_get_shared_data               key_ptr key_size ret_ptr ret_size ret_cas -> i32
proxy_set_shared_data               key_ptr key_size value_ptr value_size cas -> i32
proxy_register_shared_queue         name_ptr name_size ret_token -> i32
proxy_resolve_shared_queue          vm_id_ptr vm_id_size name_ptr name_size ret_token -> i32
proxy_enqueue_shared_queue          token data_ptr data_size -> i32
proxy_dequeue_shared_queue          token ret_ptr ret_size -> i32
proxy_define_metric                 metric_type name_ptr name_size ret_id -> i32
proxy_increment_metric              metric_id offset:i64 -> i32
proxy_record_metric                 metric_id value:i64 -> i32
proxy_get_metric                    metric_id ret_value -> i32
proxy_set_effective_context         context_id -> i32
proxy_done                          -> i32
proxy_call_foreign_function         name_ptr name_size args_ptr args_size ret_ptr ret_size -> i32
emscripten_notify_memory_growth     memory_index -> none
pthread_equal                       a b -> i32
envoy_resolve_dns                   addr_ptr addr_size ret_token -> i32
"""
)

# abi-spec.md §6.1 (registered under both WASI module names, same for every ABI version)
WASI_FUNCTIONS: dict[str, Signature] = _parse(
    """
fd_write                 fd iovs iovs_len ret_nwritten -> i32
fd_read                  fd iovs iovs_len ret_nread -> i32
fd_seek                  fd offset:i64 whence ret_newoffset -> i32
fd_close                 fd -> i32
fd_fdstat_get            fd ret_stat -> i32
fd_fdstat_set_flags      fd flags -> i32
fd_prestat_get           fd ret_prestat -> i32
fd_prestat_dir_name      fd path path_len -> i32
path_open                fd dirflags path path_len oflags rights_base:i64 rights_inheriting:i64 fdflags ret_fd -> i32
environ_sizes_get        ret_count ret_buf_size -> i32
environ_get              environ_ptrs environ_buf -> i32
args_sizes_get           ret_argc ret_buf_size -> i32
args_get                 argv argv_buf -> i32
clock_time_get           clock_id precision:i64 ret_time -> i32
clock_res_get            clock_id ret_res -> i32
random_get               buf buf_len -> i32
sched_yield              -> i32
poll_oneoff              subs events nsubs ret_nevents -> i32
proc_exit                code -> none
fd_advise                fd offset:i64 len:i64 advice -> i32
fd_allocate              fd offset:i64 len:i64 -> i32
fd_datasync              fd -> i32
fd_sync                  fd -> i32
fd_fdstat_set_rights     fd rights_base:i64 rights_inheriting:i64 -> i32
fd_filestat_get          fd ret_stat -> i32
fd_filestat_set_size     fd size:i64 -> i32
fd_filestat_set_times    fd atim:i64 mtim:i64 fst_flags -> i32
fd_pread                 fd iovs iovs_len offset:i64 ret_nread -> i32
fd_pwrite                fd iovs iovs_len offset:i64 ret_nwritten -> i32
fd_readdir               fd buf buf_len cookie:i64 ret_bufused -> i32
fd_renumber              fd to -> i32
fd_tell                  fd ret_offset -> i32
path_create_directory    fd path path_len -> i32
path_remove_directory    fd path path_len -> i32
path_unlink_file         fd path path_len -> i32
path_filestat_get        fd flags path path_len ret_stat -> i32
path_filestat_set_times  fd flags path path_len atim:i64 mtim:i64 fst_flags -> i32
path_link                old_fd old_flags old_path old_path_len new_fd new_path new_path_len -> i32
path_readlink            fd path path_len buf buf_len ret_bufused -> i32
path_rename              fd old_path old_path_len new_fd new_path new_path_len -> i32
path_symlink             old_path old_path_len fd new_path new_path_len -> i32
sock_accept              fd flags ret_fd -> i32
sock_recv                fd ri_data ri_data_len ri_flags ret_datalen ret_flags -> i32
sock_send                fd si_data si_data_len si_flags ret_datalen -> i32
sock_shutdown            fd how -> i32
"""
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
