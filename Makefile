# iotdp - one entry point for building, testing and linting.
# `make test` is the one test command (CI runs it through .ci/run).

SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
TOOLS_STAMP := $(VENV)/.installed-$(shell sha1sum requirements-dev.txt | cut -c1-12)
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha1sum requirements-checkov.txt | cut -c1-12)
SCHEMATHESIS_VENV := .venv-schemathesis
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed-$(shell sha1sum requirements-schemathesis.txt | cut -c1-12)
CONSOLE_STAMP := console/.installed-$(shell sha1sum console/package-lock.json | cut -c1-12)
# Offline-friendly settings for the AWS CLIs used in linting: no telemetry, no credentials needed.
AWS_LINT_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=lint AWS_SECRET_ACCESS_KEY=lint

# InfluxDB 1.x server for the InfluxDB store's tests and `make local`: Debian's build, pinned by
# version and checksum, fetched with apt-get download and unpacked into .tools/ (nothing
# installed system-wide; see scripts/install-influxd).
INFLUXDB_DEB_VERSION := 1.6.7~rc0-1+b13
INFLUXDB_DEB_SHA256 := fcfddf7937befd82264359feaeb2f46a79f9574656ee0981eb19dcc5a153f55c
INFLUXD := .tools/influxdb/usr/bin/influxd

.PHONY: help check test prepare rust-build tools rust-test rust-lint lambda-deps template-lint bench build local fmt clean-tools fuzz soak command-rate console console-test

## help: this list of targets
help:
	@awk '/^## [a-z-]+:/ { sub(/^## /, ""); split($$0, part, ":"); printf "  %-14s%s\n", part[1], substr($$0, length(part[1]) + 3); next } /^## / && part[1] != "" { sub(/^## /, ""); printf "  %-14s%s\n", "", $$0; next } { part[1] = "" }' $(MAKEFILE_LIST)

# The product crate's integration tests (in-memory and mocked adapters: no outside tool).
PRODUCT_TESTS := --test product --test peak_memory

## check: the fast inner loop - fmt, clippy, and every test that needs no outside tool (the
## unit tests of every crate, the product crate's tests on in-memory and mocked adapters);
## no venv, influxd, npm or Chromium. Same feature set as `make test`, so nothing rebuilds twice
check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace --lib --bins $(PRODUCT_TESTS)

## test: everything CI checks - formatting, clippy, unit + integration tests (moto, influxd),
## template lint, and the console's tests in a real headless Chromium
test: prepare rust-lint rust-test template-lint console-test

# The tools' installs (downloads, mostly waiting on the network) beside the cold build (the
# two cores): on a fresh clone the one hides most of the other.
prepare:
	$(MAKE) --no-print-directory -j2 tools rust-build

# Every test binary and the `iotdp` binary the console tests run, built once.
rust-build:
	cargo test --workspace --no-run --quiet

## tools: Python venv with moto[server], cfn-lint and aws-sam-cli (pinned in requirements-dev.txt),
## checkov and schemathesis in venvs of their own (requirements-checkov.txt,
## requirements-schemathesis.txt), influxd (pinned Debian package), and the console's
## front-end packages (console/package-lock.json)
tools: $(TOOLS_STAMP) $(CHECKOV_STAMP) $(SCHEMATHESIS_STAMP) $(INFLUXD) $(CONSOLE_STAMP)

## console: the console's pinned packages (uPlot; playwright-core for its tests) into the
## ignored console/node_modules; the Rust build embeds uPlot from there (iotdp/build.rs)
console: $(CONSOLE_STAMP)

$(CONSOLE_STAMP): console/package.json console/package-lock.json
	npm ci --prefix console --no-audit --no-fund --loglevel=error
	rm -f console/.installed-*
	# The build script watches the lock file: a fresh install is embedded on the next build.
	touch console/package-lock.json $@

