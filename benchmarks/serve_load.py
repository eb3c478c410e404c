"""Load through ``proxy-wasm-emulator serve``: many requests, many connections, nothing lost or mixed.

    python benchmarks/serve_load.py [--requests 2000] [--concurrency 50] [--wasm FILE] [--json]

Three parts on loopback, each with an ephemeral port: an upstream (aiohttp, in this process) that
echoes each request's ``x-request-id`` in its body and a header; ``proxy-wasm-emulator serve`` (the
real command, a process of its own) with the Go SDK fixture in front of the upstream; and a client
(aiohttp, in this process) that sends the requests over ``--concurrency`` connections at once.

Every response must carry its own request's id (body and header) and the filter's marks on both
sides (``x-fixture`` reached the upstream, ``x-fixture-response`` the client). Every other outcome
is counted as an error with its reason. The proxy's resident memory is read from /proc after the
first quarter of the requests and at the end. Prints requests per second and latency percentiles;
nothing here is a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CONFIG = """
static_resources:
  listeners:
    - name: load
      address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
      filter_chains:
        - filters:
            - name: envoy.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: load
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: {{prefix: "/"}}
                          route: {{cluster: echo}}
                http_filters:
                  - name: envoy.filters.http.wasm
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: load
                        vm_config:
                          runtime: envoy.wasm.runtime.v8
                          code: {{local: {{filename: "{wasm}"}}}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: echo
      load_assignment:
        endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]
"""


def rss_kib(pid: int) -> int | None:
    """The resident set size of a process (Linux), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


async def _upstream() -> tuple[object, int, list[str]]:
    from aiohttp import web

    marks: list[str] = []  # the x-fixture header of every request that reached the upstream

    async def echo(request: web.Request) -> web.Response:
        rid = request.headers.get("x-request-id", "")
        marks.append(request.headers.get("x-fixture", ""))
        return web.Response(text=rid, headers={"x-request-id": rid})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port, marks


async def run(requests: int, concurrency: int, wasm: Path) -> dict:
    """Start the three parts, send the requests, check every answer; the figures and the errors."""
    import aiohttp

    runner, port, marks = await _upstream()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "envoy.yaml"
        config.write_text(CONFIG.format(wasm=wasm, port=port))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "emulator", "serve", str(config), "--listen", "127.0.0.1:0", cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            m = re.match(r"serving http://127\.0\.0\.1:(\d+)", first)
            if not m:
                raise RuntimeError(f"serve did not start: {first!r} {(await proc.stderr.read()).decode()[-2000:]}")
            url = f"http://127.0.0.1:{m.group(1)}"
            drain = asyncio.get_running_loop().create_task(proc.stdout.read())  # the access log, kept from filling the pipe
            errors: Counter[str] = Counter()
            latencies: list[float] = []
            rss: dict[str, int | None] = {}
            sem = asyncio.Semaphore(concurrency)
            connector = aiohttp.TCPConnector(limit=concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one(i: int) -> None:
                    rid = f"req-{i:05d}"
                    async with sem:
                        t0 = time.perf_counter()
                        try:
                            async with session.get(f"{url}/item/{i}", headers={"x-request-id": rid}) as resp:
                                body = await resp.text()
                                if resp.status != 200:
                                    errors[f"status {resp.status}"] += 1
                                elif body != rid or resp.headers.get("x-request-id") != rid:
                                    errors["mixed up: another request's answer"] += 1
                                elif resp.headers.get("x-fixture-response") != "go":
                                    errors["the response skipped the filter"] += 1
                        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                            errors[f"client error: {type(exc).__name__}"] += 1
                        latencies.append(time.perf_counter() - t0)
                    if i == requests // 4:
                        rss["after_first_quarter_kib"] = rss_kib(proc.pid)

                started = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(requests)))
                elapsed = time.perf_counter() - started
            rss["at_end_kib"] = rss_kib(proc.pid)
        finally:
            if proc.returncode is None:
                proc.send_signal(2)  # SIGINT: serve's clean shutdown
            await asyncio.wait_for(proc.wait(), 60)
            log = (await drain).decode() if "drain" in locals() else ""
            await runner.cleanup()
    lost = requests - len(latencies)
    if lost:
        errors["lost"] += lost
    unmarked = sum(1 for mark in marks if mark != "go")
    if unmarked:
        errors["reached the upstream without the filter's x-fixture"] += unmarked
    access_lines = [line for line in log.splitlines() if '"GET /item/' in line]
    if len(access_lines) != requests:
        errors[f"access-log lines: {len(access_lines)} for {requests} requests"] += 1
    lat = sorted(latencies)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(requests / elapsed, 1),
        "p50_ms": round(statistics.median(lat) * 1e3, 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 2),
        "errors": dict(errors),
        "rss_kib": rss,
        "loadavg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "clean_shutdown": proc.returncode == 0 and "stopped after" in log,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--wasm", type=Path, default=ROOT / "fixtures/go/headers_go.wasm")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = asyncio.run(run(args.requests, args.concurrency, args.wasm.resolve()))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['requests']} requests over {result['concurrency']} connections in {result['elapsed_s']} s: "
            f"{result['requests_per_s']}/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; errors {result['errors'] or 'none'}; "
            f"proxy RSS {result['rss_kib']}; load average {result['loadavg']}; clean shutdown {result['clean_shutdown']}"
        )
    return 1 if result["errors"] or not result["clean_shutdown"] else 0


if __name__ == "__main__":
    sys.exit(main())
