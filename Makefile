# Switchyard. `make run` starts the whole thing on loopback; `make test` runs every test
# exactly as CI does (.ci/run calls it); `make bench` prints the benchmark figures.
SHELL := bash
GO    ?= go
BIN   := $(CURDIR)/bin
# The filter's build version, sent in every poll (version=, docs/sync-protocol.md): the
# git description of this tree, or devel outside a git checkout. `make build VERSION=v1.2.3`
# sets it by hand; a VERSION in the environment does not.
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo devel)

.PHONY: build test test-deps run bench fuzz fuzz-check clean dist

build:
	@mkdir -p $(BIN)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -ldflags "-X switchyard/filter/polling.BuildVersion=$(VERSION)" -o $(BIN)/filter.wasm ./filter
	$(GO) build -trimpath -o $(BIN)/registrar ./registrar
	$(GO) build -trimpath -o $(BIN)/devproxy ./cmd/devproxy
	$(GO) build -trimpath -o $(BIN)/switchyardctl ./cmd/switchyardctl

# What the tests need beyond Go (Chromium for the page test, etcd, Node.js and the pinned
# Redocly CLI for the OpenAPI lint), installed when missing.
test-deps:
	@scripts/test-deps

# Tests use the binaries just built (SWITCHYARD_BIN), never stale ones.
test: test-deps build
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet $$($(GO) list ./filter/... | grep -v /inhost)  # inhost: host-side tests
	SWITCHYARD_BIN=$(BIN) $(GO) test -count=1 -timeout 25m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=100000x

# Each fuzz target for FUZZTIME (`make test`: 100,000 inputs each, a few seconds; longer
# by hand, e.g. `make fuzz FUZZTIME=10m`). `make test` counts inputs rather than time:
# with a duration, Go 1.26's fuzz coordinator can fail a clean run with "context
# deadline exceeded" at the deadline (go.dev/issue/75804, fixed in Go 1.27). An input that fails is written to the package's
# testdata/fuzz/ folder; commit it and it runs in every `go test` as a regression case.
FUZZTIME ?= 1m
FUZZ_TARGETS := \
	FuzzServerName:./internal/validate/ \
	FuzzParseAddress:./internal/validate/ \
	FuzzServiceName:./internal/validate/ \
	FuzzWrite:./registrar/server/ \
	FuzzAnswer:./filter/polling/ \
	FuzzConfig:./internal/pluginconfig/ \
	FuzzPairs:./internal/abi/ \
	FuzzDecide:./filter/routing/ \
	FuzzSchemaAgreement:./deploy/ \
	FuzzTargetSet:./internal/contract/
# fuzz-check fails when a `func Fuzz...` in a _test.go file is not in FUZZ_TARGETS with
# its package folder, so the list stays the one list of fuzz targets (README points here).
fuzz-check:
	@missing=$$(grep -rnoE --include='*_test.go' --exclude-dir=.git --exclude-dir=bin '^func Fuzz[A-Za-z0-9_]+' . | \
		sed -E 's|^(.*)/[^/]*:[0-9]+:func (Fuzz[A-Za-z0-9_]+)$$|\2:\1/|' | sort -u | \
		while read -r t; do case " $(FUZZ_TARGETS) " in *" $$t "*) ;; *) echo "$$t";; esac; done); \
	if [ -n "$$missing" ]; then echo "fuzz targets missing from FUZZ_TARGETS in the Makefile: $$missing" >&2; exit 1; fi