## console-test: the console in Debian's headless Chromium (installed by scripts/install-chromium)
## against a running `iotdp local` with its simulated fleet (console/tests/console.test.mjs);
## screenshots of each page go to docs/console/
console-test: tools
	scripts/install-chromium
	cargo test --workspace --no-run --quiet
	IOTDP_BIN=$(TARGET_DIR)/debug/iotdp node --test --test-concurrency=1 console/tests/

$(SCHEMATHESIS_STAMP): requirements-schemathesis.txt
	$(PYTHON) -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-schemathesis.txt
	rm -f $(SCHEMATHESIS_VENV)/.installed-*
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-*
	touch $@

$(INFLUXD):
	scripts/install-influxd "$(INFLUXDB_DEB_VERSION)" "$(INFLUXDB_DEB_SHA256)" .tools/influxdb
	touch $@

$(TOOLS_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

## rust-lint: cargo fmt --check, clippy -D warnings on every target, and the Lambdas' dependency check
rust-lint: lambda-deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The Lambda binaries link none of the local platform: no iotdp-local, MQTT broker, YAML
# reader or HTTP server (the SDK's hyper client is expected; hyper's server feature is not).
LAMBDAS := -p ingest -p lifecycle -p silence-watch -p api -p rollup -p commands
lambda-deps:
	@if cargo tree $(LAMBDAS) -e normal --prefix none | grep -E '^(iotdp-local|iotdp-memory|iotdp-simulator|iotdp-cost|rumqttc|serde_yaml_ng|aws-sdk-sqs) '; then \
		echo "a Lambda binary links the local platform's crates (above)"; exit 1; fi
	@if cargo tree $(LAMBDAS) -e normal,features -i hyper | grep -F 'hyper feature "server"'; then \
		echo "a Lambda binary links hyper's server"; exit 1; fi
	@echo "Lambda dependency trees: no local-platform crates"

## rust-test: every Rust test: unit, in-memory, and integration against moto's server and influxd
rust-test: tools
	@# cargo-nextest (on this kind of machine) runs the test binaries side by side, so the
	@# outage tests' 30-second outages and the schemathesis run overlap the rest; plain
	@# `cargo test` where it is missing. The workspace has no doctests for nextest to skip.
	if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

# Linted as given (the lake) and with TimeSeriesStore defaulting to timestream and to
# influxdb, so every store choice is clean.
## template-lint: cfn-lint, sam validate and checkov on the template's store, auth and transport variants
# template-lint: cfn-lint and sam validate on the three store variants, the user-pool variant and the Kinesis transport, and checkov: every finding is
# fixed or skipped in the template with its one-line reason, so a new one fails.
template-lint: tools
	$(AWS_LINT_ENV) $(VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact --quiet
	$(AWS_LINT_ENV) $(VENV)/bin/sam validate --lint --template template.yaml
	mkdir -p target
	sed '/^  TimeSeriesStore:/,/Default:/s/Default: lake/Default: timestream/' template.yaml > target/template-timestream.yaml
	grep -q 'Default: timestream' target/template-timestream.yaml
	$(AWS_LINT_ENV) $(VENV)/bin/cfn-lint target/template-timestream.yaml
	$(CHECKOV_VENV)/bin/checkov -f target/template-timestream.yaml --framework cloudformation --skip-download --compact --quiet
	$(AWS_LINT_ENV) $(VENV)/bin/sam validate --lint --template target/template-timestream.yaml
	sed '/^  TimeSeriesStore:/,/Default:/s/Default: lake/Default: influxdb/' template.yaml > target/template-influxdb.yaml
	grep -q 'Default: influxdb' target/template-influxdb.yaml
	$(AWS_LINT_ENV) $(VENV)/bin/cfn-lint target/template-influxdb.yaml
	$(AWS_LINT_ENV) $(VENV)/bin/sam validate --lint --template target/template-influxdb.yaml
	sed '/^  ApiAuth:/,/Default:/s/Default: iam/Default: cognito/' template.yaml > target/template-cognito.yaml
	grep -q 'Default: cognito' target/template-cognito.yaml
	$(AWS_LINT_ENV) $(VENV)/bin/cfn-lint target/template-cognito.yaml
	$(CHECKOV_VENV)/bin/checkov -f target/template-cognito.yaml --framework cloudformation --skip-download --compact --quiet
	$(AWS_LINT_ENV) $(VENV)/bin/sam validate --lint --template target/template-cognito.yaml
	sed '/^  Transport:/,/Default:/s/Default: sqs/Default: kinesis/' template.yaml > target/template-kinesis.yaml
	grep -q 'Default: kinesis' target/template-kinesis.yaml
	$(AWS_LINT_ENV) $(VENV)/bin/cfn-lint target/template-kinesis.yaml
	$(CHECKOV_VENV)/bin/checkov -f target/template-kinesis.yaml --framework cloudformation --skip-download --compact --quiet
	$(AWS_LINT_ENV) $(VENV)/bin/sam validate --lint --template target/template-kinesis.yaml

## local: the whole platform on this machine (moto, MQTT on 127.0.0.1:1883, rules, functions),
## demo rules, a simulated fleet and a live view until Ctrl-C. ARGS="--devices 50 --rate 200" etc.
## The binary comes from the same build as `make test` (`cargo test --workspace`): building
## `-p iotdp-cli` alone resolves other features and recompiles much of the dependency tree.
local: tools
	cargo test --workspace --no-run --quiet
	$(TARGET_DIR)/debug/iotdp local $(ARGS)

# Where cargo puts binaries (honours CARGO_TARGET_DIR); evaluated only when a recipe uses it.
TARGET_DIR = $(shell cargo metadata --format-version 1 --no-deps | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

## fuzz: every fuzz target (tests/tests/integration/fuzz.rs) for FUZZ_SECONDS each (default 600: an hour
## across the six targets); `make test` runs them for 2 s each
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) cargo test --workspace --test integration fuzz:: -- --nocapture --test-threads 1

## soak: the local platform (release build, influxd as the store) at the smart-AC reference load
## for SOAK_SECONDS (default 600), then its conservation report, RSS slope and the query API's
## p99 under load (tests/src/bin/soak.rs; figures in target/soak/summary.txt, docs/performance.md)
SOAK_SECONDS ?= 600
soak: tools
	cargo build --release -p iotdp-cli
	cargo test --workspace --no-run --quiet
	$(TARGET_DIR)/debug/soak --iotdp $(TARGET_DIR)/release/iotdp --seconds $(SOAK_SECONDS)

## command-rate: commands per second the local platform carries end to end (release `iotdp
## local`, every simulated thermostat with one command outstanding; tests/src/bin/command-rate.rs)
command-rate: tools
	cargo build --release -p iotdp-cli
	cargo test --workspace --no-run --quiet
	$(TARGET_DIR)/debug/command-rate --iotdp $(TARGET_DIR)/release/iotdp

## bench: criterion benchmarks of the pure paths, then the end-to-end benchmark of the real
## release `ingest` binary under a Lambda Runtime API, against a fake AWS endpoint that checks
## every write (tests/src/ingest_bench.rs; the table goes into docs/performance.md)
bench:
	cargo bench -p iotdp --bench ingest_path
	cargo bench -p iotdp --bench alert_overhead
	cargo bench -p iotdp --bench rollups
	cargo bench -p iotdp --bench lake
	cargo bench -p iotdp-local --bench query_api
	cargo build --release -p ingest
	cargo test --workspace --no-run --quiet
	$(TARGET_DIR)/debug/ingest-bench --bootstrap $(TARGET_DIR)/release/ingest
	$(TARGET_DIR)/debug/read-bench

## build: sam build for arm64 with cargo-lambda from the venv (it adds the Rust target
## aarch64-unknown-linux-gnu through rustup on first use)
build: tools console
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --beta-features

fmt:
	cargo fmt --all

clean-tools:
	rm -rf $(VENV) $(CHECKOV_VENV) $(SCHEMATHESIS_VENV)
