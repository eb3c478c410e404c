"""Assertions for filter tests, with messages that show what the filter actually did.

They take the objects the API returns (streams, hosts, plugins) and read like the Go SDK's
proxytest vocabulary, written pythonically::

    from emulator.testing import assert_headers, assert_local_response, assert_logged, assert_metric

    assert_headers(stream.upstream_request, {"x-user": "alice"})          # a subset, with a diff
    assert_local_response(stream, 403, body="denied")
    assert_logged(plugin, "configure:", level="info")
    assert_metric(host, "requests_total", 3)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from abi import LogLevel

from .http.headers import HeaderMap, HeadersLike, normalize_headers
from .http.types import HttpMessage

__all__ = [
    "assert_actions",
    "assert_headers",
    "assert_local_response",
    "assert_logged",
    "assert_metric",
    "assert_no_local_response",
    "assert_pending_callouts",
    "assert_queue",
    "assert_shared_data",
    "format_headers",
    "headers_diff",
]


def _pairs(value: Any) -> list[tuple[bytes, bytes]]:
    if isinstance(value, HttpMessage):
        return list(value.headers or [])
    if isinstance(value, HeaderMap):
        return value.pairs()
    return normalize_headers(value)


def format_headers(pairs: Iterable[tuple[bytes, bytes]]) -> str:
    """One ``name: value`` per line."""
    return "\n".join(f"  {k.decode(errors='replace')}: {v.decode(errors='replace')}" for k, v in pairs) or "  (no headers)"


def headers_diff(actual: Any, expected: HeadersLike, *, exact: bool = False) -> list[str]:
    """Lines describing how ``actual`` differs from ``expected`` (``[]`` if it matches)."""
    got = _pairs(actual)
    want = normalize_headers(expected)
    lines = []
    for k, v in want:
        values = [gv for gk, gv in got if gk == k]
        if not values:
            lines.append(f"- {k.decode(errors='replace')}: {v.decode(errors='replace')}   (missing)")
        elif v not in values:
            lines.append(f"- {k.decode(errors='replace')}: {v.decode(errors='replace')}")
            lines += [f"+ {k.decode(errors='replace')}: {gv.decode(errors='replace')}" for gv in values]
    if exact:
        for k, v in got:
            if (k, v) not in want:
                lines.append(f"+ {k.decode(errors='replace')}: {v.decode(errors='replace')}   (unexpected)")
    return lines


def assert_headers(actual: Any, expected: HeadersLike, *, exact: bool = False) -> None:
    """``expected`` headers are present in ``actual`` (a message, a map or pairs); ``exact`` forbids others."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    if isinstance(actual, HttpMessage) and actual.headers is None:
        raise AssertionError("no headers got through (the filter held them, or replied locally)")
    diff = headers_diff(actual, expected, exact=exact)
    if diff:
        raise AssertionError("headers differ (- expected, + actual):\n  " + "\n  ".join(diff) + "\nall headers:\n" + format_headers(_pairs(actual)))


def assert_local_response(stream: Any, status: int, *, body: bytes | str | None = None, headers: HeadersLike = None) -> None:
    """The filter replied locally with ``status`` (and ``body``/``headers`` if given)."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    reply = stream.local_response
    if reply is None:
        up = stream.upstream_request
        where = "the request went upstream" if up.headers is not None else "the request was held"
        raise AssertionError(f"expected a local reply {status}, but the filter sent none ({where}); callbacks: {stream.actions}")
    problems = []
    if reply.status != status:
        problems.append(f"status {reply.status}, expected {status}")
    if body is not None:
        want = body.encode() if isinstance(body, str) else body
        if reply.body != want:
            problems.append(f"body {reply.body!r}, expected {want!r}")
    if headers is not None:
        problems += headers_diff(reply.headers, headers)
    if problems:
        raise AssertionError(f"local reply from {reply.callback} differs:\n  " + "\n  ".join(problems))


def assert_no_local_response(stream: Any) -> None:
    """The filter did not reply locally."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    reply = stream.local_response
    if reply is not None:
        raise AssertionError(f"unexpected local reply {reply.status} {reply.body!r} from {reply.callback} (details {reply.details!r})")


def assert_logged(source: Any, text: str, *, level: str | LogLevel | None = None) -> None:
    """A log line containing ``text`` (at ``level`` if given) from a plugin or host."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    records = source.logs
    want = None if level is None else (LogLevel[level.upper()] if isinstance(level, str) else LogLevel(level))
    if any(text in r.message and (want is None or r.level == want) for r in records):
        return
    shown = "\n".join(f"  [{r.level_name}] {r.message}" for r in records[-20:]) or "  (nothing logged)"
    lvl = f" at {want.name.lower()}" if want is not None else ""
    raise AssertionError(f"no log line containing {text!r}{lvl}; the last lines:\n{shown}")


def assert_metric(host: Any, name: str, value: Any) -> None:
    """Metric ``name`` has ``value`` (a histogram's value is its list of samples)."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    got = host.metrics.get(name)
    if got != value:
        known = ", ".join(f"{k}={v['value']}" for k, v in host.metrics.all().items()) or "none defined"
        raise AssertionError(f"metric {name!r} is {got!r}, expected {value!r} (metrics: {known})")


def assert_shared_data(host: Any, key: str, value: bytes | str, *, vm_id: str = "") -> None:
    """Shared data ``key`` holds ``value`` for ``vm_id``."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    want = value.encode() if isinstance(value, str) else value
    got = host.shared_data.get(key, vm_id=vm_id)
    if got is None or got[0] != want:
        raise AssertionError(f"shared data {key!r} (vm_id {vm_id!r}) is {None if got is None else got[0]!r}, expected {want!r}")


def assert_queue(host: Any, name: str, items: list[bytes | str], *, vm_id: str = "") -> None:
    """Queue ``name`` holds exactly ``items`` (oldest first)."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    want = [i.encode() if isinstance(i, str) else i for i in items]
    got = host.queues.contents(name, vm_id=vm_id)
    if got != want:
        raise AssertionError(f"queue {name!r} (vm_id {vm_id!r}) holds {got!r}, expected {want!r}")


def assert_pending_callouts(host: Any, count: int, *, cluster: str | None = None) -> list[Any]:
    """Exactly ``count`` HTTP callouts wait for an answer (to ``cluster`` if given); returns them."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    pending = host.http_calls.pending(cluster)
    if len(pending) != count:
        listing = "\n".join(f"  {c.cluster} {c.method!r} {c.path!r} (token {c.token})" for c in pending) or "  (none)"
        where = f" to {cluster!r}" if cluster else ""
        raise AssertionError(f"{len(pending)} pending callouts{where}, expected {count}:\n{listing}")
    return pending


def assert_actions(stream: Any, **expected: str) -> None:
    """The last action of each named callback, e.g. ``request_headers="Continue"``."""
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    got = {}
    for name, action in stream.actions:
        got[name.removeprefix("proxy_on_")] = action
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    if wrong:
        lines = [f"{k}: {g!r}, expected {w!r}" for k, (g, w) in wrong.items()]
        raise AssertionError("callback actions differ:\n  " + "\n  ".join(lines) + f"\nall callbacks: {stream.actions}")
