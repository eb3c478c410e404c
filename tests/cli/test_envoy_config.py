"""Envoy configuration in: the Wasm filters of a bootstrap YAML, with their settings, as Envoy
would build them (the files below are our own, in the shape the SDK examples' envoy.yaml have)."""

from __future__ import annotations

import base64
import json

import pytest

from emulator import Host
from emulator.cli.main import main
from emulator.envoy_config import EnvoyConfigError, read_envoy_config
from tests.conftest import FIXTURES

GO = FIXTURES / "go/headers_go.wasm"
FEATURES = FIXTURES / "go_features/features_go.wasm"
SCENARIO = FIXTURES / "scenarios/headers.json"

# the shape of proxy-wasm-go-sdk's examples/*/envoy.yaml: one listener, an HTTP connection
# manager, the Wasm filter, the router; a static cluster
EXAMPLE = """
static_resources:
  listeners:
    - name: main
      address:
        socket_address: {address: 0.0.0.0, port_value: 18000}
      filter_chains:
        - filters:
            - name: envoy.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress_http
                codec_type: auto
                route_config:
                  name: local_route
                  virtual_hosts:
                    - name: local_service
                      domains: ["*"]
                      routes:
                        - match: {prefix: "/"}
                          route: {cluster: web_service}
                http_filters:
                  - name: envoy.filters.http.wasm
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: demo
                        root_id: demo_root
                        configuration:
                          "@type": type.googleapis.com/google.protobuf.StringValue
                          value: demo-plugin-config
                        vm_config:
                          vm_id: demo_vm
                          runtime: "envoy.wasm.runtime.v8"
                          configuration:
                            "@type": type.googleapis.com/google.protobuf.StringValue
                            value: demo-vm-config
                          environment_variables:
                            key_values: {DEMO: "1"}
                          code:
                            local:
                              filename: "WASM"
                        fail_open: true
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: web_service
      connect_timeout: 0.25s
      type: STRICT_DNS
      load_assignment:
        cluster_name: web_service
        endpoints:
          - lb_endpoints:
              - endpoint: {address: {socket_address: {address: httpbin.org, port_value: 80}}}
"""


# the shape of proxy-wasm-rust-sdk's examples/*/envoy.yaml: `listeners` given as one object rather
# than a list, the filter wrapped in a TypedStruct (type_url + value), a cluster endpoint with a hostname
RUST_SHAPE = """
static_resources:
  listeners:
    address:
      socket_address:
        address: 0.0.0.0
        port_value: 10000
    filter_chains:
      - filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: ingress_http
              codec_type: AUTO
              route_config:
                name: local_routes
                virtual_hosts:
                  - name: local_service
                    domains:
                      - "*"
                    routes:
                      - match:
                          prefix: "/"
                        route:
                          cluster: backend
              http_filters:
                - name: envoy.filters.http.wasm
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                    value:
                      config:
                        name: "rust_shaped"
                        vm_config:
                          runtime: "envoy.wasm.runtime.v8"
                          code:
                            local:
                              filename: "WASM"
                - name: envoy.filters.http.router
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: backend
      connect_timeout: 5s
      type: STRICT_DNS
      lb_policy: ROUND_ROBIN
      load_assignment:
        cluster_name: backend
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address:
                      address: backend.example
                      port_value: 8000
                  hostname: "backend.example"
"""

# the shape of proxy-wasm-cpp-sdk's example/integration_test/envoy_config.yaml: an admin block, flow
# style, fail_open inside `config`, a multi-line JSON StringValue, several STATIC clusters
CPP_SHAPE = """
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
static_resources:
  listeners:
  - name: listener_0
    address:
      socket_address: { address: 127.0.0.1, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: service_a }
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                fail_open: true
                name: cpp_shaped
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local:
                      filename: WASM
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {
                      "mode": "watch"
                    }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: side_cluster
    type: STATIC
    load_assignment:
      cluster_name: side_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8081 } } }
  - name: service_a
    type: STATIC
    load_assignment:
      cluster_name: service_a
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
"""


