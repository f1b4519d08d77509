#!/bin/bash
# hack/kube/build.sh: builds kube-apiserver v1.37.2 for the kube test lane and installs etcd.
#
# Debian ships no kube-apiserver, so it is built from the Go module proxy. k8s.io/kubernetes
# replaces its staging modules with ./staging paths and cannot be `go install`ed directly, so
# hack/kube/kas/ is a wrapper module that requires k8s.io/kubernetes and maps every staging
# module to its published v0.37.2. It is a separate module so the driver's go.mod never sees it.
#
# The binary is cached by version outside the repo (a cold build takes 4-10 minutes on 2 cores and
# about 2.4 GB of RAM), so the build runs once per machine. etcd comes from Debian's etcd-server.
#
# Prints, on the last two lines, KUBE_APISERVER=<path> and ETCD=<path> so callers can eval them.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
V=v1.37.2
CACHE="${RDS_CSI_CACHE:-$HOME/.cache/rds-csi}/kube/$V"
KAS="$CACHE/kube-apiserver"

# One build at a time: a second caller (make test while .ci/run's early kube build runs) waits for the
# first and then finds the binary cached, instead of compiling the same packages on the same cores.
mkdir -p "$CACHE"
exec 9>"$CACHE/.kube-apiserver.lock"
flock 9
if [ -x "$KAS" ] && "$KAS" --version 2>/dev/null | grep -qx "Kubernetes $V"; then
  echo "kube-apiserver $V cached at $KAS" >&2
else
  echo "building kube-apiserver $V into $KAS (4-10 minutes cold)" >&2
  mkdir -p "$CACHE"
  LDF="-s -w -X k8s.io/component-base/version.gitVersion=$V -X k8s.io/component-base/version.gitMajor=1"
  LDF="$LDF -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
  t0=$(date +%s)
  # Build into a temporary name and rename, so an interrupted build never looks cached.
  (cd "$HERE/kas" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "$LDF" \
    -o "$KAS.tmp.$$" k8s.io/kubernetes/cmd/kube-apiserver)
  mv -f "$KAS.tmp.$$" "$KAS"
  echo "built kube-apiserver in $(( $(date +%s) - t0 ))s" >&2
fi

ETCD="$(command -v etcd || true)"
if [ -z "$ETCD" ]; then
  echo "installing etcd-server from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends etcd-server >&2
  ETCD="$(command -v etcd)"
fi
# Debian starts the etcd service on install; the harness runs its own etcd on other ports.
echo "KUBE_APISERVER=$KAS"
echo "ETCD=$ETCD"
