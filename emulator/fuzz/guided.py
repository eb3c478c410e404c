"""A coverage-guided fuzzing engine: a corpus of scenarios that reached new guest code, mutated.

Where :func:`~emulator.fuzz.runner.fuzz_filter` lets hypothesis draw each example, this engine keeps
every scenario that entered a basic block no earlier one entered (guest coverage,
:mod:`emulator.vm.coverage`) and makes the next ones by mutating those, at the structure level:
header names and values (from the module's words, the filter's own host-call keys and generic
HTTP knowledge), query parameters, bodies and their chunking, trailers, methods, streams added,
dropped or spliced from another entry. Findings are minimized and replayed as the hypothesis engine
does. Everything follows ``seed``: the same seed and module give the same executions.

``corpus`` names a folder: its ``*.json`` scenarios seed the run, and every new entry is written
there, so a CI job continues where the last run stopped.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engines import get_engine
from ..scenario import ScenarioError
from ..vm.coverage import bitmap_bits
from ..vm.module import parse_module
from .execution import execute_scenario
from .harvest import _NAME_LIKE, _read_wasm, harvest_strings, own_strings
from .options import FuzzOptions, _options
from .report import Finding, FuzzReport, _confirm
from .runner import FuzzSetupError, _group, _prepare, _site_count
from .shrink import _minimize
from .values import FAULT_STATUSES
from .vocabulary import fuzz_vocabulary
from .words import COMMON_HEADER_NAMES, COMMON_QUERY_PARAMETERS

if TYPE_CHECKING:
    from ..host import ModuleSource

__all__ = ["guided_fuzz"]

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"]
_VALUES = ["", "0", "1", "-1", "true", "false", "a,b", "a,,b", " , ,", "x" * 64, "%00", "\t", "application/json", "text/plain", "*/*", "gzip"]
_ODD_VALUES = frozenset({"", "a,,b", " , ,", "%00", "\t"})
"""Values left out of well-formed traffic (``adversarial=False``, the command line's ``--well-formed``)."""
_DEFAULT_STREAM = {"request": {"headers": [[":method", "GET"], [":path", "/"], [":authority", "example.com"]]}, "response": {"headers": [[":status", "200"]]}}


def guided_fuzz(
    path: ModuleSource,
    options: FuzzOptions | None = None,
    *,
    corpus: str | Path | None = None,
    progress: Callable[..., None] | None = None,
    **overrides: Any,
) -> FuzzReport:
    """Fuzz ``path`` for ``options.examples`` executions, guided by guest coverage (wasmtime)."""
    opts = _options("guided_fuzz", options, FuzzOptions(), overrides, refuses=("properties",))
    if opts.fuzz_config or opts.config_schema is not None:
        raise ValueError(
            "guided_fuzz() does not mutate the plugin configuration yet: use fuzz_filter (the command line without --guided) for fuzz_config or config_schema"
        )
    if "multi-memory" in get_engine(opts.engine).unsupported_proposals:
        raise FuzzSetupError(f"the guided engine measures guest coverage, which needs an engine with multi-memory: use wasmtime, not {opts.engine}")
    started = time.perf_counter()
    rng = random.Random(opts.seed)
    base, parsed, invs = _prepare(path, opts)
    # the replay checks (the leak check) run on inputs that reached new blocks, not on every execution
    explore = [i for i in invs if i.when != "repeat"]
    replayed = [i for i in invs if i.when == "repeat"]
    report = FuzzReport(
        str(path) if not isinstance(path, bytes | bytearray) else "<bytes>",
        opts.seed,
        0,
        [],
        [i.name for i in invs],
        engine=opts.engine,
        module=path,
        checked=invs,
    )
    # the seed scenario as given first, as fuzz_filter does: its own failures are the findings
    first = execute_scenario(path, base, engine=opts.engine, invariants=invs)
    if first.violations:
        report.findings = _group(first.violations, base, None, shrunk=False)
        _confirm(report, opts.engine)
        report.examples = 1
        report.elapsed_s = time.perf_counter() - started
        return report
    if first.run is not None and first.run.start_error is not None:
        err = first.run.start_error
        raise FuzzSetupError(f"the plugin does not start ({err.phase}: {err.reason.splitlines()[0]}): fix the configuration", filter_failed=True)
    vocab = fuzz_vocabulary(path, base, parsed, opts)
    module_names = [w.lower() for w in vocab.names if w and ":" not in w[1:]]
    names = module_names + [n.decode() if isinstance(n, bytes) else n for n in COMMON_HEADER_NAMES]
    values = list(vocab.values) + _VALUES
    module_words = harvest_strings(path) if opts.harvest else []
    query_names = [w for w in [*vocab.values, *module_words] if w.isascii() and w.isalnum() and len(w) <= 16] + [q.decode() for q in COMMON_QUERY_PARAMETERS]
    words = _Words(names, values if opts.adversarial else [v for v in values if v not in _ODD_VALUES], query_names)
    own = own_strings(path) if opts.harvest else []
    words.module_names = list(dict.fromkeys(module_names))
    words.own_names = [w.lower() for w in own if _NAME_LIKE.match(w.lower()) and len(w) <= 40]
    words.own_values = [w for w in own if len(w) <= 32]
    words.own_query = [w for w in own if w.isascii() and w.isalnum() and len(w) <= 16]
    words.adversarial = opts.adversarial
    words.max_streams = opts.max_streams
    # the exports and imports of the program the first execution loaded (parsing the module again
    # took a quarter of a second for the Go fixture)
    outline = first.host.program(path).info if first.host is not None else parse_module(_read_wasm(path))
    words.ticks = any(e.name == "proxy_on_tick" for e in outline.exports)
    if opts.faults:  # the host functions the module imports and that have error statuses
        imported = {name for module, name in outline.import_names() if module == "env"}
        words.faults = sorted(f for f in imported if f in FAULT_STATUSES)

    entries: list[dict[str, Any]] = [_with_stream(base)]
    folder = Path(corpus) if corpus is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for file in sorted(folder.glob("*.json")):
            try:
                entries.append(json.loads(file.read_text()))
            except (OSError, ValueError):
                continue
    covered: list[int] = []  # per VM, the sites entered so far (bitmap_bits: novelty and union in C)
    found: dict[str, Finding] = {}
    executions = 0

    def reached_new(bitmaps: tuple[bytes, ...]) -> bool:
        """Whether the bitmaps show a site no execution entered before; adds them to ``covered``."""
        new = False
        for k, bitmap in enumerate(bitmaps):
            bits = bitmap_bits(bitmap)
            if k == len(covered):
                covered.append(0)
            if bits & ~covered[k]:
                new = True
                covered[k] |= bits
        return new

    def covered_count() -> int:
        return sum(bits.bit_count() for bits in covered)

    def run(sc: dict[str, Any]) -> bool:
        """Execute one scenario; whether it reached new guest code."""
        nonlocal executions
        executions += 1
        try:
            res = execute_scenario(path, sc, engine=opts.engine, invariants=explore, coverage=True, reuse=True)
        except ScenarioError:  # a mutation the scenario format refuses: not a finding, not coverage
            return False
        for pair in res.comparisons:  # what the filter compared bytes with: words for the next inputs
            for operand in pair:
                words.learn(operand)
        if res.host is not None:  # the clusters the filter called: their answers become mutable
            words.clusters.update(c.cluster for c in res.host.http_calls.calls)
            words.grpc_clusters.update(c.cluster for c in res.host.grpc_calls.calls)
        new = reached_new(res.bitmaps or ())
        violations = list(res.violations)
        if new and replayed:
            violations += execute_scenario(path, sc, engine=opts.engine, invariants=replayed, coverage=True, reuse=True).violations
        for f in _group([v for v in violations if v.invariant not in found], sc, None, shrunk=False):
            found[f.invariant] = f
        if progress is not None:
            progress(executions, opts.examples, len(found), covered_count())
        return new

    seeds = list(entries)
    entries = []
    for sc in seeds:  # the seeds that reach something stay
        if run(sc):
            entries.append(sc)
    entries = entries or seeds[:1]
    stop_at = started + opts.time_budget_s if opts.time_budget_s is not None else None
    while executions < opts.examples and not (found and not opts.find_all):
        if stop_at is not None and time.perf_counter() >= stop_at:
            break
        parent = entries[-1 - min(len(entries) - 1, int(rng.expovariate(0.3)))]  # recent entries more often
        child = _mutate(parent, rng, words, entries)
        if run(child):
            entries.append(child)
            if folder is not None:
                (folder / f"entry-{opts.seed}-{executions:06d}.json").write_text(json.dumps(child, indent=1))

    order = {n: i for i, n in enumerate(report.invariants)}
    report.findings = sorted(found.values(), key=lambda f: order.get(f.invariant, len(order)))
    for f in report.findings:
        if opts.shrink:
            _minimize(path, f, engine=opts.engine, invariants=invs, base=base)
        else:
            f.shrunk = False
    _confirm(report, opts.engine)
    report.examples = executions
    report.elapsed_s = time.perf_counter() - started
    report.coverage = {"sites": _site_count(path, opts.engine), "covered": covered_count(), "corpus": len(entries)}
    return report


class _Words:
    """What mutations draw from: words, and what the filter was seen to use (clusters it called,
    host functions it imports that can fail)."""

    def __init__(self, names: list[str], values: list[str], query_names: list[str]) -> None:
        self.names = list(dict.fromkeys(names)) or ["x-a"]
        self.values = list(dict.fromkeys(values)) or ["1"]
        self.query = list(dict.fromkeys(query_names)) or ["q"]
        self.clusters: set[str] = set()
        self.grpc_clusters: set[str] = set()
        self.faults: list[str] = []
        self.ticks = False
        self.adversarial = True
        self.max_streams = 4
        # the words of the author's own code (Go's package main), drawn half of the time when known
        self.own_names: list[str] = []
        self.own_values: list[str] = []
        self.own_query: list[str] = []
        self.module_names: list[str] = []  # the module's and its host calls' names, without the generic ones
        # operands of the guest's byte comparisons, learned while fuzzing (comparison capture)
        self._learned: set[str] = set()
        self.learned_values: list[str] = []
        self.learned_names: list[str] = []
        self.learned_query: list[str] = []

    def learn(self, operand: bytes) -> None:
        """Keep an operand of a guest comparison as a word (printable, 1-32 bytes, once)."""
        if not 0 < len(operand) <= 32 or not all(0x20 < b < 0x7F for b in operand):
            return
        word = operand.decode()
        if word in self._learned:
            return
        self._learned.add(word)
        self.learned_values.append(word)
        if _NAME_LIKE.match(word.lower()):
            self.learned_names.append(word.lower())
        if word.isalnum() and len(word) <= 16:
            self.learned_query.append(word)

    def name(self, rng: random.Random) -> str:
        """A header name: a compared operand a quarter of the time, the author's own words half of
        the rest (when known), then the module's words as often as generic HTTP names."""
        if self.learned_names and rng.random() < 0.25:
            return rng.choice(self.learned_names)
        if self.own_names and rng.random() < 0.5:
            return rng.choice(self.own_names)
        return rng.choice(self.module_names if self.module_names and rng.random() < 0.5 else self.names)

    def value(self, rng: random.Random) -> str:
        if self.learned_values and rng.random() < 0.25:
            return rng.choice(self.learned_values)
        return rng.choice(self.own_values if self.own_values and rng.random() < 0.5 else self.values)

    def query_name(self, rng: random.Random) -> str:
        if self.learned_query and rng.random() < 0.25:
            return rng.choice(self.learned_query)
        return rng.choice(self.own_query if self.own_query and rng.random() < 0.5 else self.query)


_CALLOUT_STATUSES = [200, 200, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503, 504]
_GRPC_CODES = [0, 1, 2, 3, 4, 5, 7, 8, 13, 14, 16]
_ADVANCE_MS = [1, 10, 100, 1000, 5000, 30000, 60000]


def _callout_answer(rng: random.Random, w: _Words) -> Any:
    """A scenario ``http_calls`` response: a failure, a timeout, or a response built from words."""
    pick = rng.random()
    if pick < 0.15:
        return "fail"
    if pick < 0.25:
        return "timeout"
    headers = [[w.name(rng), w.value(rng)] for _ in range(rng.randint(0, 2))]
    body = "" if rng.random() < 0.3 else w.value(rng) * rng.choice([1, 1, 2, 64])
    return {"status": rng.choice(_CALLOUT_STATUSES), "headers": headers, "body": body}


def _grpc_answer(rng: random.Random, w: _Words) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"message": w.value(rng)}
    return {"status": rng.choice(_GRPC_CODES), "message": w.value(rng)}


