# Switchyard. `make run` starts the whole thing on loopback; `make test` runs every test
# exactly as CI does (.ci/run calls it); `make bench` prints the benchmark figures.
SHELL := bash
GO    ?= go
BIN   := $(CURDIR)/bin

.PHONY: build test run bench fuzz clean

build:
	@mkdir -p $(BIN)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o $(BIN)/filter.wasm ./filter
	$(GO) build -trimpath -o $(BIN)/registrar ./registrar
	$(GO) build -trimpath -o $(BIN)/devproxy ./e2e/cmd/devproxy

# Tests use the binaries just built (SWITCHYARD_BIN), never stale ones.
test: build
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./filter
	SWITCHYARD_BIN=$(BIN) $(GO) test -count=1 -timeout 25m ./...

run: build
	$(GO) build -trimpath -o $(BIN)/run ./e2e/cmd/run
	$(BIN)/run -bin $(BIN)

clean:
	rm -rf $(BIN)
