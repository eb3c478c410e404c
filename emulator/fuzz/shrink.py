"""Shrinking a finding further than hypothesis can: delta-debugging of its scenario (streams, headers,
frames, trailers, responders) and of its fault rules while the same invariant still breaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .execution import execute_scenario
from .invariants import Invariant, Violation
from .values import FaultPlan

if TYPE_CHECKING:
    from ..host import ModuleSource
    from .report import Finding

__all__: list[str] = []


_REQUIRED = {"request": {":method", ":path", ":authority"}, "response": {":status"}}


def _candidates(sc: dict[str, Any], base_http: int, base_grpc: int) -> Iterable[dict[str, Any]]:
    """Scenarios one edit smaller than ``sc`` (a delta-debugging step), biggest cuts first."""
    streams = sc.get("streams", [])
    if len(streams) > 1:
        for i in range(len(streams)):
            yield {**sc, "streams": streams[:i] + streams[i + 1 :]}
    for key, base in (("http_calls", base_http), ("grpc_calls", base_grpc)):
        for i in range(base, len(sc.get(key, []))):
            rest = sc[key][:i] + sc[key][i + 1 :]
            yield {k: v for k, v in sc.items() if k != key} if not rest else {**sc, key: rest}
    if sc.get("advance_ms"):
        yield {k: v for k, v in sc.items() if k != "advance_ms"}
    for i, stream in enumerate(streams):

        def with_stream(new: dict[str, Any], i: int = i) -> dict[str, Any]:
            return {**sc, "streams": [*streams[:i], new, *streams[i + 1 :]]}

        if stream.get("response") is not None:
            yield with_stream({k: v for k, v in stream.items() if k != "response"})
        if stream.get("advance_ms"):
            yield with_stream({k: v for k, v in stream.items() if k != "advance_ms"})
        for side in ("request", "response"):
            msg = stream.get(side)
            if msg is None:
                continue
            if msg.get("trailers") is not None:
                yield with_stream({**stream, side: {k: v for k, v in msg.items() if k != "trailers"}})
            body = msg.get("body")
            if body:
                for smaller in _smaller_bodies(body):
                    yield with_stream({**stream, side: {**msg, "body": smaller}})
            chunks = msg.get("chunks")
            if chunks:
                yield with_stream({**stream, side: {k: v for k, v in msg.items() if k != "chunks"}})
                if len(chunks) > 1 and all(isinstance(c, str) for c in chunks):
                    yield with_stream({**stream, side: {**msg, "chunks": ["".join(chunks)]}})
                for j, c in enumerate(chunks):
                    for smaller in _smaller_bodies(c):
                        yield with_stream({**stream, side: {**msg, "chunks": [*chunks[:j], smaller, *chunks[j + 1 :]]}})
            headers = msg.get("headers", [])
            for j, (name, _) in enumerate(headers):
                if name not in _REQUIRED[side] or [n for n, _ in headers].count(name) > 1:
                    yield with_stream({**stream, side: {**msg, "headers": headers[:j] + headers[j + 1 :]}})
            for j, (name, value) in enumerate(headers):
                if value not in ("", "0") and name not in _REQUIRED[side]:
                    yield with_stream({**stream, side: {**msg, "headers": [*headers[:j], [name, ""], *headers[j + 1 :]]}})
            for j, (name, value) in enumerate(headers):
                for smaller in _smaller_values(name, value) if isinstance(value, str) else ():
                    yield with_stream({**stream, side: {**msg, "headers": [*headers[:j], [name, smaller], *headers[j + 1 :]]}})


def _smaller_values(name: str, value: str) -> list[str]:
    """Shorter versions of a header value: a path without its query or without one parameter; a
    list without one item; the first character or half of any other value."""
    if name == ":path":
        if "?" not in value:
            return []
        path, query = value.split("?", 1)
        params = query.split("&")
        out = [path or "/"]
        if len(params) > 1:
            out += [f"{path}?{'&'.join(params[:k] + params[k + 1 :])}" for k in range(len(params))]
        return out
    if name.startswith(":") or len(value) < 2:
        return []
    items = value.split(",")
    if len(items) > 1:
        return [",".join(items[:k] + items[k + 1 :]) for k in range(len(items))]
    return [v for v in (value[:1], value[: len(value) // 2]) if v != value]


def _smaller_bodies(body: Any) -> list[Any]:
    """Shorter versions of a scenario body: empty, one character, the first half."""
    if isinstance(body, dict):
        return [""]
    if not body:
        return []
    out = [""]
    if len(body) > 1:
        out.append(body[:1])
    if len(body) > 3:
        out.append(body[: len(body) // 2])
    return out


def _minimize(path: ModuleSource, finding: Finding, *, engine: str, invariants: list[Invariant], base: dict[str, Any], max_replays: int = 200) -> None:
    """Delta-debug a finding's scenario: drop streams, headers, frames, trailers, responders and
    fault rules while the same invariant still breaks (hypothesis cannot always delete a list
    element whose neighbours it would have to re-align)."""
    base_http, base_grpc = len(base.get("http_calls", [])), len(base.get("grpc_calls", []))
    sc = {k: v for k, v in finding.scenario.items() if k != "description"}
    rules = list(finding.faults or [])
    replays = 0

    def breaks(candidate: dict[str, Any], faults: list[dict[str, Any]]) -> list[Violation] | None:
        nonlocal replays
        replays += 1
        try:
            res = execute_scenario(path, candidate, engine=engine, invariants=invariants, faults=FaultPlan.from_json(faults) if faults else None)
        except Exception:
            return None
        hits = [v for v in res.violations if v.invariant == finding.invariant]
        return hits or None

    changed = True
    while changed and replays < max_replays:
        changed = False
        for i in range(len(rules)):
            fewer = rules[:i] + rules[i + 1 :]
            if breaks(sc, fewer):
                rules, changed = fewer, True
                break
        if changed:
            continue
        for candidate in _candidates(sc, base_http, base_grpc):
            if replays >= max_replays:
                break
            if breaks(candidate, rules):
                sc, changed = candidate, True
                break
    hits = breaks(sc, rules)
    if hits:
        finding.violations = [v.message for v in hits]
    origin = finding.scenario.get("description", "found by proxy-wasm-emulator fuzz").split(": ", 1)[0]
    finding.scenario = {"description": f"{origin}: {finding.invariant}: {finding.violations[0]}", **sc}
    finding.faults = rules or None
