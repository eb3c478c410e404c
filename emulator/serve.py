"""``serve``: the Wasm filters of an Envoy configuration on real HTTP/1.1 traffic, without Envoy.

A small proxy on loopback: a client's request goes through the listener's filter chain (the
emulator's streams, with Envoy's filter-manager rules), then to the route's cluster; the answer
comes back through the chain to the client. Everything the filters do happens as in a test:

- request and response bodies go through the body callbacks in the frames they arrive in;
- a local reply (from a filter, a trap under the fail policy, or no route) goes back to the client;
- callouts (``proxy_http_call``) go to the named cluster's endpoint, or to the responders of a
  scenario file; timers run on real time (the virtual clock follows the wall clock);
- the filters' log lines (and their stdout/stderr) as they are written, one access-log line per
  request, and with ``trace`` every host call; printed, then dropped, so memory stays flat however
  long it runs (answered callouts are dropped too);
- on shutdown every stream ends and the VMs stop (``on_done``, ``on_delete``, ``proxy_done``).

HTTP is aiohttp's (server and client): maintained, asyncio, streaming bodies both ways. The
emulator itself is synchronous; all of it runs on the event loop's thread, so filters see one
call at a time, as each Envoy worker thread does.

Limits: HTTP/1.1 only (no HTTP/2, no trailers: aiohttp has none to send or read), no TLS, gRPC
callouts only through responders, one endpoint per cluster (the first).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from abi.records import field, record

from .envoy_config import EnvoyChain

__all__ = ["ServeOptions", "Server", "serving"]

_CONNECTION = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"upgrade", b"trailer"}
"""Headers of one HTTP/1.1 connection, not of the message: the filters do not see them."""
_HOP_BY_HOP = _CONNECTION | {b"content-length"}
"""Not passed on: content-length is set again from the body the filters let through."""

NO_ROUTE_BODY = b""
"""The body of Envoy's 404 when no route matches (``NR``): empty."""
UPSTREAM_FAILURE = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
"""The body of Envoy's router reply when the upstream cannot be reached (status 503)."""


def is_loopback(address: str) -> bool:
    """Whether ``address`` names this machine only (``localhost``, 127/8, ``::1``)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _on_loopback(address: tuple[str, int]) -> tuple[str, int]:
    """``address`` if it names this machine, else the same port on 127.0.0.1: serve stays on loopback."""
    host, port = address
    return (host if is_loopback(host) else "127.0.0.1", port)


def _received(raw_headers: Any) -> list[tuple[bytes, bytes]]:
    """Headers as read off an HTTP/1.1 connection: lower-cased, without the connection's own."""
    return [(k.lower(), v) for k, v in raw_headers if k.lower() not in _CONNECTION]


def _to_send(pairs: Any, authority: bytes | None) -> list[tuple[str, str]]:
    """A message's headers for the HTTP client: no pseudo-headers, none of one hop, ``Host`` from ``:authority``."""
    out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs if not k.startswith(b":") and k not in _HOP_BY_HOP]
    out.append(("Host", (authority or b"").decode("latin-1")))
    return out


@record
class ServeOptions:
    """How :class:`Server` listens and where it sends traffic (the command line's options)."""

    listen: tuple[str, int] | None = None
    """Where to listen; default: the listener's port on 127.0.0.1 (its address if that is loopback)."""
    upstreams: dict[str, tuple[str, int]] = field(default_factory=dict)
    """A cluster's endpoint, chosen by hand (default: the configuration's, on loopback)."""
    responders: Any = None
    """A :class:`~emulator.scenario.Scenario` whose ``http_calls``/``grpc_calls`` answer callouts."""
    trace: bool = False
    """Print every host call the filters make, as they make them."""
    tick_ms: float = 10.0
    """How often the virtual clock catches up with the wall clock (timers, callout timeouts)."""
    request_timeout_s: float = 60.0
    """A request still unanswered after this long gets a 504 (a filter that never resumes)."""
    log: Callable[[str], None] = print
    """Where access-log lines and notes go."""


