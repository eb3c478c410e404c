"""The host lint: invariants over a finished run that say what Envoy would crash on or misbehave with.

Each invariant is a small function over a :class:`RunView` (the host, its plugins, every stream the
run made, the start error if any) returning violations as readable strings. They run at one of
three moments (``Invariant.when``):

* ``"end"``: after the traffic, before shutdown (traps, lints of each stream);
* ``"repeat"``: after the traffic, with ``run.repeat`` replaying the same traffic (leaks);
* ``"shutdown"``: after ``host.shutdown()`` (contexts never deleted).

Built in (:data:`BUILTIN_INVARIANTS`, by name):

========================== ===========================================================================
``trap``                   a trap or panic in any callback (stream, tick, callout, queue, start)
``local_reply_then_continue`` ``send_local_response`` followed by Continue
``removed_pseudo_header``  the filter removed ``:status``, ``:method``, ``:path`` or another pseudo-header
``headers_after_sent``     response (or request) headers mutated after they were sent on
``restricted_host_call``   a host call from a phase where cpp-host forbids it (it traps in Envoy)
``continue_not_paused``    ``continue_stream`` on a stream that was not paused
``contexts_not_deleted``   contexts left after ``host.shutdown()``, or streams never completed
``memory_growth``          linear memory that keeps growing over identical traffic (a leak)
========================== ===========================================================================

Add your own with :func:`register_invariant` (used by every later fuzz run) or pass them to
``fuzz_filter(invariants=[...])``; a plain function ``f(run) -> Iterable[str]`` is an ``"end"``
invariant named after the function, and :func:`stream_invariant` adapts ``f(stream)``::

    @register_invariant
    @stream_invariant
    def no_server_errors(stream):
        if (stream.response_code() or 0) >= 500 and stream.local_response is None:
            yield f"upstream answered {stream.response_code()}"

Outside fuzzing, :func:`check_stream` and :func:`check_host` run them in an ordinary test.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from abi.records import field, record

from ..errors import CallbackError, PluginStartError, RestrictedHostCall
from ..vm.coverage import covered_sites

if TYPE_CHECKING:
    from ..host import Host
    from ..http.stream import HttpStream
    from ..plugin import Plugin

__all__ = [
    "BUILTIN_INVARIANTS",
    "Invariant",
    "RunView",
    "SHUTDOWN_GRACE_MS",
    "Violation",
    "check",
    "check_host",
    "check_stream",
    "continue_not_paused",
    "contexts_not_deleted",
    "headers_after_sent",
    "invariant",
    "local_reply_then_continue",
    "memory_growth",
    "registered_invariants",
    "register_invariant",
    "removed_pseudo_header",
    "resolve_invariants",
    "restricted_host_call",
    "shutdown_host",
    "stream_invariant",
    "trap",
    "unregister_invariant",
]

WHEN = ("end", "repeat", "shutdown")
SHUTDOWN_GRACE_MS = 10_000
"""Virtual time a host gets after ``shutdown()`` for roots whose ``proxy_on_done`` returned false
to call ``proxy_done()`` (from a tick or a callout answer) before contexts count as leaked."""


def shutdown_host(host: Host, grace_ms: float = SHUTDOWN_GRACE_MS) -> None:
    """``host.shutdown()``, then let ``grace_ms`` of virtual time pass if a root waits on ``proxy_done``."""
    host.shutdown()
    if any(p.pending_done for p in host.plugins):
        host.advance(grace_ms)


@record
class RunView:
    """What an invariant looks at: the host and everything one run did in it."""

    host: Host
    plugins: list[Plugin] = field(default_factory=list)
    streams: list[HttpStream] = field(default_factory=list)
    """Every HTTP stream the run made, in order (completed ones too)."""
    start_error: PluginStartError | None = None
    """The error if a plugin failed to start (then ``plugins`` may be empty)."""
    repeat: Callable[[], Any] | None = None
    """Replays the run's traffic once more on the same plugins (for ``"repeat"`` invariants)."""
    shut_down: bool = False
    bitmaps: tuple[bytes, ...] | None = None
    """Each VM's coverage bitmap, when the run measured coverage (see :attr:`coverage`)."""

    @functools.cached_property
    def coverage(self) -> frozenset[tuple[int, int]] | None:
        """The guest sites the traffic entered, when the run measured coverage: ``(VM position,
        site)``, decoded from :attr:`bitmaps` when first read."""
        return None if self.bitmaps is None else covered_sites(self.bitmaps)

    def stream_label(self, stream: HttpStream) -> str:
        """``stream N`` (1-based position in the run) for messages."""
        try:
            return f"stream {self.streams.index(stream) + 1}"
        except ValueError:
            return f"stream (context {stream.context_id})"

    def callback_errors(self) -> list[tuple[str, CallbackError]]:
        """Every distinct callback failure of the run: ``(where, error)``."""
        seen: set[int] = set()
        out: list[tuple[str, CallbackError]] = []
        if self.start_error is not None and isinstance(self.start_error.cause, CallbackError):
            err = self.start_error.cause
            seen.add(id(err))
            out.append((f"plugin start ({self.start_error.phase})", err))
        for s in self.streams:
            if s.error is not None and id(s.error) not in seen:
                seen.add(id(s.error))
                out.append((self.stream_label(s), s.error))
        for p in self.plugins:
            for err in p.failures:
                if id(err) not in seen:
                    seen.add(id(err))
                    out.append((f"plugin {p.root_id or '(default root)'}", err))
        return out


