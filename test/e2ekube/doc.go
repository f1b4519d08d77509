// Package e2ekube is the kube lane (make e2e-kube): a real single-node Kubernetes (kubelet, containerd,
// the control plane, started by hack/e2e-kube/cluster.sh), the rds-sim process as the RDS, and the
// driver with its sidecars run as processes with exactly the arguments the Helm chart renders, so that
// what a user installs is what is tested: PVCs provisioned, attached, staged and published through the
// whole chain and used by real Pods.
//
// The tests build only with the e2ekube tag, so `go test ./...` (make test) leaves them out: they need the
// cluster that hack/e2e-kube/e2e.sh builds and starts, and the environment it sets (E2E_KUBE_DIR and the
// binaries' paths). Run with the tag but without that environment, every test skips naming what is
// missing, and fails under CI=true.
package e2ekube
