#!/usr/bin/env bash
# hack/lint.sh: golangci-lint at a pinned version, installed with `go install` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
V=v2.15.0
BIN="$(go env GOPATH)/bin/golangci-lint"
if ! "$BIN" version 2>/dev/null | grep -q "${V#v}"; then
    echo "lint: installing golangci-lint $V" >&2
    go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$V"
fi
exec "$BIN" run ./...
