"""``serve``: an Envoy configuration's filters on real HTTP traffic, with a real upstream, a real
callout service and a real client, all on loopback with ephemeral ports."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emulator import Host
from emulator.serve import UPSTREAM_FAILURE, ServeOptions, serving
from tests.conftest import FIXTURES, ROOT

GO = FIXTURES / "go/headers_go.wasm"
FEATURES = FIXTURES / "go_features/features_go.wasm"


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return out
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("content-length") or 0))


class Upstream:
    """A real HTTP/1.1 server on an ephemeral port that records what reached it."""

    def __init__(self, answer) -> None:
        self.seen: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                body = _read_body(self)
                outer.seen.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                answer(self, body)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _hello(handler, body):
    if handler.path == "/stream":  # a chunked response in three frames, a little apart
        handler.send_response(200)
        handler.send_header("content-type", "text/plain")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for piece in (b"one-", b"two-", b"three"):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.flush()
            time.sleep(0.05)
        handler.wfile.write(b"0\r\n\r\n")
        return
    out = b"hello from upstream"
    handler.send_response(200)
    handler.send_header("content-type", "text/plain")
    handler.send_header("content-length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)


def _auth(handler, body):
    ok = handler.headers.get("x-token") == "good"
    out = b"ok" if ok else b"no"
    handler.send_response(200 if ok else 401)
    handler.send_header("content-length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)


def _config(tmp_path, wasm, *, upstream_port, auth_port=1, root_id="", fail_open=True, dead_port=1):
    text = f"""
static_resources:
  listeners:
    - name: main
      address: {{socket_address: {{address: 0.0.0.0, port_value: 10000}}}}
      filter_chains:
        - filters:
            - name: envoy.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress_http
                route_config:
                  virtual_hosts:
                    - name: local
                      domains: ["*"]
                      routes:
                        - match: {{path: "/direct"}}
                          direct_response: {{status: 418, body: {{inline_string: "teapot"}}}}
                        - match: {{prefix: "/nowhere"}}
                          route: {{cluster: gone}}
                        - match: {{prefix: "/"}}
                          route: {{cluster: web_service}}
                http_filters:
                  - name: envoy.filters.http.wasm
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: demo
                        root_id: "{root_id}"
                        vm_config:
                          runtime: envoy.wasm.runtime.v8
                          code: {{local: {{filename: "{wasm}"}}}}
                        fail_open: {str(fail_open).lower()}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: web_service
      load_assignment:
        endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {upstream_port}}}}}}}}}]}}]
    - name: auth
      load_assignment:
        endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {auth_port}}}}}}}}}]}}]
    - name: gone
      load_assignment:
        endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {dead_port}}}}}}}}}]}}]
"""
    path = tmp_path / "envoy.yaml"
    path.write_text(text)
    return path


def _request(port, method="GET", path="/", headers=None, chunks=None, timeout=10):
    """One request on a fresh connection; ``chunks`` are sent as separate chunked frames, a little apart."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if chunks is None:
            conn.request(method, path, headers=headers or {})
        else:
            conn.putrequest(method, path)
            for k, v in {**(headers or {}), "transfer-encoding": "chunked"}.items():
                conn.putheader(k, v)
            conn.endheaders()
            for piece in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.05)
            conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def upstream():
    with Upstream(_hello) as up:
        yield up


def _serve(config, lines=None, **options):
    """``serving`` on an ephemeral port; what it prints goes to ``lines``."""
    log = lines.append if lines is not None else (lambda line: None)
    return serving(Host.from_envoy_config(config, trace=True), ServeOptions(listen=("127.0.0.1", 0), log=log, **options))


def _logged(lines):
    """The filters' log messages among the printed lines."""
    return [m.group(1) for line in lines if (m := re.match(r"  \[\w+\] wasm log [^:]*: (.*?)(?: \(context \d+\))?$", line))]


