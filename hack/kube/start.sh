#!/bin/bash
# hack/kube/start.sh RUNDIR: starts etcd and kube-apiserver on loopback for the kube test lane.
#
# Binaries come from $KUBE_APISERVER and $ETCD, or from hack/kube/build.sh (which only builds when
# its cache is empty). Ports are $ETCD_PORT and $KAS_PORT when set, otherwise free ones picked
# here, so several runs (or engineers) on one machine do not collide. Writes RUNDIR/kubeconfig
# (admin, system:masters) and RUNDIR/env (RDS_CSI_KUBECONFIG=...), prints the export line, and
# returns once /readyz answers. Stop with hack/kube/stop.sh RUNDIR.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 RUNDIR" >&2; exit 2; }
mkdir -p "$1"; D="$(cd "$1" && pwd)"

if [ -z "${KUBE_APISERVER:-}" ] || [ -z "${ETCD:-}" ]; then
  eval "$("$HERE/build.sh")"
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 20000 ))
    port_free "$p" && port_free "$((p + 1))" && { echo "$p"; return; }
  done
  echo "no free port found" >&2; exit 1
}
ETCD_PORT=${ETCD_PORT:-$(pick_port)}
KAS_PORT=${KAS_PORT:-$(pick_port)}

# Leftovers of an earlier run in the same RUNDIR would keep their ports and data.
"$HERE/stop.sh" "$D"
rm -rf "$D/pki" "$D/etcd-data" "$D/certs"
mkdir -p "$D/pki"
cd "$D/pki"
t0=$(date +%s.%N)
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=rds-csi-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 30 \
  -extfile <(printf "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1") 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/CN=admin/O=system:masters" 2>/dev/null
openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 30 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
echo "admintoken,admin,admin,system:masters" > tokens.csv
cd "$D"

# --unsafe-no-fsync: test data need not survive a power cut, and fsync dominates etcd's latency.
EXTRA=""
"$ETCD" --help 2>&1 | grep -q unsafe-no-fsync && EXTRA="--unsafe-no-fsync"
"$ETCD" --name test --data-dir "$D/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "test=http://127.0.0.1:$((ETCD_PORT + 1))" \
  --listen-metrics-urls "" $EXTRA > etcd.log 2>&1 &
echo $! > etcd.pid

# kube-apiserver 1.37 on a loopback-only network needs --endpoint-reconciler-type=none with
# --advertise-address=127.0.0.1. Priority-and-fairness is off so that bursts of test requests are
# not queued by a flow-control configuration nobody bootstrapped. There is no controller-manager,
# so nothing would ever remove the pv/pvc-protection finalizers that StorageObjectInUseProtection
# adds: with it, deleting a test PV or PVC would hang forever.
"$KUBE_APISERVER" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 --secure-port="$KAS_PORT" --cert-dir="$D/certs" \
  --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key \
  --client-ca-file=pki/ca.crt --token-auth-file=pki/tokens.csv --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
  --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
  --disable-admission-plugins=ServiceAccount,StorageObjectInUseProtection --enable-priority-and-fairness=false \
  --endpoint-reconciler-type=none > kas.log 2>&1 &
echo $! > kas.pid

cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$KAS_PORT", certificate-authority: "$D/pki/ca.crt"}}]
users: [{name: admin, user: {client-certificate: "$D/pki/admin.crt", client-key: "$D/pki/admin.key"}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
current-context: local
KC
echo "RDS_CSI_KUBECONFIG=$D/kubeconfig" > env

t1=$(date +%s.%N)
for _ in $(seq 1 1200); do
  if curl -sf --cacert pki/ca.crt -H "Authorization: Bearer admintoken" \
      "https://127.0.0.1:$KAS_PORT/readyz" >/dev/null 2>&1; then
    t2=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v p="$KAS_PORT" 'BEGIN {
      printf "certs %.2fs; etcd+kube-apiserver ready on 127.0.0.1:%s after %.2fs\n", b - a, p, c - b }' >&2
    echo "export RDS_CSI_KUBECONFIG=$D/kubeconfig"
    exit 0
  fi
  kill -0 "$(cat etcd.pid)" 2>/dev/null || { echo "etcd exited:" >&2; tail -5 etcd.log >&2; "$HERE/stop.sh" "$D"; exit 1; }
  kill -0 "$(cat kas.pid)" 2>/dev/null || { echo "kube-apiserver exited:" >&2; tail -5 kas.log >&2; "$HERE/stop.sh" "$D"; exit 1; }
  sleep 0.1
done
echo "kube-apiserver not ready after 120s" >&2; tail -30 kas.log >&2; "$HERE/stop.sh" "$D"; exit 1
