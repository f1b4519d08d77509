// Package kube is the end-to-end proof of the controller's Kubernetes integration: the rds-csi binary runs
// as a process in controller mode against a real kube-apiserver (hack/kube/with-apiserver.sh, as `make test`
// and `make test-kube` run it) and the RDS simulator, and the tests drive it the way the cluster does:
// Nodes, PersistentVolumes and VolumeAttachments in the API server, CSI calls on its socket, /metrics over
// HTTP, SIGKILL and restarts, two replicas under leader election.
//
// Without RDS_CSI_KUBECONFIG the tests skip with the kubeenv reason. The binary is RDS_CSI_BINARY when set,
// otherwise built once per run from this checkout.
package kube