def _with_stream(sc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(sc)
    if not out.get("streams"):
        out["streams"] = [copy.deepcopy(_DEFAULT_STREAM)]
    return out


def _pairs(headers: Any) -> list[list[str]]:
    if isinstance(headers, dict):
        return [[k, v] for k, v in headers.items()]
    return [list(p) for p in headers or []]


def _mutate(parent: dict[str, Any], rng: random.Random, w: _Words, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One to three structural edits of a copy of ``parent``."""
    sc = _with_stream(parent)
    sc.pop("description", None)
    for _ in range(rng.randint(1, 3)):
        stream = rng.choice(sc["streams"])
        side = "request" if rng.random() < 0.8 or "response" not in stream else "response"
        msg = stream.setdefault(side, {"headers": []})
        headers = _pairs(msg.get("headers"))
        extra = rng.random()
        if extra < 0.2:
            if w.clusters or w.grpc_clusters:  # answer a callout the filter made
                _mutate_callouts(sc, rng, w)
                continue
        elif extra < 0.25 and (w.ticks or w.clusters or w.grpc_clusters):  # virtual time passes: ticks run, callouts time out
            if rng.random() < 0.5:
                sc["advance_ms"] = rng.choice(_ADVANCE_MS)
            else:
                stream["advance_ms"] = rng.choice(_ADVANCE_MS)
            continue
        elif extra < 0.32 and w.faults:  # a host call fails (--faults)
            fn = rng.choice(w.faults)
            rule = {"function": fn, "status": int(rng.choice(FAULT_STATUSES[fn])), "nth": rng.randint(1, 4)}
            sc["faults"] = [*sc.get("faults", [])[:2], rule] if rng.random() < 0.5 else [rule]
            continue
        op = rng.randrange(12)
        if op == 0:  # add a header the filter may look for
            headers.append([w.name(rng), w.value(rng)])
        elif op == 1 and headers:  # change a value
            h = rng.choice([h for h in headers if not h[0].startswith(":")] or headers)
            h[1] = w.value(rng) if rng.random() < 0.7 else h[1] + w.value(rng)
        elif op == 2:  # a query parameter on the path
            for h in headers:
                if h[0] == ":path":
                    sep = "&" if "?" in h[1] else "?"
                    h[1] = f"{h[1]}{sep}{w.query_name(rng)}{rng.choice(['', '=', '=1', '=true', '=x'])}"
        elif op == 3:  # the method
            for h in headers:
                if h[0] == ":method":
                    h[1] = rng.choice(_METHODS)
        elif op == 4:  # a body, cut into frames
            body = w.value(rng) * rng.choice([1, 2, 16, 1024])
            if rng.random() < 0.5 and len(body) > 1:
                cut = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 3))))
                msg["chunks"] = [body[i:j] for i, j in zip([0, *cut], [*cut, len(body)], strict=True)]
                msg.pop("body", None)
            else:
                msg["body"] = body
                msg.pop("chunks", None)
        elif op == 5:  # trailers
            msg["trailers"] = [[w.name(rng), w.value(rng)]]
        elif op == 6 and len(headers) > 3:  # drop a header that is not required
            drop = rng.choice([i for i, h in enumerate(headers) if h[0] not in (":method", ":path", ":authority", ":status")] or [None])
            if drop is not None:
                del headers[drop]
        elif op == 7 and len(sc["streams"]) < w.max_streams:  # another stream
            sc["streams"].append(copy.deepcopy(rng.choice(sc["streams"])))
        elif op == 8 and len(sc["streams"]) > 1:
            sc["streams"].remove(stream)
            continue
        elif op == 9 and len(entries) > 1:  # splice a stream of another entry
            other = _with_stream(rng.choice(entries))
            sc["streams"][sc["streams"].index(stream)] = copy.deepcopy(rng.choice(other["streams"]))
            continue
        elif op == 10:  # a response status
            resp = stream.setdefault("response", {"headers": [[":status", "200"]]})
            rh = _pairs(resp.get("headers"))
            for h in rh:
                if h[0] == ":status":
                    h[1] = rng.choice(["200", "204", "301", "400", "403", "404", "500", "503"])
            resp["headers"] = rh
        elif w.adversarial:  # a name the filter uses, with a list-shaped value (generic HTTP list syntax)
            headers.append([w.name(rng), ",".join(w.value(rng) for _ in range(rng.randint(2, 4)))])
        msg["headers"] = headers
    return sc


def _mutate_callouts(sc: dict[str, Any], rng: random.Random, w: _Words) -> None:
    """Set the answer to the calls to one cluster the filter called (HTTP or gRPC)."""
    kinds = [k for k, have in (("http_calls", w.clusters), ("grpc_calls", w.grpc_clusters)) if have]
    kind = rng.choice(kinds)
    cluster = rng.choice(sorted(w.clusters if kind == "http_calls" else w.grpc_clusters))
    answer = _callout_answer(rng, w) if kind == "http_calls" else _grpc_answer(rng, w)
    others = [r for r in sc.get(kind, []) if r.get("cluster") != cluster]
    sc[kind] = [*others, {"cluster": cluster, "response": answer}]
