#!/usr/bin/env bash
# hack/e2e-kube/build.sh [deps|kube|sidecars|all]: installs and builds what the kube lane (make e2e-kube)
# runs, and prints nothing but progress on stderr.
#
#   deps      Debian packages: containerd, runc, busybox-static (the test Pods' image), CNI plugins, etcd,
#             mkfs tools, jq.
#   kube      kube-apiserver (hack/kube/build.sh, shared with the API-server lane), then
#             kube-controller-manager, kube-scheduler, kubelet and kubectl $KUBE_VERSION in one `go build` of
#             the wrapper module in ./kube (k8s.io/kubernetes maps its staging modules to ./staging paths,
#             so it cannot be `go install`ed; see hack/kube/build.sh).
#   sidecars  csi-provisioner, csi-attacher, csi-resizer, csi-snapshotter and snapshot-controller at the
#             versions the chart pins, from their module source, plus the VolumeSnapshot CRDs of the same
#             release. `go install mod@version` refuses them because their go.mod files carry replace
#             directives, so the module is downloaded, copied and built with -mod=mod.
#
# Everything is cached by version under ${RDS_CSI_CACHE:-~/.cache/rds-csi} (a cold build is 25-30 minutes
# on two loaded cores, a warm one is a few file checks). Each artefact is built under a temporary name and
# renamed, so an interrupted build never looks cached; a lock per cache directory lets two callers
# (say .ci/run's early start and make e2e-kube) share one build.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
. "$HERE/versions.sh"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false"
log() { echo "e2e-kube build: $*" >&2; }