@record(frozen=True)
class Violation:
    """One broken invariant: its name and what happened."""

    invariant: str
    message: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.message}"


@record(frozen=True)
class Invariant:
    """A named check over a :class:`RunView`, run at ``when`` (``end``, ``repeat`` or ``shutdown``)."""

    name: str
    check: Callable[[RunView], Iterable[str] | str | None]
    when: str = "end"
    description: str = ""

    def __post_init__(self) -> None:
        if self.when not in WHEN:
            raise ValueError(f"invariant {self.name!r}: when must be one of {WHEN}, not {self.when!r}")

    def __call__(self, run: RunView) -> list[str]:
        result = self.check(run)
        if result is None:
            return []
        if isinstance(result, str):
            return [result]
        return [str(m) for m in result]


def invariant(name: str | None = None, *, when: str = "end", description: str = "") -> Callable[[Callable[..., Any]], Invariant]:
    """Decorator making an :class:`Invariant` of ``f(run)``."""

    def wrap(fn: Callable[..., Any]) -> Invariant:
        return Invariant(name or fn.__name__, fn, when, description or (fn.__doc__ or "").strip().split("\n")[0])

    return wrap


def stream_invariant(fn: Callable[[HttpStream], Iterable[str] | str | None]) -> Callable[[RunView], list[str]]:
    """Adapt ``f(stream) -> messages`` to ``f(run)``: run on every stream, messages prefixed ``stream N:``."""

    @functools.wraps(fn)
    def check(run: RunView) -> list[str]:
        out = []
        for s in run.streams:
            result = fn(s)
            msgs = [result] if isinstance(result, str) else list(result or [])
            out += [f"{run.stream_label(s)}: {m}" for m in msgs]
        return out

    return check


# -- the built-in invariants -----------------------------------------------------------------------


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def trap(run: RunView) -> list[str]:
    """A trap (panic, unreachable, abort, proc_exit...) in any callback: Envoy fails the VM."""
    out = []
    for where, err in run.callback_errors():
        if isinstance(err.cause, RestrictedHostCall):
            continue  # reported by restricted_host_call
        out.append(f"{where}: {_first_line(err)}")
    return out


def _lints(run: RunView, needle: str) -> list[str]:
    return [f"{run.stream_label(s)}: {lint}" for s in run.streams for lint in s.lints if needle in lint]


