#!/usr/bin/env bash
# hack/e2e-kube/e2e.sh [go test flags]: the kube lane (make e2e-kube), as root. Builds what is missing
# (build.sh: cached, so a warm run only checks), the driver and the lane's tools, packs the Pods' images,
# starts the cluster (cluster.sh), runs the scenarios in test/e2ekube, and always stops what it started.
# E2E_KUBE_DIR (default /var/tmp/rds-csi-e2e-kube) holds the run: logs of every process under it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
. "$HERE/versions.sh"
export PATH=/usr/local/go/bin:$HOME/go/bin:$PATH GOFLAGS=${GOFLAGS:--buildvcs=false}
D=${E2E_KUBE_DIR:-/var/tmp/rds-csi-e2e-kube}
[ "$(id -u)" = 0 ] || { echo "e2e-kube: needs root (kubelet, containerd, loop devices, mounts)" >&2; exit 1; }
t0=$SECONDS
step() { echo "e2e-kube: $* ($(( SECONDS - t0 ))s)" >&2; }

"$HERE/build.sh" all
step "builds ready"
(cd "$REPO" && make -s build >/dev/null)
mkdir -p "$D/bin" "$D/images"
(cd "$HERE/tools" && CGO_ENABLED=0 go build -trimpath -o "$D/bin/" ./...)
HELM=$("$REPO/hack/helm.sh")

# The Pods' images, made locally (no registry): the sandbox's pause, and busybox for the test Pods.
img=$(mktemp -d)
mkdir -p "$img/pause" "$img/busybox/bin" "$img/busybox/tmp"; chmod 1777 "$img/busybox/tmp"
cp "$D/bin/pause" "$img/pause/pause"
"$D/bin/mkimage" -name localhost/e2e/pause:1 -rootfs "$img/pause" -out "$D/images/pause.tar" -- /pause
cp "$(command -v busybox)" "$img/busybox/bin/busybox"
for a in sh cat echo dd md5sum sleep df grep sync ls stat head tail wc mount blockdev test true date awk cut tr seq cmp od printf mkdir rm truncate xargs expr; do ln -s busybox "$img/busybox/bin/$a"; done
"$D/bin/mkimage" -name localhost/e2e/busybox:1 -rootfs "$img/busybox" -out "$D/images/busybox.tar" -- /bin/sh
rm -rf "$img"
step "driver, tools and images built"

cleanup() { "$HERE/cluster.sh" down "$D" || true; }
trap cleanup EXIT
up=$("$HERE/cluster.sh" up "$D")  # not inside eval: its failure must stop the lane
eval "$up"
step "cluster up"

export E2E_KUBE_DIR=$D E2E_KUBE_KUBECTL=$KUBE_BIN/kubectl E2E_KUBE_HELM=$HELM \
  RDS_CSI_BINARY=$REPO/bin/rds-csi RDS_SIM_BINARY=$REPO/bin/rds-sim E2E_KUBE_REGISTRAR=$D/bin/registrar \
  E2E_KUBE_SIDECARS=$SIDECAR_BIN
rc=0
(cd "$REPO" && go test -tags e2ekube -count=1 -timeout 25m -v "$@" ./test/e2ekube/) || rc=$?
step "scenarios done (exit $rc); logs in $D/logs and $D/*.log"
exit $rc
