"""The engine floor: the peer benchmark's guest calls and host calls with no-op host semantics.

    python benchmarks/peers/floor_bench.py [--wasm FILE] [--warmup N] [--requests M] [--rounds R]

The Go SDK fixture runs through the emulator's engine adapter (``get_engine("wasmtime")``), with
every import linked to a trivial Python function, so what is left is the cost of the guest code,
the engine and the binding. Host semantics are the least the guest needs to take the same path as
under the emulator:

- ``proxy_get_header_map_value`` looks the key up in the request's five headers: a hit copies
  the value back through ``proxy_on_memory_allocate`` (as every host does), a miss answers
  NotFound (the fixture asks for ``x-deny``, ``x-read-property``, ``x-body-mode``, ``x-pause``);
- ``proxy_get_buffer_bytes`` (the VM and plugin configuration) answers NotFound;
- WASI: ``clock_time_get`` writes a non-zero u64, ``fd_write`` reports every byte written,
  ``args_sizes_get``/``environ_sizes_get`` report none, ``fd_fdstat_get``/``fd_prestat_get``
  answer EBADF (8), the rest 0;
- every other import returns 0 (Ok) and does nothing.

The calls: ``_initialize``, ``proxy_on_context_create(1, 0)``, ``proxy_on_vm_start(1, 0)``,
``proxy_on_configure(1, 0)``, then per request ``proxy_on_context_create(n, 1)``,
``proxy_on_request_headers(n, 5, 1)``, ``proxy_on_response_headers(n, 2, 1)``,
``proxy_on_log(n)``, ``proxy_on_done(n)``, ``proxy_on_delete(n)``.

Prints one JSON line per round: ``{"impl": "engine-floor", "per_request_us": ...}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from timing import parser, time_rounds  # noqa: E402

from emulator.engines import HostFunction, get_engine  # noqa: E402
from emulator.vm.cache import ModuleCache  # noqa: E402
from emulator.vm.module import parse_module  # noqa: E402

REQUEST_HEADERS = {
    b":method": b"GET",
    b":path": b"/items?page=2",
    b":authority": b"shop.example",
    b":scheme": b"http",
    b"user-agent": b"bench",
}
OK, NOT_FOUND = 0, 1
WASI_EBADF = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--no-cache", action="store_true", help="compile without the on-disk module cache")
    p.add_argument("--callbacks", type=int, choices=(4, 6), default=6, help="6: as the emulator (with on_log, on_done, on_delete); 4: as proxytest")
    p.add_argument("--impl", help="the name printed for this implementation (default: engine-floor, engine-floor-4cb)")
    return p.parse_args(argv)


class Floor:
    """One instance of the module with no-op host functions."""

    def __init__(self, wasm: bytes, *, cache: bool = True) -> None:
        engine = get_engine("wasmtime")
        module = ModuleCache().compile(engine, wasm) if cache else engine.compile(wasm)
        self.counter = 0
        imports: dict[tuple[str, str], HostFunction] = {}
        for imp in parse_module(wasm).imports:
            if imp.kind != "func" or imp.type is None:
                continue
            params, results = imp.type
            fn = self._special(imp.module, imp.name) or self._noop(bool(results))
            imports[(imp.module, imp.name)] = HostFunction(fn, params, results)
        self.instance = engine.link(module, imports).instantiate()
        self.memory = self.instance.memory
        call = self.instance.export
        self.malloc = call("proxy_on_memory_allocate") or call("malloc")
        self.on_context_create = call("proxy_on_context_create")
        self.on_request_headers = call("proxy_on_request_headers")
        self.on_response_headers = call("proxy_on_response_headers")
        self.on_log = call("proxy_on_log")
        self.on_done = call("proxy_on_done")
        self.on_delete = call("proxy_on_delete")
        initialize = call("_initialize")  # the null filter (a WAT module) has none
        if initialize is not None:
            initialize()
        self.on_context_create(1, 0)
        if not call("proxy_on_vm_start")(1, 0):
            raise SystemExit("floor_bench: proxy_on_vm_start failed")
        if not call("proxy_on_configure")(1, 0):
            raise SystemExit("floor_bench: proxy_on_configure failed")
        self.next_id = 2

    @staticmethod
    def _noop(returns: bool):
        if returns:
            return lambda *args: 0
        return lambda *args: None

    def _special(self, module: str, name: str):
        return getattr(self, f"_{module}__{name}", None) if module in ("env", "wasi_snapshot_preview1") else None

    # -- env -------------------------------------------------------------------------------------
    def _env__proxy_get_header_map_value(self, map_type, key_ptr, key_len, ret_ptr, ret_len):
        value = REQUEST_HEADERS.get(self.memory.read(key_ptr, key_len)) if map_type == 0 else None
        if value is None:
            return NOT_FOUND
        ptr = self.malloc(len(value))
        self.memory.write(ptr, value)
        self.memory.put_u32(ret_ptr, ptr)
        self.memory.put_u32(ret_len, len(value))
        return OK

    def _env__proxy_get_buffer_bytes(self, buffer_type, start, size, ret_ptr, ret_len):
        return NOT_FOUND

    # -- WASI ------------------------------------------------------------------------------------
    def _wasi_snapshot_preview1__clock_time_get(self, clock_id, precision, out_ptr):
        self.counter += 1000
        self.memory.put_u64(out_ptr, 1_700_000_000_000_000_000 + self.counter)
        return 0

    def _wasi_snapshot_preview1__fd_write(self, fd, iovs, iovs_len, nwritten_ptr):
        total = sum(self.memory.u32(iovs + 8 * i + 4) for i in range(iovs_len))
        self.memory.put_u32(nwritten_ptr, total)
        return 0

    def _wasi_snapshot_preview1__args_sizes_get(self, argc_ptr, size_ptr):
        self.memory.put_u32(argc_ptr, 0)
        self.memory.put_u32(size_ptr, 0)
        return 0

    _wasi_snapshot_preview1__environ_sizes_get = _wasi_snapshot_preview1__args_sizes_get

    def _wasi_snapshot_preview1__fd_fdstat_get(self, fd, out_ptr):
        return WASI_EBADF

    def _wasi_snapshot_preview1__fd_prestat_get(self, fd, out_ptr):
        return WASI_EBADF

    def _wasi_snapshot_preview1__proc_exit(self, code):
        raise SystemExit(f"floor_bench: the guest called proc_exit({code})")

    # -- one request -----------------------------------------------------------------------------
    def request(self) -> None:
        n = self.next_id
        self.next_id = n + 1
        self.on_context_create(n, 1)
        if self.on_request_headers(n, 5, 1) != 0:
            raise SystemExit("floor_bench: proxy_on_request_headers did not continue")
        if self.on_response_headers(n, 2, 1) != 0:
            raise SystemExit("floor_bench: proxy_on_response_headers did not continue")
        self.on_log(n)
        self.on_done(n)
        self.on_delete(n)

    def request4(self) -> None:
        """The four callbacks proxytest makes per request (it never calls on_done or on_delete)."""
        n = self.next_id
        self.next_id = n + 1
        self.on_context_create(n, 1)
        if self.on_request_headers(n, 5, 1) != 0:
            raise SystemExit("floor_bench: proxy_on_request_headers did not continue")
        if self.on_response_headers(n, 2, 1) != 0:
            raise SystemExit("floor_bench: proxy_on_response_headers did not continue")
        self.on_log(n)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wasm = Path(args.wasm).read_bytes()
    t0 = time.perf_counter()
    floor = Floor(wasm, cache=not args.no_cache)
    load_ms = (time.perf_counter() - t0) * 1e3
    request = floor.request if args.callbacks == 6 else floor.request4
    time_rounds(args.impl or ("engine-floor" if args.callbacks == 6 else "engine-floor-4cb"), request, args, load_ms)


if __name__ == "__main__":
    main()
