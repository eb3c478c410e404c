"""The profile-guided build's training run: requests through the compiled modules just built.

    python -m emulator.speedups.train

:mod:`emulator.speedups.build` runs it on the instrumented modules (``PROXY_WASM_EMULATOR_COMPILED_DIR``
points at them), and GCC then lays the modules out for the paths it took. It runs what tests do:
whole exchanges, with bodies and with headers alone, on the SDKs' feature filters, with the trace on, off, and with costs
metered. It does not run the filters ``make bench-peers`` times (the headers fixtures of Go and
Rust), so the peer figures are not measured on the workload the build was trained on.

Exits 0 when it ran on the compiled modules, 3 when they did not load (nothing to profile), 4 when
no filter to train on is present (an installation without the repository's fixtures).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

#: The filters trained on (paths under ``fixtures/``): every SDK's, none that the peer benchmark times.
FILTERS = (
    "go_features/features_go.wasm",
    "rust_features/features_rust.wasm",
    "c/headers_c.wasm",
    "c/headers_cpp.wasm",
    "assemblyscript/headers_assemblyscript.wasm",
)
REQUESTS = 600  # per filter and host mode (half with bodies): enough for every path of a request to be counted many times
#: The feature filters' roles trained on (fixtures/FEATURES.md): a feature filter given no root_id is
#: a pass-through that makes one host call, so each request goes to one of these plugins in turn.
ROLES = {"features_go.wasm": ("metrics", "counter"), "features_rust.wasm": ("metrics", "counter")}

_REQUEST = [
    (":method", "POST"),
    (":path", "/api/v1/items?x=1"),
    (":authority", "example.com"),
    (":scheme", "https"),
    ("content-type", "application/json"),
    ("x-user", "alice"),
]
_GET = [(":method", "GET"), (":path", "/api/v1/items/7"), (":authority", "example.com"), (":scheme", "https"), ("accept", "*/*")]
_RESPONSE = [(":status", "201"), ("content-type", "application/json"), ("server", "upstream")]


def exchange(stream: Any, *, with_bodies: bool) -> None:
    """One exchange as tests send them: headers then bodies, or headers alone, ending each side."""
    if with_bodies:
        stream.send_request_headers(_REQUEST)
        stream.send_request_body(b'{"item": 1}', end_of_stream=True)
    else:
        stream.send_request_headers(_GET, end_of_stream=True)
    if stream.completed:
        return
    if with_bodies:
        stream.send_response_headers(_RESPONSE)
        stream.send_response_body(b'{"ok": true}', end_of_stream=True)
    else:
        stream.send_response_headers(_RESPONSE, end_of_stream=True)


def trained_plugins(host: Any, wasm: Path) -> list[Any]:
    """The plugins of ``wasm`` that the training sends requests to, in turn: one per role of a
    feature filter (:data:`ROLES`), else the filter's one plugin."""
    roles = ROLES.get(wasm.name)
    if not roles:
        return [host.load(wasm)]
    vm = host.create_vm(wasm)
    return [host.add_plugin(vm, root_id=role) for role in roles]


def main() -> int:
    """Train; the exit status says whether the profile is worth using (see the module docstring)."""
    from emulator import Host, speedups

    root = Path(__file__).resolve().parents[2] / "fixtures"
    filters = [root / f for f in FILTERS if (root / f).is_file()]
    if not filters:
        print("train: no filters to train on", file=sys.stderr)
        return 4
    if not speedups.is_compiled("emulator.http.stream"):
        print(f"train: the compiled modules did not load: {speedups.describe()}", file=sys.stderr)
        return 3
    warnings.simplefilter("ignore")  # input warnings and lints: the training only needs the paths taken
    for wasm in filters:
        for options in ({"trace": False}, {}, {"trace": False, "costs": True}):
            host = Host(**options)
            plugins = trained_plugins(host, wasm)
            for i in range(REQUESTS):
                exchange(plugins[i // 2 % len(plugins)].http_stream(), with_bodies=i % 2 == 0)
                if len(host.logs) > 5000:
                    host.logs.clear()
    print(f"train: {len(filters)} filters, {REQUESTS} exchanges each (half with bodies) in three host modes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
