"""The layer rules, checked on the import graph of the library (every runtime import, function-local
ones included; ``if TYPE_CHECKING:`` imports are types only and do not count).

    engines/      the only code that imports wasmtime or wasmer
    vm/           program, module parser and rewriter, cache, instance: no Envoy semantics
    glue/         reads and writes guest memory; talks to contexts through their interfaces
    semantics     host-call receivers (contexts, plugin, http/, tcp, callouts, ...): never the VM or the glue
"""

from __future__ import annotations

import ast
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import emulator
from emulator import speedups
from tests.conftest import ROOT

ENGINE_PACKAGES = ("wasmtime", "wasmer", "wasmer_compiler_cranelift")
SEMANTICS = (
    "emulator.attributes",
    "emulator.buffer",
    "emulator.callouts",
    "emulator.clock",
    "emulator.contexts",
    "emulator.foreign",
    "emulator.http",
    "emulator.logs",
    "emulator.metrics",
    "emulator.plugin",
    "emulator.properties",
    "emulator.shared_state",
    "emulator.stream_info",
    "emulator.tcp",
)
# what the glue may use besides itself: the interfaces, the records they take, the shared vocabulary
GLUE_MAY_IMPORT = ("abi", "emulator.contexts", "emulator.http.types", "emulator.errors", "emulator.engines")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports when it runs."""
    name = module_name(path)
    tree = ast.parse(path.read_text())
    types_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in types_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                out.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return out


MODULES = {module_name(p): p for top in ("emulator", "abi") for p in (ROOT / top).rglob("*.py")}
GRAPH = {name: runtime_imports(path) for name, path in MODULES.items()}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_graph_is_not_empty():
    assert len(GRAPH) > 50
    assert "emulator.glue.base" in GRAPH["emulator.glue.maps"]
    assert "emulator.vm.instance" in GRAPH["emulator.host"]


def test_only_the_engines_import_an_engine():
    offenders = {m: sorted(t for t in ts if within(t, ENGINE_PACKAGES)) for m, ts in GRAPH.items() if not within(m, ("emulator.engines",))}
    assert {m: ts for m, ts in offenders.items() if ts} == {}


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if within(m, SEMANTICS)))
def test_semantics_never_import_the_vm_or_the_glue(module):
    assert sorted(t for t in GRAPH[module] if within(t, ("emulator.vm", "emulator.glue", "emulator.engines.wasmtime_engine"))) == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if within(m, ("emulator.glue",))))
def test_the_glue_imports_only_interfaces(module):
    ours = [t for t in GRAPH[module] if within(t, ("emulator", "abi"))]
    assert sorted(t for t in ours if not within(t, ("emulator.glue", *GLUE_MAY_IMPORT))) == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if within(m, ("emulator.vm",))))
def test_the_vm_knows_no_envoy(module):
    ours = [t for t in GRAPH[module] if within(t, ("emulator", "abi"))]
    allowed = ("abi", "emulator.vm", "emulator.engines", "emulator.glue", "emulator.errors", "emulator.costs")
    assert sorted(t for t in ours if not within(t, allowed)) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    # package facades re-export their modules: an edge from a package to its own modules is not a cycle
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in GRAPH.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_importing_emulator_loads_no_fuzzing_hardening_or_cli():
    code = "import sys, emulator; print('\\n'.join(sorted(m for m in sys.modules if m.startswith('emulator.'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    assert "emulator.host" in loaded
    assert [m for m in loaded if within(m, ("emulator.fuzz", "emulator.hardening", "emulator.cli"))] == []
    assert (
        "hypothesis"
        not in subprocess.run([sys.executable, "-c", "import sys, emulator; print(*sys.modules)"], capture_output=True, text=True, check=True).stdout.split()
    )


PUBLIC_API = [
    "DEFAULT_EPOCH_NS",
    "FailurePolicy",
    "FilterDataStatus",
    "FilterHeadersStatus",
    "FilterStatus",
    "FilterTrailersStatus",
    "LogLevel",
    "Status",
    "CallbackError",
    "CallbackRecord",
    "ChainedStream",
    "FilterChain",
    "ConnectionInfo",
    "HeaderMap",
    "HttpMessage",
    "HttpStream",
    "LocalResponse",
    "Request",
    "Response",
    "StreamStateError",
    "ConfigError",
    "EmulatorError",
    "EngineConfig",
    "Host",
    "HostCallNotImplemented",
    "InputWarning",
    "LogRecord",
    "ModuleCache",
    "ModuleLoadError",
    "Node",
    "Plugin",
    "PluginStartError",
    "ProcExit",
    "RestrictedHostCall",
    "UnknownImportsError",
    "VirtualClock",
    "Vm",
    "VmFailedError",
    "available_engines",
]


def test_the_public_api_is_exactly_the_documented_one():
    # a name leaves or joins `from emulator import ...` only on purpose: change this list with it
    assert sorted(emulator.__all__) == sorted(PUBLIC_API)
    for name in PUBLIC_API:
        assert getattr(emulator, name) is not None, name


def test_wasmtime_private_names_are_present_and_used_in_one_module():
    from emulator.engines.wasmtime_engine import PRIVATE_API, missing_private_api

    missing = missing_private_api()
    assert missing == [], f"this wasmtime-py lacks private names the fast path uses: {missing}; update emulator/engines/wasmtime_engine.py or pin wasmtime"
    markers = ("wasmtime._", "from wasmtime import _", "_from_ptr", "wrap_extern")
    users = sorted(m for m, path in MODULES.items() if any(k in path.read_text() for k in markers))
    assert users == ["emulator.engines.wasmtime_engine"]
    assert len(PRIVATE_API) >= 5


def layer_of(filename: str) -> str:
    if filename == "<proxy-wasm-emulator adapter rec>":
        return "trace"  # the trace's one-frame recorder of a host call (emulator.trace.RECORDERS)
    if filename.startswith("<proxy-wasm-emulator adapter"):
        return "engines"  # the per-arity callers and host trampolines the engine adapter generates
    rel = Path(filename).resolve().relative_to(ROOT).with_suffix("") if filename.startswith(str(ROOT)) else None
    name = ".".join(rel.parts) if rel is not None else filename
    for layer, prefixes in (
        ("engines", ("emulator.engines",)),
        ("vm", ("emulator.vm",)),
        ("glue", ("emulator.glue",)),
        ("trace", ("emulator.observer", "emulator.trace", "emulator.expectations")),
        ("semantics", SEMANTICS),
    ):
        if within(name, prefixes):
            return layer
    return "caller"


@pytest.mark.skipif(
    speedups.is_compiled("emulator.http.stream"),
    reason="compiled modules make no Python frames to walk; the pure-mode run of the suite (make test-pure) checks the layers",
)
def test_a_header_lookup_crosses_each_layer_once(monkeypatch):
    from emulator import Host
    from emulator.contexts import ContextBase
    from tests.conftest import FIXTURES

    stacks = []
    receivers = []
    original = ContextBase.get_header_map_value

    def spy(self, *args):
        receivers.append(self)
        stacks.append([layer_of(f.filename) for f in traceback.extract_stack()[:-1]])
        return original(self, *args)

    monkeypatch.setattr(ContextBase, "get_header_map_value", spy)
    plugin = Host().load(FIXTURES / "rust/headers_rust.wasm")
    plugin.http_stream().send_request_headers({":method": "GET", ":path": "/", ":authority": "a"}, end_of_stream=True)
    walk = [layer for i, layer in enumerate(stacks[0]) if i == 0 or stacks[0][i - 1] != layer]
    # HttpStream.send_request_headers -> Vm.call -> the engine -> (guest) -> the host trampoline ->
    # the trace -> the glue's proxy_get_header_map_value -> (this spy, standing in for) the stream's
    # get_header_map_value, a semantic receiver
    assert walk == ["caller", "semantics", "vm", "engines", "trace", "glue"]
    assert receivers and all(type(r).__module__ == "emulator.http.stream" for r in receivers)