fuzz: fuzz-check
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} ($${t#*:}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}\$$" -fuzztime $(FUZZTIME) "$${t#*:}"; \
	done

run: build
	$(GO) build -trimpath -o $(BIN)/run ./cmd/run
	$(BIN)/run -bin $(BIN)

# The figures users judge us by, each checked for the right answer before it is measured:
# filter cost per request routed and 404 (10 and 1,000,000 names; beside a do-nothing
# filter on the same SDK, ratio-to-floor), router VM memory at 1M/2M/5M
# requests, propagation, dev proxy throughput routed vs bypass (10 and 10,000 names),
# registrar durable writes and long-poll fan-out; at scale through the built binaries,
# propagation and bytes per one-name change at 100,000 names, a fresh dev proxy's load
# time and memory at 1,000,000 names (and above an empty dev proxy); full tables of
# 1,000,000 names loaded and switched under load (BenchmarkTable1M: load and reload time,
# answers from the other table, poller VM memory after 10 reloads, shared data). With
# REF_WASM=<an older filter.wasm>, the router's cost per request against it. Each
# benchmark prints its figures as custom units (ns/req-median, MiB-at-5M, p99-ms,
# ratio, ...). About 20 minutes on two cores: BenchmarkTable1M loads 1,000,000 names 14 times,
# BenchmarkDevproxyLoad1M starts three dev proxies on them.
bench: build
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench '^BenchmarkFilter$$|^BenchmarkTargets$$' -benchtime 200000x -timeout 20m ./filter/inhost/
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkRouterMemory' -benchtime 1x -timeout 20m ./filter/inhost/
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkTable1M' -benchtime 1x -timeout 30m ./filter/inhost/
	$(if $(REF_WASM),SWITCHYARD_BIN=$(BIN) SWITCHYARD_REF_WASM=$(REF_WASM) $(GO) test -run '^$$' -bench 'BenchmarkRouterVsReference' -benchtime 200000x -timeout 20m ./filter/inhost/)
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkPropagation|BenchmarkDevproxyThroughput' -benchtime 1x -timeout 20m ./e2e/
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkScale100k' -benchtime 1x -timeout 20m ./e2e/
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkDevproxyLoad1M' -benchtime 3x -timeout 20m ./e2e/
	$(GO) test -run '^$$' -bench 'BenchmarkRegistrarWrites|BenchmarkRegistrarFanout|BenchmarkRegistrarScale' -benchtime 1x -timeout 10m ./registrar/server/
	$(GO) test -run '^$$' -bench 'BenchmarkCommit|BenchmarkRewriteWholeFile' -benchtime 200x -timeout 10m ./registrar/store/
	$(GO) test -run '^$$' -bench 'BenchmarkProxyRegistryFlood' -benchtime 100000x ./registrar/server/
	$(GO) test -run '^$$' -bench 'BenchmarkWaitApplied' -benchtime 1x -timeout 10m ./registrar/server/
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkRegistrarStart1M|BenchmarkRegistrarSlowReaders' -benchtime 1x -timeout 10m ./registrar/
	$(GO) test -run '^$$' -bench 'BenchmarkRewriteManyHeaders' -benchtime 20x ./devproxy/
	SWITCHYARD_BIN=$(BIN) $(GO) test -run '^$$' -bench 'BenchmarkRegistrarStores' -benchtime 1x -timeout 10m ./e2e/

clean:
	rm -rf $(BIN) dist

# What a machine without internet installs (cmd/dist; README, "Install on a VM
# (offline)"): switchyard .deb and .rpm for amd64 and arm64, a .tar.gz of the same
# files each, and SHA256SUMS, in dist/. Reproducible: the same commit and
# SOURCE_DATE_EPOCH (default: the commit's time) give the same bytes.
dist:
	$(GO) run ./cmd/dist -out dist -version $(VERSION)

# OCI image layouts, no Docker needed (internal/ociimage, deploy/): bin/oci/filter (compat
# Wasm image), bin/oci/filter-wasm (two-layer Wasm artifact), bin/oci/registrar (static
# registrar for linux/OCI_ARCH, user 65532, volume /data). Prints each manifest digest, the
# `sha256:` to pin. Push with `crane push bin/oci/filter REGISTRY/REPO:TAG` (README).
OCI_ARCH ?= amd64
.PHONY: oci
oci: build
	CGO_ENABLED=0 GOOS=linux GOARCH=$(OCI_ARCH) $(GO) build -trimpath -o $(BIN)/oci/registrar-linux-$(OCI_ARCH) ./registrar
	$(GO) run ./cmd/ociimage -filter $(BIN)/filter.wasm -registrar $(BIN)/oci/registrar-linux-$(OCI_ARCH) -arch $(OCI_ARCH) -out $(BIN)/oci
