# Quickstart: `make demo` runs the main job, `make test` runs the whole suite.
# Both create the virtual environment they need (.venv, or .venv310 for wasmer).
PYTHON ?= python3
VENV ?= .venv
PY310 ?= $(shell pyenv prefix 3.10.13 2>/dev/null)/bin/python
DEMO_FILTER ?= fixtures/go/headers_go.wasm

.PHONY: demo test test-pure test-wasmer speedups docs lint format bench bench-peers bench-check fixtures clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	PROXY_WASM_EMULATOR_PURE=1 $(VENV)/bin/pip install -q -e '.[dev]'
	$(VENV)/bin/python -m emulator.speedups.build || echo "speedups: not built; the pure-Python modules run"
	touch $@

.venv310/.installed: pyproject.toml
	$(PY310) -m venv .venv310
	.venv310/bin/pip install -q --upgrade pip
	.venv310/bin/pip install -q -e '.[dev,wasmer]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/proxy-wasm-emulator inspect $(DEMO_FILTER)
	$(VENV)/bin/proxy-wasm-emulator run $(DEMO_FILTER) fixtures/demo/request.yaml --plugin-config fixtures/demo/plugin_config.txt --vm-config fixtures/demo/vm_config.txt --env DEMO=1

# The suite in the compiled speed mode (rebuilt first if a request-path module changed), as users run it.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check abi emulator tests benchmarks docs setup.py
	$(VENV)/bin/ruff format --check abi emulator tests benchmarks docs setup.py
	$(VENV)/bin/python -m emulator.speedups.build --if-stale
	$(VENV)/bin/python -m pytest -q -n 2

# The same suite on the pure-Python modules: the reference the compiled mode must match.
test-pure: $(VENV)/.installed
	PROXY_WASM_EMULATOR_PURE=1 $(VENV)/bin/python -m pytest -q -n 2

# The documentation site, strict (a broken link or reference fails), into docs/site/.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	cd docs && NO_MKDOCS_2_WARNING=1 ../$(VENV)/bin/mkdocs build --strict -q

# Compile the request-path modules again, profile-guided (the venv's setup does it once; `make test` when stale).
speedups: $(VENV)/.installed
	$(VENV)/bin/python -m emulator.speedups.build

# The engine-conformance and fixture suites on wasmer/cranelift, under Python 3.10.
test-wasmer: .venv310/.installed
	.venv310/bin/python -m emulator.speedups.build --if-stale --no-profile
	.venv310/bin/python -m pytest -q -n 2 tests/conformance tests/fixtures tests/examples tests/hardening tests/fuzz --proxy-wasm-engine=wasmer

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check abi emulator tests benchmarks docs setup.py

format: $(VENV)/.installed
	$(VENV)/bin/ruff format abi emulator tests benchmarks docs setup.py
	$(VENV)/bin/ruff check --fix abi emulator tests benchmarks docs setup.py

bench: $(VENV)/.installed
	$(VENV)/bin/python -m pytest benchmarks -q --benchmark-only --benchmark-columns=median,iqr,ops --benchmark-sort=name

# Go proxytest (wazero) against the emulator and the engine floor, interleaved, with same-round ratios.
bench-peers: $(VENV)/.installed
	PYTHON=$(VENV)/bin/python bash benchmarks/peers/run.sh

# The same table in about a minute (3 short rounds): CI prints it, never gates on it.
bench-check: $(VENV)/.installed
	ROUNDS=3 REQUESTS=2000 WARMUP=300 PYTHON=$(VENV)/bin/python bash benchmarks/peers/run.sh

fixtures:
	fixtures/build

clean:
	rm -rf $(VENV) .venv310 build *.egg-info emulator/speedups/compiled
