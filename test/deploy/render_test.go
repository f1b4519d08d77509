// Package deploy tests what the cluster operator installs: the Helm chart in deploy/helm/rds-csi, the
// kustomize base in deploy/kubernetes and the images' Dockerfiles. Rendering needs only helm, which the
// tests build themselves through hack/helm.sh; the server-side dry run and the RBAC proof need the kube
// lane's API server (RDS_CSI_KUBECONFIG, see test/kubeenv) and skip without it.
package deploy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/rds-csi/rds-csi/test/procenv"
)

var update = flag.Bool("update", false, "rewrite the golden files and the kustomize base from the chart")

// kubeVersion is the Kubernetes version the chart is rendered for: the kube lane's API server.
const kubeVersion = "v1.37.2"

// snapshotAPI tells helm the cluster has the snapshot CRDs, as the dry-run cluster does, so that the
// chart renders its VolumeSnapshotClasses.
const snapshotAPI = "snapshot.storage.k8s.io/v1/VolumeSnapshotClass"

// variant is one way of installing the chart, from one of the chart's ci/ values files.
type variant struct {
	name       string // golden file name
	valuesFile string // under deploy/helm/rds-csi/ci, or an absolute path
	why        string
}

var variants = []variant{
	{"default", "default-values.yaml", "only the required values: the chart's defaults"},
	{"existing-secret-no-snapshots", "existing-secret-values.yaml",
		"keys from the operator's Secret, no snapshotter, IPv6 address with port, moved kubelet dir"},
	{"capacity-servicemonitor-1-replica", "capacity-monitoring-values.yaml",
		"one replica (no PDB), storage capacity, ServiceMonitor and Grafana dashboard"},
	{"two-boxes", "two-boxes-values.yaml",
		"the default box and two more (keys in values, and in a Secret of their own), a StorageClass per box, storage capacity"},
}

// repoRoot is the repository's top directory (this file is test/deploy/render_test.go).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot find the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func chartDir(tb testing.TB) string { return filepath.Join(repoRoot(tb), "deploy", "helm", "rds-csi") }

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helm returns the helm binary, built and cached by hack/helm.sh on first use (about 90 s on a fresh
// machine, instant afterwards).
func helm(tb testing.TB) string {
	tb.Helper()
	helmOnce.Do(func() {
		var stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(repoRoot(tb), "hack", "helm.sh"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("hack/helm.sh: %w\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(string(out))
	})
	if helmErr != nil {
		tb.Fatal(helmErr)
	}
	return helmPath
}

// runHelm runs helm with args in the chart's directory and returns its standard output; a failure
// returns the error with helm's standard error in it.
func runHelm(tb testing.TB, args ...string) ([]byte, error) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm(tb), args...)
	cmd.Dir = chartDir(tb)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// helm reads its own config and caches from these; keep them out of the user's home.
	home := tb.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// renderOptions change how the chart is rendered beyond the variant's values file.
type renderOptions struct {
	release, namespace string
	set                []string // --set key=value
}

// templateArgs are the `helm template` arguments of a render.
func templateArgs(valuesFile string, o renderOptions) []string {
	if o.release == "" {
		o.release = "rds-csi"
	}
	if o.namespace == "" {
		o.namespace = "kube-system"
	}
	args := []string{"template", o.release, ".", "--namespace", o.namespace, "--kube-version", kubeVersion,
		"--api-versions", snapshotAPI}
	switch {
	case filepath.IsAbs(valuesFile):
		args = append(args, "--values", valuesFile)
	case valuesFile != "":
		args = append(args, "--values", filepath.Join("ci", valuesFile))
	}
	for _, s := range o.set {
		args = append(args, "--set", s)
	}
	return args
}

// render runs `helm template` for the values file and fails tb on error.
func render(tb testing.TB, valuesFile string, o renderOptions) []byte {
	tb.Helper()
	out, err := runHelm(tb, templateArgs(valuesFile, o)...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// decodeObjects splits a multi-document YAML stream into objects, skipping empty documents.
func decodeObjects(tb testing.TB, manifest []byte) []*unstructured.Unstructured {
	tb.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]interface{}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			tb.Fatalf("decoding rendered YAML: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// objectKey names an object in messages and maps: Kind namespace/name.
func objectKey(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return o.GetKind() + " " + ns + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// containers returns the containers (init containers first) of a Deployment's or DaemonSet's pod
// template, nil for other kinds.
func containers(tb testing.TB, o *unstructured.Unstructured) []map[string]interface{} {
	tb.Helper()
	if o.GetKind() != "Deployment" && o.GetKind() != "DaemonSet" {
		return nil
	}
	var out []map[string]interface{}
	for _, field := range []string{"initContainers", "containers"} {
		list, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
		if err != nil {
			tb.Fatalf("%s: %v", objectKey(o), err)
		}
		for _, c := range list {
			out = append(out, c.(map[string]interface{}))
		}
	}
	return out
}

// stringList reads a list of strings such as a container's args.
func stringList(m map[string]interface{}, key string) []string {
	raw, _ := m[key].([]interface{})
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// flagName returns the name of a --flag[=value] argument, or "" for anything else.
func flagName(arg string) string {
	if !strings.HasPrefix(arg, "-") {
		return ""
	}
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	return name
}

// TestMain removes the driver binary built for the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	procenv.RemoveBuilt()
	os.Exit(code)
}
