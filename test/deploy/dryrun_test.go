package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// snapshotterClientModule holds the snapshot CRDs (config/crd) of the external-snapshotter release whose
// csi-snapshotter image the chart runs; TestSnapshotCRDsMatchTheSnapshotterImage keeps the two in step.
const snapshotterClientModule = "github.com/kubernetes-csi/external-snapshotter/client/v8"

// snapshotterVersion is the release of both the CRDs installed here and the chart's csi-snapshotter.
const snapshotterVersion = "v8.7.0"

// apiClient talks to the kube lane's API server with a dynamic client and a RESTMapper from discovery.
type apiClient struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
}

func newAPIClient(tb testing.TB, cfg *rest.Config) *apiClient {
	tb.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &apiClient{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
}

// resourceFor maps an object to its REST resource, namespaced or not.
func (c *apiClient) resourceFor(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: no such resource on the API server: %w", objectKey(o), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

// dryRunCreate sends o to the API server as a create with dryRun=All and strict field validation: the
// server defaults, validates and admits it exactly as it would for real, and stores nothing. Unknown
// or misspelt fields are errors, not warnings.
func (c *apiClient) dryRunCreate(ctx context.Context, o *unstructured.Unstructured) error {
	r, err := c.resourceFor(o)
	if err != nil {
		return err
	}
	_, err = r.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	if err != nil {
		return fmt.Errorf("%s refused: %w", objectKey(o), err)
	}
	return nil
}

// create creates o for real; an object that already exists (from an earlier test of the same run) is
// fine.
func (c *apiClient) create(ctx context.Context, o *unstructured.Unstructured) error {
	r, err := c.resourceFor(o)
	if err != nil {
		return err
	}
	_, err = r.Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s: %w", objectKey(o), err)
	}
	return nil
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installSnapshotCRDs creates the CRDs of the external-snapshotter client module (from the Go module
// cache, downloaded by `go mod download` if needed) and waits until they serve.
func installSnapshotCRDs(ctx context.Context, tb testing.TB, c *apiClient) {
	tb.Helper()
	dir := moduleDir(tb, snapshotterClientModule+"@"+snapshotterVersion)
	files, err := filepath.Glob(filepath.Join(dir, "config", "crd", "*.storage.k8s.io_*.yaml"))
	if err != nil || len(files) < 3 {
		tb.Fatalf("snapshot CRDs in %s/config/crd: %v (%d files)", dir, err, len(files))
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, crd := range decodeObjects(tb, data) {
			if err := c.create(ctx, crd); err != nil {
				tb.Fatalf("%s: %v", filepath.Base(f), err)
			}
			names = append(names, crd.GetName())
		}
	}
	for _, name := range names {
		waitEstablished(ctx, tb, c, name)
	}
	c.mapper.Reset()
}

func waitEstablished(ctx context.Context, tb testing.TB, c *apiClient, name string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		crd, err := c.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]interface{})
				if m["type"] == "Established" && m["status"] == "True" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("CRD %s not established after 30s (last error: %v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// moduleDir returns the module cache directory of module@version, downloading it through the Go module
// proxy when it is not cached. It runs outside the repository's module so go.mod is not touched.
func moduleDir(tb testing.TB, modVersion string) string {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	cmd.Dir = tb.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || runErr != nil || info.Error != "" || info.Dir == "" {
		tb.Fatalf("go mod download %s: %v %s %s", modVersion, errors.Join(runErr, err), info.Error, stderr.String())
	}
	return info.Dir
}

// podFromTemplate makes the Pod a Deployment or DaemonSet would create, so that pod admission
// (priority classes, security fields, host paths) is exercised too: the workloads' own dry run
// validates the template but does not admit a pod.
func podFromTemplate(tb testing.TB, o *unstructured.Unstructured) *unstructured.Unstructured {
	tb.Helper()
	tmpl, ok, err := unstructured.NestedMap(o.Object, "spec", "template")
	if err != nil || !ok {
		tb.Fatalf("%s has no pod template: %v", objectKey(o), err)
	}
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetNamespace(o.GetNamespace())
	pod.SetName(o.GetName() + "-dry-run")
	if o.GetKind() == "DaemonSet" {
		// What the DaemonSet controller adds: the pod is bound to one node.
		if err := unstructured.SetNestedField(pod.Object, "node-dry-run", "spec", "nodeName"); err != nil {
			tb.Fatal(err)
		}
	}
	return pod
}

// TestServerSideDryRun sends every object of every chart variant, of the kustomize base and of the
// README's kustomize overlay to the real kube-apiserver as a dry-run create, with the snapshot CRDs
// installed: all must be accepted. The ServiceMonitor is the one object left out (its CRD is not
// available here); TestServiceMonitorMatchesTheOperatorsType checks it against the operator's Go type.
func TestServerSideDryRun(t *testing.T) {
	cfg := kubeenv.RestConfig(t)
	warnings := &warningRecorder{}
	cfg.WarningHandler = warnings
	kubeenv.WaitReady(t, kubeenv.NewClient(t, cfg), 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newAPIClient(t, cfg)
	installSnapshotCRDs(ctx, t, c)

	sources := map[string][]byte{}
	for _, v := range variants {
		sources["chart "+v.name] = render(t, v.valuesFile, renderOptions{})
	}
	sources["kustomize base"] = kustomizeBuild(t, kustomizeBaseDir(t))
	sources["README kustomize overlay"] = kustomizeBuild(t, writeExampleOverlay(t))

	for name, manifest := range sources {
		t.Run(name, func(t *testing.T) {
			objs := decodeObjects(t, manifest)
			warnings.take()
			accepted := 0
			for _, o := range objs {
				if o.GetKind() == "ServiceMonitor" {
					t.Logf("%s not sent: no monitoring.coreos.com CRD is available from the Go module proxy", objectKey(o))
					continue
				}
				if err := c.dryRunCreate(ctx, o); err != nil {
					t.Error(err)
					continue
				}
				accepted++
				if o.GetKind() == "Deployment" || o.GetKind() == "DaemonSet" {
					if err := c.dryRunCreate(ctx, podFromTemplate(t, o)); err != nil {
						t.Errorf("pod of %v", err)
					}
				}
			}
			if accepted < 15 {
				t.Errorf("only %d objects accepted; expected the whole install", accepted)
			}
			// Accepted with a warning (a duplicate port name, a deprecated field) is not good enough.
			for _, w := range warnings.take() {
				t.Errorf("API server warning: %s", w)
			}
		})
	}
}

// warningRecorder keeps the API server's warnings (the Warning response header) instead of logging
// them, so the test can fail on them.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, text)
	w.mu.Unlock()
}

// take returns the warnings so far and forgets them.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// writeExampleOverlay writes, in a temporary directory, the overlay the README's "Install with
// kustomize" shows, with throw-away key files, and returns its directory.
func writeExampleOverlay(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, kustomizeBaseDir(t))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"kustomization.yaml": strings.ReplaceAll(exampleOverlay, "BASE", rel),
		"id_ed25519":         "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n-----END OPENSSH PRIVATE KEY-----\n",
		"rds_host_key":       "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholder\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exampleOverlay is the README's overlay, word for word but for the path of the base (BASE).
const exampleOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - BASE
secretGenerator:
  - name: rds-csi-rds-credentials
    namespace: kube-system
    files:
      - ssh-privatekey=id_ed25519
      - host-key=rds_host_key
    options:
      disableNameSuffixHash: true
patches:
  - target: {kind: ConfigMap, name: rds-csi-rds-connection}
    patch: |
      - op: replace
        path: /data/rds-address
        value: 10.0.0.5
      - op: replace
        path: /data/base-path
        value: raid1/k8s
`

// TestHelmInstallDryRun runs `helm install --dry-run=server` against the kube lane's API server: helm
// reads the cluster's real capabilities (the snapshot CRDs are there, so the VolumeSnapshotClass is
// rendered) and renders NOTES.txt, which `helm template` never does, so a broken NOTES would only show
// at a user's install.
func TestHelmInstallDryRun(t *testing.T) {
	cfg := kubeenv.RestConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	installSnapshotCRDs(ctx, t, newAPIClient(t, cfg))
	out, err := runHelm(t, "install", "rds-csi-dry-run", ".", "--dry-run=server", "--namespace", "kube-system",
		"--kubeconfig", os.Getenv(kubeenv.EnvKubeconfig), "--values", filepath.Join("ci", "default-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest, notes, ok := strings.Cut(string(out), "\nNOTES:\n")
	if !ok {
		t.Fatalf("no NOTES in helm's output:\n%s", out)
	}
	for _, want := range []string{"rds.csi.srvlab.io", "192.0.2.10", "kubectl -n kube-system logs deploy/rds-csi-dry-run-controller -c rds-csi",
		"storageClassName: rds-nvme", "rds-csi-dry-run-controller-metrics"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES do not mention %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "WARNING") {
		t.Errorf("NOTES warn although the snapshot CRDs are installed:\n%s", notes)
	}
	if !strings.Contains(manifest, "kind: VolumeSnapshotClass") {
		t.Error("no VolumeSnapshotClass rendered although the cluster has the CRD")
	}
}
