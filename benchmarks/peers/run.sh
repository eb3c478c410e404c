#!/usr/bin/env bash
# Peer comparison: Go SDK proxytest in wasm mode (wazero) vs this emulator vs the engine floor,
# on the same Go SDK fixture and request sequence, interleaved, with same-round ratios.
#
#   bash benchmarks/peers/run.sh
#
# Environment:
#   ROUNDS=5        rounds; each round runs each implementation once, in a rotating order
#   REQUESTS=10000  timed requests per implementation per round
#   WARMUP=2000     untimed requests before the timed ones (each round is a fresh process)
#   WASM=...        the filter (default fixtures/go/headers_go.wasm; proxytest's wasm mode runs
#                   Go SDK modules only)
#   PYTHON=...      the interpreter (default .venv/bin/python of the repo, else python3)
#   GO=go           the Go command used to build the proxytest driver
#
# The Go driver is built once into benchmarks/peers/.build/ (rebuilt when its sources change).
# Raw results go to benchmarks/peers/.build/results.jsonl; the markdown table goes to stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/.build"
ROUNDS="${ROUNDS:-5}"
REQUESTS="${REQUESTS:-10000}"
WARMUP="${WARMUP:-2000}"
WASM="${WASM:-$ROOT/fixtures/go/headers_go.wasm}"
RUST_WASM="${RUST_WASM:-$ROOT/fixtures/rust/headers_rust.wasm}"
NULL_WASM="$ROOT/fixtures/wat/null_filter.wasm"
GO="${GO:-go}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

log() { printf 'peers: %s\n' "$*" >&2; }

mkdir -p "$BUILD"
BIN="$BUILD/proxytest-bench"
SRC=("$HERE/proxytest/main.go" "$HERE/proxytest/go.mod" "$HERE/proxytest/go.sum")
need_build=0
[[ -x "$BIN" ]] || need_build=1
for f in "${SRC[@]}"; do
    [[ "$f" -nt "$BIN" ]] && need_build=1
done
if (( need_build )); then
    log "building the proxytest driver"
    (cd "$HERE/proxytest" && GOFLAGS="-mod=readonly -buildvcs=false" "$GO" build -trimpath -o "$BIN.tmp" .)
    mv -f "$BIN.tmp" "$BIN"
fi

# As installed: pip writes every module's bytecode at install time. A checkout's may be stale or
# absent (edited sources, PYTHONDONTWRITEBYTECODE), and then each new process compiles those
# modules again, which the "new process" figure would count as the emulator's own time.
"$PYTHON" -m compileall -q "$ROOT/emulator" "$ROOT/abi" >/dev/null

versions="$(
    cd "$HERE/proxytest"
    printf '%s' "$("$GO" env GOVERSION)"
    "$GO" list -m -f ' {{.Path}} {{.Version}}' github.com/proxy-wasm/proxy-wasm-go-sdk github.com/tetratelabs/wazero |
        sed 's#github.com/[^/ ]*/##' | tr '\n' ',' | sed 's/,$//'
)"
versions="$versions, $("$PYTHON" -c "import platform; from importlib.metadata import version; import sys; sys.path.insert(0, '$ROOT'); from emulator import speedups; print('Python', platform.python_version() + ', wasmtime-py', version('wasmtime') + ', speed mode', speedups.describe())" 2>/dev/null || echo "Python ?")"

RESULTS="$BUILD/results.jsonl"
: >"$RESULTS"
printf '{"meta": {"requests": "%s", "warmup": "%s", "loadavg": "%s", "versions": "%s"}}\n' \
    "$REQUESTS" "$WARMUP" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" "$versions" >>"$RESULTS"

run_impl() {  # run_impl NAME ROUND -> appends one JSON line (with "round": ROUND) to $RESULTS
    local out
    case "$1" in
        proxytest) out="$("$BIN" -wasm "$WASM" -warmup "$WARMUP" -requests "$REQUESTS" -rounds 1)" ;;
        emulator) out="$("$PYTHON" "$HERE/emulator_bench.py" --wasm "$WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        emulator-pure) out="$(PROXY_WASM_EMULATOR_PURE=1 "$PYTHON" "$HERE/emulator_bench.py" --impl emulator-pure --wasm "$WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        emulator-default) out="$("$PYTHON" "$HERE/emulator_bench.py" --mode default --wasm "$WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        emulator-costs) out="$("$PYTHON" "$HERE/emulator_bench.py" --mode costs --wasm "$WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        floor) out="$("$PYTHON" "$HERE/floor_bench.py" --wasm "$WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        floor4) out="$("$PYTHON" "$HERE/floor_bench.py" --callbacks 4 --wasm "$WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        emulator-rust) out="$("$PYTHON" "$HERE/emulator_bench.py" --impl emulator-rust --wasm "$RUST_WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        floor-rust) out="$("$PYTHON" "$HERE/floor_bench.py" --impl engine-floor-rust --wasm "$RUST_WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        emulator-null) out="$("$PYTHON" "$HERE/emulator_bench.py" --impl emulator-null --null-filter --wasm "$NULL_WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
        floor-null) out="$("$PYTHON" "$HERE/floor_bench.py" --impl engine-floor-null --wasm "$NULL_WASM" --warmup "$WARMUP" --requests "$REQUESTS" --rounds 1)" ;;
    esac
    # The programs number their own rounds from 0; record run.sh's round instead.
    printf '%s\n' "$out" | sed "s/\"round\": *0/\"round\": $2/" >>"$RESULTS"
    log "round $2 $(printf '%s' "$out" | sed -n 's/.*"impl": *"\([^"]*\)".*"per_request_us": *\([0-9.]*\).*/\1 \2 us/p')"
}

impls=(proxytest emulator emulator-pure emulator-default emulator-costs floor floor4 emulator-rust floor-rust emulator-null floor-null)
n=${#impls[@]}
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < n; k++)); do
        run_impl "${impls[$(((r + k) % n))]}" "$r"
    done
done

"$PYTHON" "$HERE/summarize.py" "$RESULTS"
