# rds-csi build and test entry points. `make demo` and `make test` work on a fresh Debian machine as root:
# they install what they need first (hack/install-deps.sh).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
GOTEST   ?= $(GO) test
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: all build deps test unit sanity verify lint demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rds-csi ./cmd/rds-csi
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/rds-sim ./cmd/rds-sim

deps:
	hack/install-deps.sh

# Everything CI runs: unit, golden and fuzz-seed tests of every package, csi-sanity against the driver and the
# simulator, the Kubernetes lane against a real kube-apiserver.
test: deps build
	$(GO) vet ./...
	hack/test.sh $(TESTFLAGS)

unit:
	$(GOTEST) $(TESTFLAGS) ./pkg/... ./cmd/...

sanity: build
	$(GOTEST) $(TESTFLAGS) -v ./test/sanity/...

lint:
	hack/lint.sh

verify: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	hack/lint.sh
	$(GO) mod tidy -diff
	$(MAKE) test

demo: deps build
	$(GO) run ./hack/demo --driver $(BIN)/rds-csi

bench:
	$(GOTEST) -run '^$$' -bench . -benchmem ./pkg/... 

clean:
	rm -rf $(BIN)
