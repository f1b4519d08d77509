//go:build e2ekube

package e2ekube

import (
	"fmt"
	"os"
	"path/filepath"
)

// env is what hack/e2e-kube/e2e.sh hands the tests: where the cluster runs and the binaries it built.
type env struct {
	dir        string // the lane's run directory: kubeconfig, kubelet's root dir, podlogs, logs
	kubeconfig string // admin (system:masters) kubeconfig
	kubectl    string
	helm       string
	driver     string // bin/rds-csi
	sim        string // bin/rds-sim
	registrar  string // the node-driver-registrar stand-in (hack/e2e-kube/tools/registrar)
	sidecars   string // the sidecar cache, <name>/<version>/<binary>
	chart      string // deploy/helm/rds-csi
	values     string // hack/e2e-kube/values.yaml
}

// envVars names the variables e2e.sh sets, in the order env fills them.
var envVars = []string{"E2E_KUBE_DIR", "E2E_KUBE_KUBECTL", "E2E_KUBE_HELM", "RDS_CSI_BINARY", "RDS_SIM_BINARY",
	"E2E_KUBE_REGISTRAR", "E2E_KUBE_SIDECARS"}

// loadEnv reads the lane's environment; the error names what is missing.
func loadEnv() (*env, error) {
	v := make([]string, len(envVars))
	for i, name := range envVars {
		v[i] = os.Getenv(name)
		if v[i] == "" {
			return nil, fmt.Errorf("%s is not set: run make e2e-kube (hack/e2e-kube/e2e.sh), which builds and starts the cluster", name)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	e := &env{dir: v[0], kubeconfig: filepath.Join(v[0], "kubeconfig"), kubectl: v[1], helm: v[2], driver: v[3],
		sim: v[4], registrar: v[5], sidecars: v[6], chart: filepath.Join(root, "deploy/helm/rds-csi"),
		values: filepath.Join(root, "hack/e2e-kube/values.yaml")}
	for _, p := range []string{e.kubeconfig, e.kubectl, e.helm, e.driver, e.sim, e.registrar, e.sidecars, e.chart, e.values} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return e, nil
}
