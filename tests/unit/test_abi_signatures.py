import pytest

from abi import ABI_VERSIONS, CALLBACKS, HOST_FUNCTIONS, WASI_FUNCTIONS, WASI_MODULES, callbacks_for, host_functions_for, import_table


def test_version_specific_host_functions_follow_cpp_host():
    only_010 = host_functions_for("0.1.0").keys() - host_functions_for("0.2.0").keys()
    assert only_010 == {"proxy_get_configuration", "proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache"}
    assert "proxy_continue_stream" in host_functions_for("0.2.0")
    assert "proxy_get_log_level" not in host_functions_for("0.2.0")
    assert "proxy_get_log_level" in host_functions_for("0.2.1")


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("proxy_increment_metric", ("i32", "i64")),
        ("proxy_record_metric", ("i32", "i64")),
        ("proxy_http_call", ("i32",) * 10),
        ("proxy_grpc_call", ("i32",) * 12),
    ],
)
def test_wide_and_long_signatures(name, params):
    assert HOST_FUNCTIONS[name].params == params
    assert HOST_FUNCTIONS[name].results == ("i32",)


def test_wasi_i64_params_and_proc_exit():
    assert WASI_FUNCTIONS["clock_time_get"].params == ("i32", "i64", "i32")
    assert WASI_FUNCTIONS["proc_exit"].results == ()
    assert len(WASI_FUNCTIONS["path_link"].params) == 7  # the WASI shape, not cpp-host's 6


def test_headers_callback_arity_by_version():
    assert len(callbacks_for("0.1.0")["proxy_on_request_headers"].params) == 2
    assert len(callbacks_for("0.2.1")["proxy_on_response_headers"].params) == 3
    assert "proxy_on_foreign_function" not in callbacks_for("0.1.0")
    assert CALLBACKS["proxy_on_http_call_response"].param_names[0] == "root_context_id"


def test_import_table_registers_wasi_under_both_names():
    table = import_table()
    for module in WASI_MODULES:
        assert (module, "fd_write") in table
    assert len(table) == len(HOST_FUNCTIONS) + 2 * len(WASI_FUNCTIONS)
    assert ("env", "proxy_get_configuration") not in import_table("0.2.1")


def test_unknown_version_is_rejected():
    with pytest.raises(ValueError, match=r"0\.3\.0"):
        host_functions_for("0.3.0")
    assert ABI_VERSIONS == ("0.1.0", "0.2.0", "0.2.1")