def test_the_rust_sdk_examples_shape(tmp_path):
    cfg = read_envoy_config(_write(tmp_path, RUST_SHAPE.replace("WASM", str(GO))))
    (f,) = cfg.filters
    assert (f.name, f.root_id, f.runtime, f.fail_policy, f.module) == ("rust_shaped", "", "envoy.wasm.runtime.v8", "FAIL_CLOSED", GO)
    assert cfg.listener == "listener 0" and cfg.address == ("0.0.0.0", 10000) and cfg.warnings == []
    assert cfg.clusters == ["backend"] and cfg.endpoints == {"backend": [("backend.example", 8000)]} and cfg.route("/x").cluster == "backend"


def test_the_cpp_sdk_examples_shape(tmp_path):
    cfg = read_envoy_config(_write(tmp_path, CPP_SHAPE.replace("WASM", str(GO))))
    (f,) = cfg.filters
    assert (f.name, f.fail_policy, f.configuration) == ("cpp_shaped", "FAIL_OPEN", b'{\n  "mode": "watch"\n}\n')
    assert cfg.clusters == ["side_cluster", "service_a"] and cfg.address == ("127.0.0.1", 10000)
    assert cfg.endpoints["service_a"] == [("127.0.0.1", 8080)] and cfg.route("/").cluster == "service_a"


def test_run_with_the_rust_shaped_config_is_run_by_hand(tmp_path, capsys):
    config = _write(tmp_path, RUST_SHAPE.replace("WASM", str(GO)))
    assert main(["run", "--envoy-config", str(config), str(SCENARIO), "--json"]) == 0
    from_config = json.loads(capsys.readouterr().out)
    assert main(["run", str(GO), str(SCENARIO), "--name", "rust_shaped", "--json"]) == 0
    by_hand = json.loads(capsys.readouterr().out)
    assert from_config.pop("envoy_warnings") == []
    assert from_config == by_hand


