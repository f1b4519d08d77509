package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/observability"
)

func TestLeaderElectionNamespace(t *testing.T) {
	tests := []struct {
		name      string
		env, file string
		fileErr   bool
		want      string
	}{
		{name: "downward API wins", env: "storage", file: "from-sa", want: "storage"},
		{name: "service account file", file: "csi-system\n", want: "csi-system"},
		{name: "blank variable falls through", env: "  ", file: "csi-system", want: "csi-system"},
		{name: "outside a pod", fileErr: true, want: "default"},
		{name: "empty file", file: "", want: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "POD_NAMESPACE" {
					return tc.env
				}
				return ""
			}
			readFile := func(p string) ([]byte, error) {
				if p != serviceAccountNamespaceFile {
					t.Errorf("read %s, want the service account's namespace file", p)
				}
				if tc.fileErr {
					return nil, os.ErrNotExist
				}
				return []byte(tc.file), nil
			}
			if got := leaderElectionNamespace(getenv, readFile); got != tc.want {
				t.Errorf("namespace %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLeaseNameIsAValidObjectName(t *testing.T) {
	tests := []struct{ driver, want string }{
		{driver.DefaultDriverName, "rds-csi-controller-rds-csi-srvlab-io"},
		{"RDS.Example.COM", "rds-csi-controller-rds-example-com"},
		{"t1abc.test.rds.csi.srvlab.io", "rds-csi-controller-t1abc-test-rds-csi-srvlab-io"},
		{"-odd_name-", "rds-csi-controller-odd-name"},
	}
	for _, tc := range tests {
		got := leaseName(tc.driver)
		if got != tc.want {
			t.Errorf("leaseName(%q) = %q, want %q", tc.driver, got, tc.want)
		}
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("leaseName(%q) = %q is not a valid Lease name: %v", tc.driver, got, errs)
		}
	}
}

func TestMigrationCheckInterval(t *testing.T) {
	tests := []struct{ window, want time.Duration }{
		{attachment.DefaultMigrationWindow, 30 * time.Second},
		{time.Hour, 30 * time.Second},
		{time.Minute, 6 * time.Second},
		{3 * time.Second, time.Second},
		{time.Millisecond, time.Second},
	}
	for _, tc := range tests {
		if got := migrationCheckInterval(tc.window); got != tc.want {
			t.Errorf("window %s: interval %s, want %s", tc.window, got, tc.want)
		}
	}
}

const testKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: secret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`

func TestKubeRestConfigSources(t *testing.T) {
	// Outside a pod whatever the machine running the test: client-go decides from these variables.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	dir := t.TempDir()
	good := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(good, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("clusters: [nonsense"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg, _, err := kubeRestConfig(good, "v9")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerToken != "secret" || cfg.UserAgent != "rds-csi-controller/v9" ||
		cfg.QPS != kubeQPS || cfg.Burst != kubeBurst {
		t.Errorf("from kubeconfig: host %q token set %t agent %q qps %v burst %d", cfg.Host, cfg.BearerToken != "",
			cfg.UserAgent, cfg.QPS, cfg.Burst)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing")} {
		if _, _, err := kubeRestConfig(path, "v9"); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
			t.Errorf("kubeconfig %s: error %v, want one naming --kubeconfig", path, err)
		}
	}
	cfg, _, err = kubeRestConfig("", "v9")
	if err != nil || cfg != nil {
		t.Errorf("outside a cluster without --kubeconfig: config %v, error %v; want neither (in-memory mode)", cfg, err)
	}
}

func TestKubeRestConfigInAPodWithoutToken(t *testing.T) {
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token"); err == nil {
		t.Skip("this machine has a service account token mounted, so the in-cluster config would succeed")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	_, _, err := kubeRestConfig("", "v9")
	if err == nil || !strings.Contains(err.Error(), "service account") {
		t.Errorf("in a pod without a token: error %v, want one about the service account", err)
	}
}

// TestInMemoryControllerRunsItsLoops: without any cluster the single process is the leader, and its
// loops stop with it.
func TestInMemoryControllerRunsItsLoops(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	metrics := observability.NewMetrics()
	m := attachment.NewManager(attachment.Options{})
	bg, err := startControllerBackground(context.Background(), Config{DriverName: driver.DefaultDriverName, LeaderElection: true}, m, metrics)
	if err != nil {
		t.Fatal(err)
	}
	if bg.nodes != nil {
		t.Errorf("node check %T without Kubernetes, want none (only the driver's own node id)", bg.nodes)
	}
	leader := func() float64 {
		n, err := testutil.GatherAndCount(metrics.Registry(), observability.ControllerLeaderName)
		if err != nil || n != 1 {
			t.Fatalf("%s: %d series, %v", observability.ControllerLeaderName, n, err)
		}
		mfs, _ := metrics.Registry().Gather()
		for _, mf := range mfs {
			if mf.GetName() == observability.ControllerLeaderName {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	deadline := time.Now().Add(10 * time.Second)
	for leader() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed %v without Kubernetes, want 1", observability.ControllerLeaderName, leader())
		}
		time.Sleep(10 * time.Millisecond)
	}
	bg.stop()
	if v := leader(); v != 0 {
		t.Errorf("%s = %v after stop, want 0", observability.ControllerLeaderName, v)
	}
}