def test_headers_go_through_the_filter_both_ways(tmp_path, upstream):
    lines = []
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port), lines) as server:
        status, headers, body = _request(server.address[1], path="/items?page=2", headers={"user-agent": "test"})
    assert (status, body) == (200, b"hello from upstream")
    assert headers["x-fixture-response"] == "go" and headers["content-type"] == "text/plain"
    (seen,) = upstream.seen
    assert seen["path"] == "/items?page=2" and seen["headers"]["x-fixture"] == "go" and seen["headers"]["user-agent"] == "test"
    assert seen["headers"]["host"] == f"127.0.0.1:{server.address[1]}"  # the client's authority, as Envoy keeps it
    assert _logged(lines)[-2:] == ["request_headers: path=/items?page=2", "log: done"]
    assert server.host.logs == [] and server.host.trace == []  # printed, then dropped: nothing kept per request


def test_a_local_reply_goes_back_and_nothing_goes_upstream(tmp_path, upstream):
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port)) as server:
        status, headers, body = _request(server.address[1], headers={"x-deny": "1"})
    assert (status, body, headers["x-denied-by"]) == (403, b"denied", "go")
    assert upstream.seen == []


@pytest.mark.parametrize("chunks", [[b"a"], [b"abc", b"defg"], [b"x" * 1000, b"y", b"z" * 5000]], ids=["1-frame", "2-frames", "3-frames"])
def test_request_bodies_stream_through_the_body_callbacks_frame_by_frame(tmp_path, upstream, chunks):
    lines = []
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port), lines) as server:
        status, _, _ = _request(server.address[1], "POST", "/upload", {"x-body-mode": "append"}, chunks=chunks)
    logs = _logged(lines)
    whole = b"".join(chunks)
    assert status == 200 and upstream.seen[0]["body"] == whole + b"-appended"
    body_lines = [m for m in logs if m.startswith("request_body:")]
    assert body_lines[-1] == f"request_body: size={len(whole)} eos=1"
    assert len(body_lines) >= len(chunks)  # each frame reached the filter as it arrived (plus the end of stream)


def test_a_body_the_filter_answers_itself(tmp_path, upstream):
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port)) as server:
        status, headers, body = _request(server.address[1], "POST", "/", {"x-body-mode": "echo"}, chunks=[b"ping-", b"pong"])
    assert (status, body, headers["x-echo"]) == (200, b"ping-pong", "go") and upstream.seen == []


def test_a_chunked_response_streams_back(tmp_path, upstream):
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port)) as server:
        status, headers, body = _request(server.address[1], path="/stream")
    assert (status, body, headers["x-fixture-response"]) == (200, b"one-two-three", "go")


def test_callouts_go_to_a_second_real_service(tmp_path, upstream):
    with Upstream(_auth) as auth:
        config = _config(tmp_path, FEATURES, upstream_port=upstream.port, auth_port=auth.port, root_id="auth")
        with _serve(config) as server:
            ok = _request(server.address[1], headers={"authorization": "good"})
            denied = _request(server.address[1], headers={"authorization": "bad"})
    assert ok[0] == 200 and ok[2] == b"hello from upstream"
    assert upstream.seen[0]["headers"]["x-auth"] == "ok"  # added by the filter after the callout
    assert denied[0] == 403 and denied[2] == b"forbidden" and len(upstream.seen) == 1
    assert [s["headers"]["x-token"] for s in auth.seen] == ["good", "bad"] and auth.seen[0]["path"] == "/check"


def test_callouts_answered_by_a_scenarios_responders(tmp_path, upstream):
    from emulator.scenario import load_scenario

    responders = tmp_path / "responders.yaml"
    responders.write_text('http_calls:\n  - cluster: auth\n    response: {headers: {":status": "403"}}\nstreams: []\n')
    config = _config(tmp_path, FEATURES, upstream_port=upstream.port, auth_port=_free_port(), root_id="auth")
    with _serve(config, responders=load_scenario(responders)) as server:
        status, _, body = _request(server.address[1], headers={"authorization": "good"})
    assert (status, body) == (403, b"forbidden") and upstream.seen == []  # the responder said 403; the (down) service was not asked