def local_reply_then_continue(run: RunView) -> list[str]:
    """``send_local_response`` followed by Continue (Envoy <= 1.17 aborted; later ones coerce it)."""
    return _lints(run, "send_local_response followed by Continue")


def removed_pseudo_header(run: RunView) -> list[str]:
    """The filter removed ``:status``/``:method``/``:path`` (Envoy answers 502/503) or another
    pseudo-header that arrived with the message."""
    out = []
    for s in run.streams:
        label = run.stream_label(s)
        required = [lint for lint in s.lints if "the filter removed the required" in lint]
        for lint in required:
            side = s.request if "request header" in lint else s.response
            missing = lint.split("header ", 1)[1].split(":", 2)
            name = (":" + missing[1]) if len(missing) > 1 else ""
            value = side.received_headers.get(name) if side.received_headers is not None and name else None
            if value is None or (name == ":status" and not value.isdigit()):
                continue  # it never arrived (or arrived invalid): not the filter's doing
            out.append(f"{label}: {lint}")
        if required:
            continue
        for side in (s.request, s.response):
            received, sent = side.received_headers, side.out.headers
            if received is None or sent is None or not side.headers_sent or (s.local_response is not None and side is s.response):
                continue
            sent_names = {k for k, _ in sent}
            gone = sorted({k.decode(errors="replace") for k, _ in received if k.startswith(b":") and k not in sent_names})
            if gone:
                out.append(f"{label}: the filter removed the {side.name} pseudo-header(s) {', '.join(gone)}")
    return out


def headers_after_sent(run: RunView) -> list[str]:
    """Headers mutated after they were sent on (the change has no effect in Envoy)."""
    return _lints(run, "changed after they were sent")


def restricted_host_call(run: RunView) -> list[str]:
    """A host call made where cpp-host forbids it (e.g. during ``_initialize``): it traps in Envoy."""
    return [f"{where}: {err.cause}" for where, err in run.callback_errors() if isinstance(err.cause, RestrictedHostCall)]


def continue_not_paused(run: RunView) -> list[str]:
    """``continue_stream`` on a request or response that was not paused (Envoy ignores or asserts)."""
    return _lints(run, "that is not paused")


def contexts_not_deleted(run: RunView) -> list[str]:
    """After shutdown (and :data:`SHUTDOWN_GRACE_MS` for pending ``proxy_done``): contexts still alive
    on a healthy VM, or streams never completed."""
    out = []
    for vm in run.host.vms:
        if vm.failed is not None:
            continue
        for cid, ctx in sorted(vm.contexts.items()):
            if cid == 0:
                continue
            if ctx.is_root and ctx.root is not None:
                why = " (proxy_on_done returned false and the filter never called proxy_done)" if ctx.root.pending_done else ""
                out.append(f"root context {cid} (root_id {ctx.root.root_id!r}) was never deleted{why}")
            else:
                out.append(f"context {cid} (parent {ctx.parent_id}) was never deleted")
    for s in run.streams:
        if not s.completed:
            out.append(f"{run.stream_label(s)} never completed (no proxy_on_log/proxy_on_done)")
    return out


