"""What a fuzz run found: each :class:`Finding` with its minimal scenario (written as a file that
``proxy-wasm-emulator run`` replays), the :class:`FuzzReport`, and the replay that confirms a finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from abi.records import field, record

from .execution import Execution, execute_scenario
from .invariants import Invariant, resolve_invariants
from .values import FaultPlan

__all__ = ["Finding", "FuzzReport", "format_json"]


@record
class Finding:
    """One distinct broken invariant, with the minimal example that breaks it."""

    invariant: str
    violations: list[str]
    scenario: dict[str, Any]
    """A scenario file (JSON-ready) that ``proxy-wasm-emulator run`` replays."""
    faults: list[dict[str, Any]] | None = None
    """Host faults the example needed (:meth:`write` puts them in the file, so ``run`` replays them)."""
    reproduces: bool | None = None
    """Whether replaying :attr:`scenario` (with :attr:`faults`) shows the violation again."""
    trace_tail: str = ""
    """The last host calls of the replay."""
    shrunk: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "invariant": self.invariant,
            "violations": list(self.violations),
            "scenario": self.scenario,
            "faults": self.faults,
            "reproduces": self.reproduces,
            "shrunk": self.shrunk,
        }

    def replay_scenario(self) -> dict[str, Any]:
        """:attr:`scenario` with the host :attr:`faults` it needs: what ``run`` replays."""
        return {**self.scenario, "faults": self.faults} if self.faults else self.scenario

    def write(self, path: str | Path) -> Path:
        """Write :meth:`replay_scenario` as JSON (``.yaml``/``.yml``: YAML)."""
        p = Path(path)
        doc = self.replay_scenario()
        if p.suffix in (".yaml", ".yml"):
            import yaml

            p.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        else:
            p.write_text(format_json(doc) + "\n")
        return p

    def describe(self) -> str:
        """A few lines: the violation and the minimal traffic."""
        lines = [f"{self.invariant}: {self.violations[0]}" if self.violations else self.invariant]
        lines += [f"  also: {v}" for v in self.violations[1:3]]
        for i, s in enumerate(self.scenario.get("streams", [])):
            req = s.get("request", {})
            heads = ", ".join(f"{k}: {_short(v)}" for k, v in _pairs(req.get("headers")))
            chunks = req.get("chunks")
            body = f"; body frames {[_short(c, 12) for c in chunks]}" if chunks else ""
            tr = "; trailers" if req.get("trailers") is not None else ""
            lines.append(f"  stream {i + 1} request: {heads}{body}{tr}")
            if s.get("response") is not None:
                resp = s["response"]
                rheads = ", ".join(f"{k}: {_short(v)}" for k, v in _pairs(resp.get("headers")))
                lines.append(f"  stream {i + 1} response: {rheads}" + (f"; body frames {len(resp['chunks'])}" if resp.get("chunks") else ""))
        if self.faults:
            lines.append("  host faults: " + "; ".join(f"{f['function']} -> {f['status_name']}" for f in self.faults))
        return "\n".join(lines)


def format_json(value: Any, indent: int = 0, width: int = 110) -> str:
    """JSON with small containers (header pairs, ``{"base64": ...}``) kept on one line."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or (len(flat) + indent <= width and not _nested(value)):
        return flat
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {format_json(v, indent + 2, width).lstrip()}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}" if items else "{}"
    items = [f"{inner}{format_json(v, indent + 2, width).lstrip()}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]" if items else "[]"


def _nested(value: Any) -> bool:
    """Whether a container holds containers other than a header pair or a base64 body."""
    children = value.values() if isinstance(value, dict) else value
    for c in children:
        if isinstance(c, dict) and set(c) != {"base64"}:
            return True
        if isinstance(c, list) and not (len(c) == 2 and all(isinstance(x, str) or (isinstance(x, dict) and set(x) == {"base64"}) for x in c)):
            return True
    return False


def _pairs(headers: Any) -> list[tuple[Any, Any]]:
    """Scenario headers (a mapping or ``[[name, value], ...]``) as pairs."""
    if isinstance(headers, dict):
        return list(headers.items())
    return [tuple(p) for p in headers or [] if isinstance(p, list | tuple) and len(p) == 2]


def _short(v: Any, n: int = 40) -> str:
    if isinstance(v, dict):
        return f"<{len(v.get('base64', ''))} base64 chars>"
    s = repr(v) if any(ord(c) < 32 or ord(c) == 127 for c in str(v)) else str(v)
    return s if len(s) <= n else s[:n] + f"...({len(s)} chars)"


@record
class FuzzReport:
    """What :func:`fuzz_filter` found."""

    filter: str
    seed: int
    examples: int
    """Examples run (generation and shrinking)."""
    findings: list[Finding]
    invariants: list[str]
    elapsed_s: float = 0.0
    engine: str = "wasmtime"
    module: Any = field(default=None, repr=False)
    """The module fuzzed (a path or the bytes), for :meth:`replay`."""
    checked: list[Invariant] = field(default_factory=list, repr=False)
    """The invariants checked (user callables and the leak check's settings included), for :meth:`replay`."""
    coverage: dict[str, int] | None = None
    """With coverage on: ``{"sites": guest basic-block sites, "covered": entered by some example}``."""

    @property
    def found(self) -> bool:
        """Whether any invariant was broken."""
        return bool(self.findings)

    @property
    def scenario(self) -> dict[str, Any] | None:
        """The first finding's minimal scenario."""
        return self.findings[0].scenario if self.findings else None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "filter": self.filter,
            "engine": self.engine,
            "seed": self.seed,
            "examples": self.examples,
            "elapsed_s": round(self.elapsed_s, 3),
            "invariants": self.invariants,
            "found": self.found,
            "findings": [f.to_json() for f in self.findings],
            **({"coverage": self.coverage} if self.coverage is not None else {}),
        }

    def summary(self) -> str:
        """A readable summary."""
        head = f"{self.filter}: {self.examples} examples in {self.elapsed_s:.1f} s (seed {self.seed}, engine {self.engine})"
        if self.coverage is not None and self.coverage["sites"]:
            c = self.coverage
            head += f"; guest coverage {c['covered']} of {c['sites']} basic blocks ({100 * c['covered'] / c['sites']:.1f}%)"
        if not self.findings:
            return f"{head}\nno invariant broken ({', '.join(self.invariants)})"
        out = [head, f"found {len(self.findings)} broken invariant(s):"]
        for i, f in enumerate(self.findings):
            body = f.describe().replace("\n", "\n   ")
            out.append(f"{i + 1}. {body}")
        return "\n".join(out)

    def replay(self, finding: Finding | int = 0, *, engine: str | None = None, trace: bool = True) -> Execution:
        """Run a finding's scenario again (with its faults) and check the same invariants."""
        f = self.findings[finding] if isinstance(finding, int) else finding
        plan = FaultPlan.from_json(f.faults) if f.faults else None
        return execute_scenario(
            self.module if self.module is not None else self.filter,
            f.scenario,
            engine=engine or self.engine,
            invariants=self.checked or resolve_invariants(self.invariants),
            faults=plan,
            trace=trace,
        )


def _confirm(report: FuzzReport, engine: str) -> None:
    """Replay each finding from its scenario alone (with its faults) and keep the trace tail."""
    for f in report.findings:
        try:
            res = report.replay(f, engine=engine, trace=True)
        except Exception:  # pragma: no cover - the replay itself failed
            f.reproduces = False
            continue
        f.reproduces = any(v.invariant == f.invariant for v in res.violations)
        if res.host is not None and res.host.trace is not None:
            f.trace_tail = res.host.trace.tail(12)
