// Command proxytest-bench times the Go SDK's proxytest host emulator in wasm mode (wazero) on a
// compiled proxy-wasm filter, with the same request sequence as benchmarks/peers/emulator_bench.py.
//
// Per request: create an HTTP context, request headers (5 headers, end of stream), response headers
// (2 headers, end of stream), complete the stream. proxytest's log output is discarded.
//
// It prints one JSON line per round: {"impl": "proxytest-wazero", "per_request_us": ...}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

var (
	requestHeaders = [][2]string{
		{":method", "GET"},
		{":path", "/items?page=2"},
		{":authority", "shop.example"},
		{":scheme", "http"},
		{"user-agent", "bench"},
	}
	responseHeaders = [][2]string{
		{":status", "200"},
		{"content-type", "text/plain"},
	}
)

type result struct {
	Impl         string  `json:"impl"`
	PerRequestUs float64 `json:"per_request_us"`
	Round        int     `json:"round"`
	Requests     int     `json:"requests"`
	Warmup       int     `json:"warmup"`
	LoadMs       float64 `json:"load_ms,omitempty"`
}

func header(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// request runs one request through host and returns its HTTP context id.
func request(host proxytest.HostEmulator) uint32 {
	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, requestHeaders, true); a != types.ActionContinue {
		log.Fatalf("on_request_headers returned %v", a)
	}
	if a := host.CallOnResponseHeaders(id, responseHeaders, true); a != types.ActionContinue {
		log.Fatalf("on_response_headers returned %v", a)
	}
	host.CompleteHttpContext(id)
	return id
}

func main() {
	wasmPath := flag.String("wasm", "", "compiled proxy-wasm filter (a Go SDK module)")
	warmup := flag.Int("warmup", 1000, "untimed requests before each round")
	requests := flag.Int("requests", 5000, "timed requests per round")
	rounds := flag.Int("rounds", 1, "rounds")
	keepLog := flag.Bool("log", false, "keep proxytest's log output (default: discarded)")
	flag.Parse()
	if *wasmPath == "" {
		fmt.Fprintln(os.Stderr, "usage: proxytest-bench -wasm FILTER.wasm [-warmup N] [-requests M] [-rounds R]")
		os.Exit(2)
	}
	if !*keepLog {
		log.SetOutput(io.Discard)
	}
	fail := log.New(os.Stderr, "proxytest-bench: ", 0)

	wasm, err := os.ReadFile(*wasmPath)
	if err != nil {
		fail.Fatal(err)
	}
	t0 := time.Now()
	vm, err := proxytest.NewWasmVMContext(wasm)
	if err != nil {
		fail.Fatalf("NewWasmVMContext: %v", err)
	}
	defer vm.Close()
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm))
	defer reset()
	if !host.StartVM() {
		fail.Fatal("on_vm_start failed")
	}
	if !host.StartPlugin() {
		fail.Fatal("on_configure failed")
	}
	loadMs := float64(time.Since(t0).Microseconds()) / 1000

	// Check once that the filter ran: it adds x-fixture to the request headers.
	id := request(host)
	if v, ok := header(host.GetCurrentRequestHeaders(id), "x-fixture"); !ok || v != "go" {
		fail.Fatalf("the filter did not add x-fixture: go (got %q)", v)
	}
	if v, ok := header(host.GetCurrentResponseHeaders(id), "x-fixture-response"); !ok || v != "go" {
		fail.Fatalf("the filter did not set x-fixture-response: go (got %q)", v)
	}

	enc := json.NewEncoder(os.Stdout)
	for r := 0; r < *rounds; r++ {
		for i := 0; i < *warmup; i++ {
			request(host)
		}
		runtime.GC()
		start := time.Now()
		for i := 0; i < *requests; i++ {
			request(host)
		}
		elapsed := time.Since(start)
		res := result{
			Impl:         "proxytest-wazero",
			PerRequestUs: float64(elapsed.Nanoseconds()) / 1000 / float64(*requests),
			Round:        r,
			Requests:     *requests,
			Warmup:       *warmup,
		}
		if r == 0 {
			res.LoadMs = loadMs
		}
		if err := enc.Encode(res); err != nil {
			fail.Fatal(err)
		}
	}
}