def memory_growth(run: RunView, *, repeats: int = 24, warmup: int = 4, windows: int = 6) -> list[str]:
    """Linear memory that keeps growing while the same traffic is replayed (a leak).

    Replays the run's traffic ``warmup`` times, then in windows of ``repeats`` replays while
    sampling the memory size of each VM. A VM whose memory grew at least twice in the first window,
    once of them in its second half, is watched over up to ``windows`` windows, and reported only
    if its memory grew in every one of them: a garbage-collected heap (Go's collector first runs
    when the heap reaches 4 MiB) grows for a while on leak-free traffic, then levels off, and a
    window without growth clears it. Memory grows in 64 KiB pages, so leaks smaller than about
    ``128 KiB / repeats`` per replay go unseen; raise ``repeats`` to see them.
    """
    if run.repeat is None or repeats <= 0:
        return []
    vms = [vm for vm in run.host.vms if vm.failed is None and vm.memory is not None]
    if not vms:
        return []
    done = 0

    def replay(n: int, sample: bool) -> dict[int, list[int]] | str:
        nonlocal done
        sizes: dict[int, list[int]] = {id(vm): [vm.memory.size] for vm in vms} if sample else {}
        for _ in range(n):
            done += 1
            try:
                run.repeat()
            except Exception as exc:  # the emulator refused the replay: not a leak
                return f"replaying the traffic failed on repetition {done}: {type(exc).__name__}: {_first_line(exc)}"
            for vm in vms:
                if vm.failed is not None:
                    return f"the filter trapped when the same traffic was replayed (repetition {done}): {vm.failed.callback}: {vm.failed.reason}"
                if sample:
                    sizes[id(vm)].append(vm.memory.size)
        return sizes

    warm = replay(warmup, False)
    if isinstance(warm, str):
        return [warm]
    first = replay(repeats, True)
    if isinstance(first, str):
        return [first]
    watched = []
    for vm in vms:
        s = first[id(vm)]
        steps = [j for j in range(1, len(s)) if s[j] > s[j - 1]]
        if len(steps) >= 2 and steps[-1] > len(s) // 2:
            watched.append(vm)
    start = {id(vm): first[id(vm)][0] for vm in watched}
    seen = 1
    while watched and seen < windows:
        window = replay(repeats, True)
        if isinstance(window, str):
            return [window]
        watched = [vm for vm in watched if window[id(vm)][-1] > window[id(vm)][0]]
        seen += 1
    out = []
    for vm in watched:
        end = vm.memory.size
        per = (end - start[id(vm)]) / (seen * repeats)
        label = f"VM {vm.vm_id!r}" if vm.vm_id else "the VM"
        where = _growth_by_callback(vm, lambda: replay(repeats, False))
        out.append(
            f"linear memory of {label} keeps growing over identical traffic: {start[id(vm)]} -> {end} bytes over {seen * repeats} replays "
            f"after {warmup} warm-up replays, growing in each of {seen} windows of {repeats} (about {per:.0f} bytes per replay){where}"
        )
    return out


def _growth_by_callback(vm: Any, replay: Callable[[], Any]) -> str:
    """Which callbacks the memory grew in during one more window of replays, as a clause of the
    leak's message (empty if it did not grow again). The VM's ``call_in`` (every callback enters
    the guest through it) is wrapped for that window only: a leak is rare, and the wrapper costs
    nothing on the traffic that found it."""
    grew: dict[str, int] = {}
    original = vm.call_in

    def call_in(context_id: int | None, export: str, args: tuple[int, ...]) -> Any:
        before = vm.memory.size if vm.memory is not None else 0
        try:
            return original(context_id, export, args)
        finally:
            after = vm.memory.size if vm.memory is not None else 0
            if after > before:
                grew[export] = grew.get(export, 0) + after - before

    vm.call_in = call_in
    try:
        replay()
    finally:
        del vm.call_in
    if not grew:
        return ""
    parts = ", ".join(f"{name} (+{size} bytes)" for name, size in sorted(grew.items(), key=lambda kv: -kv[1]))
    return f"; in one more window it grew during {parts}"


BUILTIN_INVARIANTS: tuple[Invariant, ...] = (
    Invariant("trap", trap, "end", "a trap or panic in any callback"),
    Invariant("restricted_host_call", restricted_host_call, "end", "a host call from a phase where cpp-host forbids it"),
    Invariant("local_reply_then_continue", local_reply_then_continue, "end", "send_local_response followed by Continue"),
    Invariant("removed_pseudo_header", removed_pseudo_header, "end", "removal of :status or other pseudo-headers"),
    Invariant("headers_after_sent", headers_after_sent, "end", "headers mutated after they were sent on"),
    Invariant("continue_not_paused", continue_not_paused, "end", "continue_stream on a stream that is not paused"),
    Invariant("memory_growth", memory_growth, "repeat", "linear memory that keeps growing over identical traffic"),
    Invariant("contexts_not_deleted", contexts_not_deleted, "shutdown", "contexts never deleted after shutdown"),
)
"""The host lint, in the order violations are reported."""