def _write(tmp_path, text, name="envoy.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_setting_of_the_filter_is_read(tmp_path):
    cfg = read_envoy_config(_write(tmp_path, EXAMPLE.replace("WASM", str(GO))))
    (f,) = cfg.filters
    assert (f.kind, f.name, f.root_id, f.vm_id, f.runtime) == ("http", "demo", "demo_root", "demo_vm", "envoy.wasm.runtime.v8")
    assert (f.configuration, f.vm_configuration, f.environment, f.fail_policy) == (b"demo-plugin-config", b"demo-vm-config", {"DEMO": "1"}, "FAIL_OPEN")
    assert f.module == GO and cfg.clusters == ["web_service"] and cfg.listener == "main"
    assert cfg.warnings == []  # everything in this file is modelled (serve routes and forwards)
    assert cfg.address == ("0.0.0.0", 18000) and cfg.endpoints == {"web_service": [("httpbin.org", 80)]}
    (route,) = cfg.routes
    assert (route.match, route.value, route.cluster) == ("prefix", "/", "web_service") and cfg.route("/anything") is route


def test_routes_prefix_path_direct_and_what_is_skipped(tmp_path):
    routes = """
                      routes:
                        - match: {path: "/exact"}
                          direct_response: {status: 418, body: {inline_string: "teapot"}}
                        - match: {safe_regex: {regex: "/re.*"}}
                          route: {cluster: web_service}
                        - match: {prefix: "/api"}
                          route: {weighted_clusters: {clusters: [{name: web_service, weight: 100}]}}
                        - match: {prefix: "/"}
                          route: {cluster: web_service}"""
    text = EXAMPLE.replace("WASM", str(GO)).replace(
        """
                      routes:
                        - match: {prefix: "/"}
                          route: {cluster: web_service}""",
        routes,
    )
    cfg = read_envoy_config(_write(tmp_path, text))
    assert [(r.match, r.value, r.cluster, r.direct) for r in cfg.routes] == [("path", "/exact", None, (418, b"teapot")), ("prefix", "/", "web_service", None)]
    assert cfg.route("/exact?q=1").direct == (418, b"teapot") and cfg.route("/exactly").cluster == "web_service"
    assert any("routes[1].match: only prefix and path matches" in w for w in cfg.warnings)
    assert any("routes[2].route: only a single cluster" in w for w in cfg.warnings)


def test_run_with_the_envoy_config_is_run_with_the_same_settings_by_hand(tmp_path, capsys):
    config = _write(tmp_path, EXAMPLE.replace("WASM", str(GO)))
    assert main(["run", "--envoy-config", str(config), str(SCENARIO), "--json"]) == 0
    from_config = json.loads(capsys.readouterr().out)
    plugin_config, vm_config = tmp_path / "plugin.txt", tmp_path / "vm.txt"
    plugin_config.write_text("demo-plugin-config")
    vm_config.write_text("demo-vm-config")
    by_hand = ["run", str(GO), str(SCENARIO), "--plugin-config", str(plugin_config), "--vm-config", str(vm_config)]
    by_hand += ["--root-id", "demo_root", "--vm-id", "demo_vm", "--name", "demo", "--env", "DEMO=1", "--json"]
    assert main(by_hand) == 0
    manual = json.loads(capsys.readouterr().out)
    assert from_config.pop("envoy_warnings") == []  # nothing unmodelled in this file
    assert from_config == manual and from_config["streams"]


def test_plugins_with_the_same_vm_share_it_and_form_a_chain_in_order(tmp_path):
    second = """
                  - name: envoy.filters.http.wasm
                    typed_config:
                      "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                      type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      value:
                        config:
                          root_id: second_root
                          configuration: {"@type": type.googleapis.com/google.protobuf.Struct, "value": {"k": "v"}}
                          vm_config:
                            vm_id: demo_vm
                            runtime: envoy.wasm.runtime.v8
                            configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, "value": demo-vm-config}
                            environment_variables: {key_values: {DEMO: "1"}}
                            code: {local: {filename: "WASM"}}
                  - name: envoy.filters.http.cors
                    typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
"""
    text = EXAMPLE.replace(
        "                  - name: envoy.filters.http.router", second.strip("\n") + "\n                  - name: envoy.filters.http.router", 1
    )
    built = Host.from_envoy_config(_write(tmp_path, text.replace("WASM", str(GO))), trace=False)
    first, other = built.plugins
    assert first.vm is other.vm and len(built.host.vms) == 1  # same vm_id, code and VM settings: one VM
    assert (other.root_id, other.config) == ("second_root", b'{"k":"v"}')
    assert built.chain.plugins == [first, other] and built.host.clusters == {"web_service"}
    assert any("envoy.filters.http.cors" in w for w in built.warnings)
    stream = built.http_stream()
    stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "a"}, end_of_stream=True)
    assert stream.upstream_request.headers is not None


def test_inline_bytes_and_unknown_clusters_get_envoys_answer(tmp_path):
    inline = base64.b64encode(FEATURES.read_bytes()).decode()
    text = EXAMPLE.replace('filename: "WASM"', f'inline_bytes: "{inline}"').replace("root_id: demo_root", "root_id: auth")
    built = Host.from_envoy_config(_write(tmp_path, text), trace=False)
    stream = built.http_stream()
    stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "a", "authorization": "token-1"}, end_of_stream=True)
    # the auth role calls the "auth" cluster, which this configuration does not define: Envoy refuses the call
    assert not built.host.http_calls.pending() and stream.local_response is not None