deps() {
  local missing=()
  for c in containerd:containerd runc:runc busybox:busybox-static /usr/lib/cni/bridge:containernetworking-plugins \
           etcd:etcd-server mkfs.ext4:e2fsprogs mkfs.xfs:xfsprogs jq:jq losetup:mount; do
    local cmd=${c%%:*} pkg=${c#*:}
    if [[ $cmd == /* ]]; then [ -e "$cmd" ] || missing+=("$pkg"); else command -v "$cmd" >/dev/null || missing+=("$pkg"); fi
  done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages present"; return; fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (make deps) may hold dpkg's lock: wait for it rather than fail.
  local wait=(-o DPkg::Lock::Timeout=600)
  apt-get "${wait[@]}" update -qq >&2
  # Debian's packages start their services on install; no systemd here, and the lane runs its own
  # containerd and etcd on their own sockets and ports, so a policy-rc.d keeps them from starting.
  local prc=/usr/sbin/policy-rc.d made=""
  [ -e $prc ] || { printf '#!/bin/sh\nexit 101\n' > $prc; chmod +x $prc; made=1; }
  apt-get "${wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
  [ -z "$made" ] || rm -f $prc
}

kube() {
  # kube-apiserver first and alone, through the API-server lane's own script (make test needs it early and
  # waits on that script's lock); the second build then compiles only what the other four add.
  "$REPO/hack/kube/build.sh" >/dev/null
  local bins=(kube-controller-manager kube-scheduler kubelet kubectl) need=()
  mkdir -p "$KUBE_BIN"
  exec 8>"$KUBE_BIN/.lock"; flock 8
  for b in "${bins[@]}"; do [ -x "$KUBE_BIN/$b" ] || need+=("k8s.io/kubernetes/cmd/$b"); done
  if [ ${#need[@]} -eq 0 ]; then log "kube $KUBE_VERSION binaries cached in $KUBE_BIN"; exec 8>&-; return; fi
  log "building ${need[*]##*/} $KUBE_VERSION into $KUBE_BIN (15-25 minutes cold)"
  local t0=$SECONDS tmp="$KUBE_BIN/tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  local ldf="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
  ldf="$ldf -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
  ldf="$ldf -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$HERE/kube" && go build -mod=mod -trimpath -ldflags "$ldf" -o "$tmp/" "${need[@]}")
  for p in "${need[@]}"; do mv -f "$tmp/${p##*/}" "$KUBE_BIN/${p##*/}"; done
  rm -rf "$tmp"
  log "built ${need[*]##*/} in $(( SECONDS - t0 ))s"
  exec 8>&-
}

# sidecar MODULE VERSION CMD... [-- FIXUP]: builds ./cmd/CMD of MODULE@VERSION into $SIDECAR_BIN/NAME/VERSION.
sidecar() {
  local mod=$1 ver=$2; shift 2
  local cmds=() fixup=""
  while [ $# -gt 0 ]; do if [ "$1" = -- ]; then fixup=$2; break; fi; cmds+=("$1"); shift; done
  local name; name=$(echo "$mod" | sed -E 's#^github.com/kubernetes-csi/##; s#/v[0-9]+$##')
  local dst="$SIDECAR_BIN/$name/$ver"
  mkdir -p "$SIDECAR_BIN/$name"
  exec 8>"$SIDECAR_BIN/$name/.lock"; flock 8
  if [ -d "$dst" ]; then log "$name $ver cached"; exec 8>&-; return; fi
  log "building $name $ver (${cmds[*]})"
  local t0=$SECONDS tmp="$SIDECAR_BIN/$name/tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/out"
  local src; src=$(go mod download -json "$mod@$ver" | jq -r .Dir)
  cp -r "$src" "$tmp/src"; chmod -R u+w "$tmp/src"
  (cd "$tmp/src" && { [ -z "$fixup" ] || eval "$fixup"; } && \
    go build -mod=mod -trimpath -ldflags "-s -w -X main.version=$ver" -o "$tmp/out/" "${cmds[@]/#/./cmd/}")
  if [ -d "$tmp/src/client/config/crd" ]; then mkdir -p "$tmp/out/crd"; cp "$tmp/src/client/config/crd/"*storage.k8s.io_*.yaml "$tmp/out/crd/"; fi
  mv "$tmp/out" "$dst"; rm -rf "$tmp"
  log "built $name $ver in $(( SECONDS - t0 ))s"
  exec 8>&-
}

check_chart_pins() {
  local v="$REPO/deploy/helm/rds-csi/values.yaml" bad=0
  for p in provisioner:$PROVISIONER_VERSION attacher:$ATTACHER_VERSION resizer:$RESIZER_VERSION snapshotter:$SNAPSHOTTER_VERSION; do
    local key=${p%%:*} want=${p#*:} got
    got=$(awk -v k="  $key:" '$0==k{f=1;next} f&&/tag:/{print $2; exit}' "$v")
    [ "$got" = "$want" ] || { log "chart pins $key $got, hack/e2e-kube/versions.sh builds $want"; bad=1; }
  done
  return $bad
}

sidecars() {
  check_chart_pins
  sidecar github.com/kubernetes-csi/external-provisioner/v6 "$PROVISIONER_VERSION" csi-provisioner
  sidecar github.com/kubernetes-csi/external-attacher/v4 "$ATTACHER_VERSION" csi-attacher
  sidecar github.com/kubernetes-csi/external-resizer "$RESIZER_VERSION" csi-resizer
  # The snapshotter's go.mod replaces its client module with ./client, which the module zip leaves out:
  # copy the client module of the version it requires (its config/crd holds the VolumeSnapshot CRDs).
  sidecar github.com/kubernetes-csi/external-snapshotter/v8 "$SNAPSHOTTER_VERSION" csi-snapshotter snapshot-controller -- \
    'cv=$(awk "/external-snapshotter\/client\/v8 v/{print \$2; exit}" go.mod);
     cd_=$(go mod download -json github.com/kubernetes-csi/external-snapshotter/client/v8@$cv | jq -r .Dir);
     rm -rf client; cp -r "$cd_" client; chmod -R u+w client'
}

case "${1:-all}" in
  deps) deps ;;
  kube) kube ;;
  sidecars) sidecars ;;
  all) deps; kube; sidecars ;;
  *) echo "usage: $0 [deps|kube|sidecars|all]" >&2; exit 2 ;;
esac