_REGISTRY: dict[str, Invariant] = {}


def register_invariant(fn: Invariant | Callable[[RunView], Any] | None = None, *, name: str | None = None, when: str = "end") -> Any:
    """Register a user invariant for every later fuzz run (usable as ``@register_invariant``)."""

    def do(f: Invariant | Callable[[RunView], Any]) -> Invariant | Callable[[RunView], Any]:
        inv = _as_invariant(f, name=name, when=when)
        _REGISTRY[inv.name] = inv
        return f

    return do(fn) if fn is not None else do


def unregister_invariant(name: str) -> None:
    """Remove a registered user invariant."""
    _REGISTRY.pop(name, None)


def registered_invariants() -> list[Invariant]:
    """The registered user invariants."""
    return list(_REGISTRY.values())


def _as_invariant(item: Invariant | str | Callable[[RunView], Any], *, name: str | None = None, when: str = "end") -> Invariant:
    if isinstance(item, Invariant):
        return item
    if isinstance(item, str):
        found = {i.name: i for i in (*BUILTIN_INVARIANTS, *_REGISTRY.values())}.get(item)
        if found is None:
            raise ValueError(f"unknown invariant {item!r}; known: {', '.join(i.name for i in (*BUILTIN_INVARIANTS, *_REGISTRY.values()))}")
        return found
    if callable(item):
        return Invariant(name or getattr(item, "__name__", "custom"), item, when, (getattr(item, "__doc__", None) or "").strip().split("\n")[0])
    raise TypeError(f"an invariant is an Invariant, a name or a callable, not {type(item).__name__}")


def resolve_invariants(spec: Sequence[Invariant | str | Callable[[RunView], Any]] | None = None, *, exclude: Iterable[str] = ()) -> list[Invariant]:
    """The invariants a run checks: ``None`` means built-ins plus registered ones; names, callables
    and :class:`Invariant` objects may be mixed. ``exclude`` drops some by name."""
    items = [*BUILTIN_INVARIANTS, *_REGISTRY.values()] if spec is None else [_as_invariant(i) for i in spec]
    skip = set(exclude)
    out, names = [], set()
    for inv in items:
        if inv.name in skip or inv.name in names:
            continue
        names.add(inv.name)
        out.append(inv)
    return out


def check(run: RunView, invariants: Sequence[Invariant], when: str) -> list[Violation]:
    """Run the invariants of one moment (``end``, ``repeat``, ``shutdown``) over ``run``."""
    out = []
    for inv in invariants:
        if inv.when == when:
            out += [Violation(inv.name, m) for m in inv(run)]
    return out


def check_host(
    host: Host,
    streams: Sequence[HttpStream] = (),
    *,
    invariants: Sequence[Invariant | str | Callable[[RunView], Any]] | None = None,
    shutdown: bool = True,
) -> list[Violation]:
    """Run the host lint in an ordinary test: ``end`` invariants over ``streams`` and the host's
    plugins, then (``shutdown=True``) ``host.shutdown()`` and the ``shutdown`` ones. ``repeat``
    invariants need a replay and are skipped here (see :func:`memory_growth`)."""
    invs = resolve_invariants(invariants)
    run = RunView(host, list(host.plugins), list(streams))
    out = check(run, invs, "end")
    if shutdown:
        shutdown_host(host)
        run.shut_down = True
        out += check(run, invs, "shutdown")
    return out


def check_stream(stream: HttpStream, *, invariants: Sequence[Invariant | str | Callable[[RunView], Any]] | None = None) -> list[Violation]:
    """The ``end`` invariants over one stream (no shutdown): ``assert not check_stream(stream)``."""
    run = RunView(stream.host, [stream.plugin], [stream])
    return check(run, resolve_invariants(invariants), "end")
