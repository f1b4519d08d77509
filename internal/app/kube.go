package app

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// serviceAccountNamespaceFile is where Kubernetes mounts the pod's namespace next to its token.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Client-side rate limits of the controller's API client. client-go's defaults (5 per second, bursts
// of 10) would queue the events of a burst of attach conflicts behind each other; the informers'
// watches and the leader election's renewals are few and do not need more.
const (
	kubeQPS   = 20
	kubeBurst = 50
)

// kubeRestConfig returns the configuration of the controller's Kubernetes client: from the kubeconfig
// file when one is given, from the pod's service account when the process runs in a cluster, and nil
// (no Kubernetes: attachments are kept in memory) otherwise. Running in a pod whose service account
// token cannot be read is an error rather than a silent fall-back, since a controller without the
// VolumeAttachments would grant attaches that Kubernetes knows to conflict.
func kubeRestConfig(kubeconfig, version string) (*rest.Config, string, error) {
	var cfg *rest.Config
	var source string
	var err error
	if kubeconfig != "" {
		source = "kubeconfig " + kubeconfig
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, "", fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		source = "in-cluster service account"
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("running in a Kubernetes pod but its service account cannot be used "+
				"(is automountServiceAccountToken off?): %w", err)
		}
	}
	cfg.QPS, cfg.Burst = kubeQPS, kubeBurst
	cfg.UserAgent = "rds-csi-controller/" + version
	return cfg, source, nil
}

// leaderElectionNamespace is where the controller's Lease lives when --leader-election-namespace is not
// given: the pod's own namespace (POD_NAMESPACE, set through the downward API, or the service account's
// namespace file), else "default".
func leaderElectionNamespace(getenv func(string) string, readFile func(string) ([]byte, error)) string {
	if ns := strings.TrimSpace(getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := readFile(serviceAccountNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// defaultLeaderElectionNamespace reads the real environment and file system.
func defaultLeaderElectionNamespace() string {
	return leaderElectionNamespace(os.Getenv, os.ReadFile)
}

var notLeaseNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// leaseName is the Lease shared by the controller replicas of one driver name, in the style of the
// sidecars' (external-attacher-leader-rds-csi-srvlab-io): two drivers installed side by side under
// different names elect their leaders independently.
func leaseName(driverName string) string {
	name := notLeaseNameChars.ReplaceAllString(strings.ToLower(driverName), "-")
	return "rds-csi-controller-" + strings.Trim(name, "-")
}

// migrationCheckInterval is how often the leader looks for migrations over their window: a tenth of the
// window, so a warning comes at most 10% late, between 1 s (cheap: the check reads memory only) and 30 s.
func migrationCheckInterval(window time.Duration) time.Duration {
	return min(max(window/10, time.Second), 30*time.Second)
}

// logKubeClient says where the controller's view of the cluster comes from.
func logKubeClient(cfg *rest.Config, source string) {
	if cfg == nil {
		klog.InfoS("No Kubernetes API (neither --kubeconfig nor in a cluster): attachments are kept in memory " +
			"and the only known node is this driver's own node id")
		return
	}
	klog.InfoS("Kubernetes API client", "source", source, "host", cfg.Host)
}