def test_a_listener_without_a_wasm_http_filter_is_a_usage_error(tmp_path, capsys):
    from emulator.cli.main import main

    text = (
        _config(tmp_path, GO, upstream_port=1).read_text().replace("envoy.extensions.filters.http.wasm.v3.Wasm", "envoy.extensions.filters.http.cors.v3.Cors")
    )
    config = tmp_path / "no_wasm.yaml"
    config.write_text(text)
    assert main(["serve", str(config)]) == 2
    assert "no listener has a Wasm filter" in capsys.readouterr().err


def test_a_filter_that_does_not_start_is_exit_3(tmp_path, capsys):
    from emulator.cli.main import main

    text = _config(tmp_path, GO, upstream_port=1).read_text()
    text = text.replace(
        "                          runtime: envoy.wasm.runtime.v8\n",
        '                          runtime: envoy.wasm.runtime.v8\n                          configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: fail-start}\n',
    )
    config = tmp_path / "fail_start.yaml"
    config.write_text(text)
    assert main(["serve", str(config), "--listen", "127.0.0.1:0"]) == 3  # the contract's vm_start returns false
    assert "the filter did not start" in capsys.readouterr().err


def test_a_callout_to_a_service_that_is_down_fails_as_envoy_says(tmp_path, upstream):
    config = _config(tmp_path, FEATURES, upstream_port=upstream.port, auth_port=_free_port(), root_id="auth")
    with _serve(config) as server:
        status, _, body = _request(server.address[1], headers={"authorization": "good"})
    # Envoy answers a callout to an unreachable cluster with a 503: the filter denies (not 200)
    assert status == 403 and body == b"forbidden" and upstream.seen == []


def test_timers_run_on_real_time(tmp_path, upstream):
    lines = []
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port), lines) as server:
        started = time.monotonic()
        status, _, body = _request(server.address[1], headers={"x-pause": "1"})
        waited = time.monotonic() - started
    logs = _logged(lines)
    assert status == 200 and body == b"hello from upstream"
    assert any(m.startswith("resumed ") for m in logs) and waited >= 0.09  # the 100 ms tick resumed it


@pytest.mark.parametrize(("fail_open", "expected"), [(True, 200), (False, 503)])  # Envoy failStream: 503, "wasm_fail_stream"
def test_a_trap_applies_the_fail_policy(tmp_path, upstream, fail_open, expected):
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port, fail_open=fail_open)) as server:
        status, _, _ = _request(server.address[1], headers={"x-trap": "1"})
    assert status == expected
    assert len(upstream.seen) == (1 if fail_open else 0)


def test_routes_direct_responses_and_an_upstream_that_is_down(tmp_path, upstream):
    with _serve(_config(tmp_path, GO, upstream_port=upstream.port, dead_port=_free_port())) as server:
        direct = _request(server.address[1], path="/direct")
        down = _request(server.address[1], path="/nowhere")
    assert direct[0] == 418 and direct[2] == b"teapot" and direct[1]["x-fixture-response"] == "go"  # through the encoder filters
    assert down[0] == 503 and down[2] == UPSTREAM_FAILURE
    assert upstream.seen == []


def test_no_route_is_envoys_404_through_the_filters(tmp_path, upstream):
    text = _config(tmp_path, GO, upstream_port=upstream.port).read_text().replace('- match: {prefix: "/"}', '- match: {prefix: "/api"}')
    config = tmp_path / "api_only.yaml"
    config.write_text(text)
    with _serve(config) as server:
        status, headers, body = _request(server.address[1], path="/other")
        api = _request(server.address[1], path="/api/items")
    assert (status, body, headers["x-fixture-response"]) == (404, b"", "go") and api[0] == 200
    assert [s["path"] for s in upstream.seen] == ["/api/items"]


