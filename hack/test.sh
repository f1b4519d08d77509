#!/usr/bin/env bash
# hack/test.sh [GO TEST FLAGS]: every Go test of the repository, with a real etcd + kube-apiserver for the
# Kubernetes lane (built once per machine and cached by hack/kube/build.sh). Run as root so the loop-device,
# mkfs and mount tests run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || echo "test: not root: tests that need loop devices and mount will skip" >&2
exec hack/kube/with-apiserver.sh go test "$@" ./...