class _Exchange:
    """One client request in flight: its stream, the upstream leg, what was sent where."""

    def __init__(self, request: Any, stream: Any) -> None:
        self.request = request
        self.stream = stream
        self.started = time.monotonic()
        self.response: Any = None  # the aiohttp StreamResponse, once prepared
        self.sent_body = 0  # bytes of the downstream response written so far
        self.upstream_task: asyncio.Task[None] | None = None
        self.upstream_sent = 0  # bytes of the upstream request handed to the client library
        self.upstream_queue: asyncio.Queue[bytes | None] | None = None
        self.upstream_closed = False
        self.done = asyncio.Event()
        self.writing = asyncio.Lock()  # the handler, the upstream leg, timers and callouts all write to the client
        self.via = ""


class Server:
    """The proxy: ``await start()`` / ``await stop()`` on a running loop, or :func:`serving` in a thread."""

    def __init__(self, chain: EnvoyChain, options: ServeOptions | None = None) -> None:
        self.chain = chain
        self.host = chain.host
        self.config = chain.config
        self.options = options or ServeOptions()
        self.requests = 0
        self.address: tuple[str, int] | None = None
        self._exchanges: set[_Exchange] = set()
        self._runner: Any = None
        self._session: Any = None
        self._ticker: asyncio.Task[None] | None = None
        self._callouts: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._clock_start = (time.monotonic(), self.host.clock.now_ms)  # wall clock and virtual clock, set again by start()
        if self.options.responders is not None:
            from .scenario import install_responders

            install_responders(self.host, self.options.responders)

    @property
    def in_flight(self) -> int:
        """Requests being handled now (their stream not yet completed and logged)."""
        return len(self._exchanges)

    # -- where things go -----------------------------------------------------------------------
    def listen_address(self) -> tuple[str, int]:
        """Where to listen: ``--listen``, else the listener's port on loopback."""
        if self.options.listen is not None:
            return self.options.listen
        if self.config.address is None:
            return ("127.0.0.1", 0)
        return _on_loopback(self.config.address)

    def upstream(self, cluster: str) -> tuple[str, int] | None:
        """A cluster's endpoint: chosen by hand, else the configuration's first, on loopback."""
        if cluster in self.options.upstreams:
            return self.options.upstreams[cluster]
        endpoints = self.config.endpoints.get(cluster) or []
        return _on_loopback(endpoints[0]) if endpoints else None

    def describe(self) -> list[str]:
        """What is served, for the start-up lines."""
        address, port = self.address or self.listen_address()
        names = ", ".join(
            f"{f.name or f.root_id or '(unnamed)'} ({f.module if not isinstance(f.module, bytes) else 'inline code'})" for f in self.config.http_filters
        )
        lines = [f"serving http://{address}:{port} (listener {self.config.listener!r}) through {names}"]
        for r in self.config.routes:
            target = f"direct response {r.direct[0]}" if r.direct else f"cluster {r.cluster} at {self._endpoint_text(r.cluster)}"
            lines.append(f"  route {r.match} {r.value!r} -> {target}")
        lines += [f"  note: {w}" for w in self.config.warnings]
        return lines

    def _endpoint_text(self, cluster: str | None) -> str:
        if cluster is None:
            return "-"
        ep = self.upstream(cluster)
        configured = (self.config.endpoints.get(cluster) or [None])[0]
        if ep is None:
            return "no endpoint (503)"
        text = f"{ep[0]}:{ep[1]}"
        if configured is not None and configured != ep and cluster not in self.options.upstreams:
            text += f" (configured {configured[0]}:{configured[1]}; serve forwards on loopback, --upstream {cluster}=HOST:PORT to choose)"
        return text

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one)."""
        import aiohttp
        from aiohttp import web

        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        address, port = self.listen_address()
        site = web.TCPSite(self._runner, address, port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # the bound port when port 0 was asked for
        self.address = (address, sockets[0].getsockname()[1] if sockets else port)
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        self._clock_start = (time.monotonic(), self.host.clock.now_ms)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self.address

    async def stop(self) -> None:
        """Stop listening, end the streams in flight, shut the VMs down (``proxy_on_done``...)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for ex in list(self._exchanges):
            if ex.upstream_task is not None:
                ex.upstream_task.cancel()
            ex.done.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.host.shutdown()
        self._emit()
        self.options.log(f"stopped after {self.requests} requests; the VMs are shut down")

    async def _tick(self) -> None:
        """Let virtual time follow real time: timers fire, callouts time out, then streams move on."""
        while True:
            await asyncio.sleep(self.options.tick_ms / 1000)
            t0, v0 = self._clock_start
            behind = v0 + (time.monotonic() - t0) * 1000 - self.host.clock.now_ms
            if behind > 0:
                self.host.advance(behind)
                for ex in list(self._exchanges):
                    await self._pump(ex)
                self._emit()

    # -- one request ---------------------------------------------------------------------------
    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        self.requests += 1
        headers = [(b":method", request.method.encode()), (b":path", request.raw_path.encode()), (b":scheme", b"http")]
        authority = request.headers.get("Host", "")
        headers.append((b":authority", authority.encode()))
        headers += [(k, v) for k, v in _received(request.raw_headers) if k != b"host"]
        ex = _Exchange(request, self.chain.http_stream())
        self._exchanges.add(ex)
        try:
            has_body = request.body_exists
            ex.stream.send_request_headers(headers, end_of_stream=not has_body)
            await self._pump(ex)
            if has_body:
                async for chunk in request.content.iter_any():
                    if ex.done.is_set():
                        break
                    ex.stream.send_request_body(chunk, end_of_stream=False)
                    await self._pump(ex)
                if not ex.done.is_set():
                    ex.stream.send_request_body(b"", end_of_stream=True)
                    await self._pump(ex)
            try:
                await asyncio.wait_for(ex.done.wait(), self.options.request_timeout_s)
            except asyncio.TimeoutError:
                if ex.response is None:
                    ex.via = f"no answer within {self.options.request_timeout_s:g} s"
                    return web.Response(status=504, text="proxy-wasm-emulator serve: the filters never let the request through or answered it\n")
            return ex.response if ex.response is not None else web.Response(status=502)
        finally:
            if ex.upstream_task is not None and not ex.upstream_task.done():
                ex.upstream_task.cancel()
            if not ex.stream.completed:
                ex.stream.complete()
            self._emit()
            self._access_log(ex)
            self._exchanges.discard(ex)

    async def _pump(self, ex: _Exchange) -> None:
        """After any step: answer callouts, start or feed the upstream leg, write to the client."""
        self.host.drain()
        self._start_callouts()
        stream = ex.stream
        up = stream.upstream_request
        if up.headers is not None and ex.upstream_task is None and stream.local_response is None and stream.downstream_response.headers is None:
            ex.upstream_task = asyncio.get_running_loop().create_task(self._upstream(ex))
        if ex.upstream_queue is not None and not ex.upstream_closed:
            fresh = bytes(up.body[ex.upstream_sent :])
            if fresh:
                ex.upstream_sent += len(fresh)
                ex.upstream_queue.put_nowait(fresh)
            if up.end_stream:
                ex.upstream_closed = True
                ex.upstream_queue.put_nowait(None)
        await self._write_downstream(ex)
        self._emit()

    async def _write_downstream(self, ex: _Exchange) -> None:
        async with ex.writing:  # one writer at a time: prepare once, each byte once
            await self._write_downstream_locked(ex)

    async def _write_downstream_locked(self, ex: _Exchange) -> None:
        from aiohttp import web

        down = ex.stream.downstream_response
        if down.headers is None or ex.done.is_set():
            return
        if ex.response is None:
            status = 200
            headers = []
            for k, v in down.headers:
                if k == b":status":
                    status = int(v or b"200")
                elif not k.startswith(b":") and k not in _HOP_BY_HOP:
                    headers.append((k.decode("latin-1"), v.decode("latin-1")))
            if ex.stream.local_response is not None and not ex.via:
                ex.via = f"local reply ({ex.stream.local_response.details or 'filter'})"
            resp = web.StreamResponse(status=status)
            for k, v in headers:
                resp.headers.add(k, v)
            if down.end_stream:
                resp.content_length = len(down.body)
            await resp.prepare(ex.request)
            ex.response = resp
        fresh = bytes(down.body[ex.sent_body :])
        if fresh:
            ex.sent_body += len(fresh)
            await ex.response.write(fresh)
        if down.end_stream:
            await ex.response.write_eof()
            ex.done.set()

    async def _upstream(self, ex: _Exchange) -> None:
        """The router's leg: route, send the request on, feed the answer back through the filters."""
        import aiohttp

        stream = ex.stream
        up = stream.upstream_request
        path = (up.header(":path") or b"/").decode("latin-1")
        route = self.config.route(path)
        if route is None:
            ex.via = "no route"
            self._respond(ex, 404, [], NO_ROUTE_BODY)
        elif route.direct is not None:
            ex.via = "direct response"
            self._respond(ex, route.direct[0], [(b"content-type", b"text/plain")] if route.direct[1] else [], route.direct[1])
        else:
            endpoint = self.upstream(route.cluster or "")
            if endpoint is None:
                ex.via = f"cluster {route.cluster}: no endpoint"
                self._respond(ex, 503, [(b"content-type", b"text/plain")], b"no healthy upstream")
            else:
                ex.via = f"upstream {route.cluster} {endpoint[0]}:{endpoint[1]}"
                headers = _to_send(up.headers or [], up.header(":authority"))
                data: Any = None
                if up.end_stream:
                    data = bytes(up.body) if up.body else None
                    ex.upstream_sent = len(up.body)
                    ex.upstream_closed = True
                else:
                    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
                    ex.upstream_queue = queue
                    fresh = bytes(up.body)
                    if fresh:
                        ex.upstream_sent = len(fresh)
                        queue.put_nowait(fresh)

                    async def body() -> Any:
                        while (piece := await queue.get()) is not None:
                            yield piece

                    data = body()
                method = (up.header(":method") or b"GET").decode("latin-1")
                url = f"http://{endpoint[0]}:{endpoint[1]}{path}"
                try:
                    async with self._session.request(
                        method, url, headers=headers, data=data, allow_redirects=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding")
                    ) as resp:
                        rh = [(b":status", str(resp.status).encode()), *_received(resp.raw_headers)]
                        no_body = method == "HEAD" or resp.status in (204, 304) or resp.content_length == 0
                        stream.send_response_headers(rh, end_of_stream=no_body)
                        await self._pump(ex)
                        if not no_body:
                            async for chunk in resp.content.iter_any():
                                if ex.done.is_set():
                                    return
                                stream.send_response_body(chunk, end_of_stream=False)
                                await self._pump(ex)
                            stream.send_response_body(b"", end_of_stream=True)
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    if stream.downstream_response.headers is None:
                        ex.via += " (connection failure)"
                        self._respond(ex, 503, [(b"content-type", b"text/plain")], UPSTREAM_FAILURE)
        await self._pump(ex)

    def _respond(self, ex: _Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """A reply made by the router (no route, direct response, upstream failure): through the encoder filters, as in Envoy."""
        stream = ex.stream
        pairs = [(b":status", str(status).encode()), *headers, (b"content-length", str(len(body)).encode())]
        stream.send_response_headers(pairs, end_of_stream=not body)
        if body and stream.downstream_response.end_stream is False and not stream.completed:
            stream.send_response_body(body, end_of_stream=True)

    # -- callouts ------------------------------------------------------------------------------
    def _start_callouts(self) -> None:
        loop = asyncio.get_running_loop()
        for call in self.host.http_calls.pending():
            if id(call) not in self._callouts:
                self._callouts.add(id(call))
                task = loop.create_task(self._callout(call))
                self._tasks.add(task)  # the loop keeps only weak references
                task.add_done_callback(self._tasks.discard)
        for call in self.host.grpc_calls.pending():
            if id(call) not in self._callouts and hasattr(call, "fail"):
                self._callouts.add(id(call))
                self.options.log(f"  grpc callout to {call.cluster}: serve makes no gRPC calls (answer them with --responders); failing it as UNAVAILABLE")
                call.fail(message="proxy-wasm-emulator serve makes no gRPC calls")

    async def _callout(self, call: Any) -> None:
        """A filter's ``proxy_http_call``, sent to the cluster's endpoint; the answer goes back to it."""
        import aiohttp

        endpoint = self.upstream(call.cluster)
        answer: tuple[int, list[tuple[str, str]], bytes] | None = None
        if endpoint is not None:
            headers = _to_send(call.headers, call.header(":authority"))
            url = f"http://{endpoint[0]}:{endpoint[1]}{(call.path or b'/').decode('latin-1')}"
            try:
                async with self._session.request((call.method or b"GET").decode(), url, headers=headers, data=call.body or None, allow_redirects=False) as resp:
                    body = await resp.read()
                    answer = (resp.status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers if k.lower() not in _HOP_BY_HOP], body)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                answer = None
        if not call.pending:  # timed out meanwhile (virtual time follows real time)
            return
        if answer is None:
            call.connect_failure()
        else:
            call.respond(answer[0], answer[1], answer[2])
        for ex in list(self._exchanges):
            await self._pump(ex)

    # -- output --------------------------------------------------------------------------------
    def _emit(self) -> None:
        """Print what the filters logged and (``trace``) the host calls since the last time, then
        drop them and the answered callouts: a long run keeps nothing per request."""
        host, log = self.host, self.options.log
        if host.logs or host.console_lines:
            for r in host.console_view():
                log(f"  [{r.level_name}] {r.envoy_line()}" + (f" (context {r.context_id})" if r.context_id is not None else ""))
            host.logs.clear()
            host.console_lines.clear()
        if host.trace:
            if self.options.trace:
                for entry in host.trace:
                    log(f"    {entry}")
            host.trace.clear()
        for calls in (host.http_calls.calls, host.grpc_calls.calls):
            if any(not c.pending for c in calls):
                for c in calls:
                    if not c.pending:
                        self._callouts.discard(id(c))
                calls[:] = [c for c in calls if c.pending]

    def _access_log(self, ex: _Exchange) -> None:
        req = ex.request
        status = ex.response.status if ex.response is not None else "-"
        ms = (time.monotonic() - ex.started) * 1000
        peer = req.remote or "-"
        self.options.log(
            f'{peer} "{req.method} {req.raw_path} HTTP/{req.version.major}.{req.version.minor}" {status} {ex.sent_body} {ms:.1f}ms {ex.via or "-"}'
        )


@contextlib.contextmanager
def serving(chain: EnvoyChain, options: ServeOptions | None = None) -> Iterator[Server]:
    """Run a :class:`Server` on a thread of its own for the ``with`` block (tests, notebooks)::

        chain = Host.from_envoy_config("envoy.yaml")
        with serving(chain, ServeOptions(listen=("127.0.0.1", 0))) as server:
            urllib.request.urlopen(f"http://127.0.0.1:{server.address[1]}/")

    Everything the filters do runs on that thread; read the host after the block.
    """
    server = Server(chain, options)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # the address is taken, ...: reported to the caller
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="proxy-wasm-serve", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        thread.join(5)
        loop.close()
        raise failure[0]
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
