# rds-csi build and test entry points. `make demo` and `make test` work on a fresh Debian machine as root:
# they install what they need first (hack/install-deps.sh).
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
GOTEST   ?= $(GO) test
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: all build deps test unit sanity test-kube verify lint demo bench bench-compare bench-go bench-kube e2e-nvme e2e-kube clean helm-lint deploy-test soak

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
	$(GOTEST) $(TESTFLAGS) ./pkg/... ./cmd/... ./internal/...

sanity: build
	$(GOTEST) $(TESTFLAGS) -v ./test/sanity/...

# The Kubernetes lane alone, against a fresh etcd + kube-apiserver: the attachment manager, the controller's node
# check, and the controller binary end to end (test/kube).
test-kube: build
	RDS_CSI_BINARY=$(CURDIR)/$(BIN)/rds-csi hack/kube/with-apiserver.sh sh -c '\
		$(GOTEST) $(TESTFLAGS) ./test/kube/... ./test/kubeenv/... ./pkg/attachment/... ./pkg/inventory/... && \
		$(GOTEST) $(TESTFLAGS) -run Kube ./internal/app/...'

lint:
	hack/lint.sh

# The fault-and-kill soak of the controller at length: the rds-csi binary SIGKILLed mid-operation while rds-sim
# restarts with injected faults, then the RDS compared exactly with what was acknowledged (test/soak). Bounded
# by SOAK_OPS and SOAK_DURATION; `make test` runs a short soak (the test's defaults) with everything else.
SOAK_OPS      ?= 3000
SOAK_DURATION ?= 20m
soak:
	$(GOTEST) -count=1 -timeout 60m -v -run '^TestSoak$$' ./test/soak -soak.ops=$(SOAK_OPS) -soak.duration=$(SOAK_DURATION)

verify: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	hack/lint.sh
	$(GO) mod tidy -diff
	$(MAKE) test

demo: deps build
	$(GO) run ./hack/demo --driver $(BIN)/rds-csi

# The node plugin over a real kernel NVMe/TCP target and initiator, in a QEMU VM (root; installs what it needs).
e2e-nvme:
	hack/e2e-nvme/e2e-nvme.sh all

# A real single-node Kubernetes (kubelet, containerd, control plane v1.37.2) with the driver and its sidecars
# run with the chart's arguments against rds-sim, and Pods on its volumes (root; builds and caches what it
# needs, 25-30 minutes cold, see hack/e2e-kube). E2E_KUBE_FLAGS go to go test, e.g. -run Filesystem.
e2e-kube:
	hack/e2e-kube/e2e.sh $(E2E_KUBE_FLAGS)

# The CSI benchmark (hack/bench): the driver and rds-sim as processes, at 30 ms per round trip (latency per
# operation, 200 in flight, execs per operation), then sequential operations at 0 ms. BENCHFLAGS adds flags.
bench: build
	$(GO) build -o $(BIN)/rds-csi-bench ./hack/bench
	$(BIN)/rds-csi-bench --driver $(BIN)/rds-csi --sim $(BIN)/rds-sim --latency 30ms $(BENCHFLAGS)
	$(BIN)/rds-csi-bench --driver $(BIN)/rds-csi --sim $(BIN)/rds-sim --latency 0 --volumes 0 --n 50 $(BENCHFLAGS)

# Issue 11's before/after in one run: an older commit's driver and simulator next to this tree's (hack/bench/compare.sh).
bench-compare:
	hack/bench/compare.sh $(OLD)

# The Go micro-benchmarks of every package.
bench-go:
	$(GOTEST) -run '^$$' -bench . -benchmem ./pkg/...

# Benchmarks that need the API server: the manager's rebuild and scrape at scale, and the controller binary's
# start-up with 5,000 VolumeAttachments (each run of the latter is a process start, hence -benchtime).
bench-kube: build
	RDS_CSI_BINARY=$(CURDIR)/$(BIN)/rds-csi hack/kube/with-apiserver.sh sh -c '\
		$(GOTEST) -run "^$$" -bench . -benchmem ./pkg/attachment/... && \
		$(GOTEST) -run "^$$" -bench . -benchtime 3x ./test/kube/...'

# The Helm chart with each of its ci/ values files (helm is built and cached by hack/helm.sh).
helm-lint:
	@HELM=$$(hack/helm.sh) && for f in deploy/helm/rds-csi/ci/*-values.yaml; do \
	  $$HELM lint deploy/helm/rds-csi --strict --values $$f || exit 1; done

# The deployment tests alone: goldens, schema, flags, kustomize base, and with a fresh API server the
# server-side dry run and the RBAC proof. After an intended chart change, regenerate the goldens and the
# kustomize base with `go test ./test/deploy -run 'Golden|KustomizeBase' -update`.
deploy-test: deps
	hack/kube/with-apiserver.sh $(GOTEST) $(TESTFLAGS) ./test/deploy/...

clean:
	rm -rf $(BIN)