def test_shutdown_ends_streams_and_stops_the_vms(tmp_path, upstream):
    lines = []
    chain = Host.from_envoy_config(_config(tmp_path, GO, upstream_port=upstream.port), trace=True)
    with serving(chain, ServeOptions(listen=("127.0.0.1", 0), log=lines.append)) as server:
        _request(server.address[1])
        assert not any(p.deleted for p in chain.plugins)
    assert all(p.deleted for p in chain.plugins)  # proxy_on_done(root) said done, proxy_on_delete followed
    assert lines[-1] == "stopped after 1 requests; the VMs are shut down"
    access = [line for line in lines if line.startswith("127.0.0.1 ")]
    assert len(access) == 1 and re.fullmatch(r'127\.0\.0\.1 "GET / HTTP/1\.1" 200 19 [\d.]+ms upstream web_service 127\.0\.0\.1:\d+', access[0])


def test_concurrent_requests_keep_their_own_answers_and_leave_nothing_behind(tmp_path):
    def echo_id(handler, body):
        rid = handler.headers.get("x-request-id", "").encode()
        handler.send_response(200)
        handler.send_header("x-request-id", rid.decode())
        handler.send_header("content-length", str(len(rid)))
        handler.end_headers()
        handler.wfile.write(rid)

    from concurrent.futures import ThreadPoolExecutor

    with Upstream(echo_id) as echo, _serve(_config(tmp_path, GO, upstream_port=echo.port)) as server:
        port = server.address[1]
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda i: (f"r{i}", _request(port, path=f"/i/{i}", headers={"x-request-id": f"r{i}"})), range(300)))
        for _ in range(500):  # the last streams complete on the server's thread just after their answers went out
            if server.in_flight == 0:
                break
            time.sleep(0.01)
        host, vm = server.host, server.chain.plugins[0].vm
        kept = (len(host.logs), len(host.trace), len(host.http_calls.calls), len(vm.contexts), len(server.chain.plugins[0].streams))
    assert all(status == 200 and body == rid.encode() and headers["x-request-id"] == rid for rid, (status, headers, body) in answers)
    assert kept == (0, 0, 0, 2, 0)  # the VM context and the root context only: every stream was deleted, every log printed and dropped


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_command_serves_until_interrupted(tmp_path, upstream):
    config = _config(tmp_path, GO, upstream_port=upstream.port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", str(config), "--listen", "127.0.0.1:0", "--trace"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        m = re.match(r"serving http://127\.0\.0\.1:(\d+) \(listener 'main'\) through demo", first)
        assert m, first + proc.stderr.read()
        status, _, body = _request(int(m.group(1)))
        assert (status, body) == (200, b"hello from upstream")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"GET / HTTP/1.1" 200 19' in out and "proxy_add_header_map_value(map_type='HTTP_REQUEST_HEADERS', key='x-fixture', value='go') = Ok" in out
    assert out.rstrip().endswith("stopped after 1 requests; the VMs are shut down")


def test_bad_input_is_a_usage_error(tmp_path, capsys):
    from emulator.cli.main import main

    assert main(["serve", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the configuration" in capsys.readouterr().err
    config = _config(tmp_path, GO, upstream_port=1)
    assert main(["serve", str(config), "--upstream", "web_service"]) == 2
    assert "--upstream: expected CLUSTER=HOST:PORT" in capsys.readouterr().err


def test_it_listens_on_loopback_unless_told_otherwise(tmp_path):
    from emulator.serve import Server

    chain = Host.from_envoy_config(_config(tmp_path, GO, upstream_port=8080))
    assert Server(chain).listen_address() == ("127.0.0.1", 10000)  # the listener says 0.0.0.0:10000
    assert Server(chain, ServeOptions(listen=("0.0.0.0", 9000))).listen_address() == ("0.0.0.0", 9000)
    assert json.dumps(Server(chain).upstream("web_service")) == '["127.0.0.1", 8080]'
