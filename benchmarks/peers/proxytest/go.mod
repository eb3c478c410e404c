module proxy-wasm-emulator/benchmarks/peers/proxytest

// 1.25: wazero v1.12.0 needs it (the SDK itself says 1.24).
go 1.25.0

// Same SDK pseudo-version as fixtures/go/go.mod.
require github.com/proxy-wasm/proxy-wasm-go-sdk v0.0.0-20260105142703-44c7d5847745

require (
	// Pinned above the SDK's own v1.7.2: wazero < v1.9.0 corrupts Go >= 1.24 guests when the host
	// is built with Go >= 1.24 on amd64 (shared/reference/performance-anchors.md).
	github.com/tetratelabs/wazero v1.12.0 // indirect
	golang.org/x/sys v0.44.0 // indirect
)
