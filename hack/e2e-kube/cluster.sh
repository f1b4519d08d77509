#!/usr/bin/env bash
# hack/e2e-kube/cluster.sh up|down RUNDIR: a real single-node Kubernetes on this machine, all on loopback
# and all state under RUNDIR: etcd and kube-apiserver (hack/kube/start.sh), kube-controller-manager,
# kube-scheduler, containerd (Debian's, with its own config and sockets) and kubelet, the node named
# e2e-node. `up` returns once the node is Ready and prints the export line of KUBECONFIG; `down` stops only
# the processes whose pids it recorded, removes the lane's containers and unmounts what is left under RUNDIR.
#
# What this host needs (each found the hard way, see /work/shared/recipes/kube-cluster):
# - cgroup v1 (hybrid): kubelet failCgroupV1=false and the cgroupfs driver (there is no systemd either).
# - no CAP_SYS_RESOURCE: containerd's CRI restrict_oom_score_adj, or runc dies writing oom_score_adj.
# - only loopback: kubelet rejects a loopback node IP for its server, so `kubectl logs` does not work;
#   the tests read Pod logs from kubelet's podLogsDir. Pods use hostNetwork (a CNI config exists only so
#   the node reports NetworkReady).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
. "$HERE/versions.sh"
[ $# -eq 2 ] || { echo "usage: $0 up|down RUNDIR" >&2; exit 2; }
mkdir -p "$2"; D="$(cd "$2" && pwd)"
NODE=e2e-node
K="$KUBE_BIN/kubectl --kubeconfig=$D/kubeconfig"
CTR="ctr -a $D/run/containerd.sock -n k8s.io"

stop_pid() { # pidfile: SIGTERM, then SIGKILL after 10 s
  [ -f "$1" ] || return 0
  local p; p=$(cat "$1"); rm -f "$1"
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
}

down() {
  stop_pid "$D/kubelet.pid"
  if [ -S "$D/run/containerd.sock" ]; then
    for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks kill -s KILL "$t" >/dev/null 2>&1 || true; done
    sleep 1
    for c in $($CTR containers ls -q 2>/dev/null); do
      $CTR tasks delete -f "$c" >/dev/null 2>&1 || true; $CTR containers delete "$c" >/dev/null 2>&1 || true
    done
  fi
  stop_pid "$D/containerd.pid"
  stop_pid "$D/scheduler.pid"
  stop_pid "$D/kcm.pid"
  "$REPO/hack/kube/stop.sh" "$D" >/dev/null 2>&1 || true
  # Mounts kubelet, containerd or the driver left under RUNDIR (deepest first), then their loop devices.
  { grep -o " $D/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

up() {
  down
  rm -rf "$D/kubelet" "$D/containerd" "$D/run" "$D/podlogs" "$D/cni"
  mkdir -p "$D/run" "$D/cni/net.d" "$D/kubelet/plugins_registry" "$D/podlogs"
  local t0=$SECONDS
  export KUBE_APISERVER="$KUBE_BIN/kube-apiserver" ETCD="${ETCD:-$(command -v etcd)}"
  # start.sh picks free ports; on a busy machine another process may take one first: try again.
  local try
  for try in 1 2 3; do
    "$REPO/hack/kube/start.sh" "$D" >/dev/null && break
    [ $try = 3 ] && { echo "e2e-kube: etcd and kube-apiserver did not start" >&2; exit 1; }
    echo "e2e-kube: etcd or kube-apiserver did not start (attempt $try), again" >&2
  done
  $KUBE_BIN/kube-controller-manager --kubeconfig="$D/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --service-account-private-key-file="$D/pki/sa.key" \
    --root-ca-file="$D/pki/ca.crt" --use-service-account-credentials=false \
    --controllers='*,-serviceaccount-token' --v=2 > "$D/kcm.log" 2>&1 &
  echo $! > "$D/kcm.pid"
  $KUBE_BIN/kube-scheduler --kubeconfig="$D/kubeconfig" --authentication-kubeconfig="$D/kubeconfig" \
    --authorization-kubeconfig="$D/kubeconfig" --leader-elect=false --bind-address=127.0.0.1 \
    --secure-port=0 > "$D/scheduler.log" 2>&1 &
  echo $! > "$D/scheduler.pid"

  cat > "$D/containerd.toml" <<TOML
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
[grpc]
  address = "$D/run/containerd.sock"
[ttrpc]
  address = "$D/run/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/e2e/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$D/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
TOML
  # Never used (every lane Pod is hostNetwork); without a config the node never reports NetworkReady.
  cat > "$D/cni/net.d/10-e2e.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "e2e", "plugins": [{"type": "bridge", "bridge": "e2e0", "isGateway": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.233.0.0/24"}]]}}]}
CNI
  containerd --config "$D/containerd.toml" > "$D/containerd.log" 2>&1 &
  echo $! > "$D/containerd.pid"
  for _ in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.2; done
  for img in "$D"/images/*.tar; do $CTR images import "$img" >/dev/null; done

  cat > "$D/kubelet.yaml" <<KY
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$D/run/containerd.sock
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
failSwapOn: false
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
podLogsDir: $D/podlogs
syncFrequency: 10s
KY
  $KUBE_BIN/kubelet --config="$D/kubelet.yaml" --kubeconfig="$D/kubeconfig" --root-dir="$D/kubelet" \
    --cert-dir="$D/kubelet/pki" --hostname-override=$NODE --node-ip=127.0.0.1 --v=2 > "$D/kubelet.log" 2>&1 &
  echo $! > "$D/kubelet.pid"
  for _ in $(seq 240); do
    $K get node $NODE 2>/dev/null | grep -qw Ready && { echo "e2e-kube: node $NODE Ready after $(( SECONDS - t0 ))s" >&2; echo "export KUBECONFIG=$D/kubeconfig"; return; }
    for p in kcm scheduler containerd kubelet; do kill -0 "$(cat "$D/$p.pid")" 2>/dev/null || { echo "e2e-kube: $p exited:" >&2; tail -20 "$D/$p.log" >&2; exit 1; }; done
    sleep 0.5
  done
  echo "e2e-kube: node $NODE not Ready after 120s" >&2; tail -20 "$D/kubelet.log" >&2; exit 1
}

case "$1" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down RUNDIR" >&2; exit 2 ;;
esac