@pytest.mark.parametrize(
    ("edit", "where", "problem"),
    [
        (lambda t: t.replace('filename: "WASM"', 'filename: "missing.wasm"'), "vm_config.code.local.filename", "no such file"),
        (lambda t: t.replace("envoy.wasm.runtime.v8", "envoy.wasm.runtime.null"), "vm_config.runtime", "null runtime"),
        (lambda t: t.replace("envoy.wasm.runtime.v8", "envoy.wasm.runtime.quickjs"), "vm_config.runtime", "unknown runtime"),
        (lambda t: t.replace("  clusters:\n", "  clusters: 3\n  unused:\n"), "static_resources.clusters", "expected a list"),
    ],
)
def test_a_bad_configuration_names_the_place_in_the_file(tmp_path, edit, where, problem):
    path = _write(tmp_path, edit(EXAMPLE).replace("WASM", str(GO)))
    with pytest.raises(EnvoyConfigError) as info:
        read_envoy_config(path)
    assert where in info.value.where and problem in info.value.problem
    assert "static_resources" in str(info.value)


def test_the_command_line_refuses_what_it_cannot_run_with_exit_2(tmp_path, capsys):
    path = _write(tmp_path, EXAMPLE.replace('filename: "WASM"', 'filename: "missing.wasm"'))
    assert main(["run", "--envoy-config", str(path)]) == 2
    assert "filters[0].typed_config.http_filters[0].typed_config.config.vm_config.code.local.filename" in capsys.readouterr().err
    assert main(["run", "--envoy-config", str(_write(tmp_path, "static_resources: {listeners: []}", "empty.yaml"))]) == 2
    assert "no listener has a Wasm filter" in capsys.readouterr().err


def test_bench_and_fuzz_take_the_filter_from_the_envoy_config(tmp_path, capsys):
    config = _write(tmp_path, EXAMPLE.replace("WASM", str(GO)))
    assert main(["bench", "--envoy-config", str(config), str(FIXTURES / "scenarios/bench.yaml"), "--rounds", "1", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["filter"] == str(GO) and measured["metrics"]["host_calls"] > 0
    out = tmp_path / "finding.json"
    assert main(["fuzz", "--envoy-config", str(config), "--examples", "20", "--leak-repeats", "0", "--skip", "trap", "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["filter"] == str(GO) and report["examples"] == 20


def test_fuzz_applies_the_configured_plugin_settings(tmp_path, capsys):
    # the Go header fixture refuses the configuration "fail-configure": the refusal shows the
    # Envoy configuration's plugin configuration reached the fuzzed plugin
    config = _write(tmp_path, EXAMPLE.replace("WASM", str(GO)).replace("value: demo-plugin-config", "value: fail-configure"))
    assert main(["fuzz", "--envoy-config", str(config), "--examples", "5", "--json"]) == 3
    assert "does not start" in json.loads(capsys.readouterr().out)["error"]


def test_the_pytest_fixture_builds_the_configuration_on_the_tests_host(tmp_path, load_envoy_config, proxy_wasm_host):
    built = load_envoy_config(_write(tmp_path, EXAMPLE.replace("WASM", str(GO))))
    assert built.host is proxy_wasm_host and [p.root_id for p in built.plugins] == ["demo_root"]
    stream = built.http_stream()
    stream.send_request_headers({":method": "GET", ":path": "/", ":authority": "a"}, end_of_stream=True)
    assert proxy_wasm_host.trace  # the calls show in a failing test's report


def test_warnings_are_the_chosen_listeners(tmp_path):
    other = """
    - name: admin
      filter_chains:
        - filters:
            - name: envoy.filters.network.tcp_proxy
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: x, cluster: web_service}
"""
    text = EXAMPLE.replace("  clusters:\n", other.lstrip("\n") + "  clusters:\n", 1).replace("WASM", str(GO))
    cfg = read_envoy_config(_write(tmp_path, text))
    assert cfg.listener == "main" and not any("tcp_proxy" in w for w in cfg.warnings)
    admin = read_envoy_config(_write(tmp_path, text), "admin")
    assert admin.filters == [] and any("tcp_proxy" in w for w in admin.warnings)
    with pytest.raises(EnvoyConfigError, match="no listener named 'nope'"):
        read_envoy_config(_write(tmp_path, text), "nope")
