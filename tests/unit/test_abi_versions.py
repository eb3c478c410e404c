from abi import detect_abi, marker_name

R32 = ("i32",)
HDR3 = (("i32",) * 3, R32)
HDR2 = (("i32",) * 2, R32)


def test_marker_decides():
    info = detect_abi({"memory": None, marker_name("0.2.1"): ((), ()), "proxy_on_request_headers": HDR3})
    assert (info.version, info.declared, info.headers_arity, info.notes) == ("0.2.1", "0.2.1", 3, ())
    assert info.envoy_loads


def test_first_marker_wins_like_cpp_host():
    info = detect_abi({marker_name("0.2.0"): ((), ()), marker_name("0.1.0"): ((), ())})
    assert info.declared == "0.2.0"
    assert any("first" in n for n in info.notes)


def test_0_1_0_marker_with_0_2_callback_shape():
    info = detect_abi({marker_name("0.1.0"): ((), ()), "proxy_on_request_headers": HDR3, "proxy_on_response_headers": HDR3})
    assert info.version == "0.1.0"
    assert info.headers_arity == 3
    assert any("Bad function signature" in n for n in info.notes)


def test_no_marker_is_inferred_and_noted():
    assert detect_abi({"proxy_on_request_headers": HDR2}).version == "0.1.0"
    assert detect_abi({}, [("env", "proxy_get_log_level")]).version == "0.2.1"
    info = detect_abi({"proxy_on_request_headers": HDR3})
    assert info.declared is None and not info.envoy_loads
    assert any("envoy rejects" in n for n in info.notes)


def test_import_from_another_version_is_noted():
    info = detect_abi({marker_name("0.2.0"): ((), ())}, [("env", "proxy_get_log_level"), ("env", "proxy_log")])
    assert [n for n in info.notes if "proxy_get_log_level" in n]
    assert not [n for n in info.notes if "proxy_log " in n]
