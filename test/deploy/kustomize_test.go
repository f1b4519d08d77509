package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kustomize base is the chart's rendering with testdata/kustomize-base-values.yaml, one file per
// chart template, without the two labels that only make sense under Helm. Generating it keeps the
// promise that the base is equivalent to the chart; TestKustomizeBaseMatchesChart holds it to that.

func kustomizeBaseDir(tb testing.TB) string {
	return filepath.Join(repoRoot(tb), "deploy", "kubernetes")
}

func kustomizeBaseValues(tb testing.TB) string {
	path, err := filepath.Abs(filepath.Join("testdata", "kustomize-base-values.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// helmOnlyLabel matches the label lines that name Helm as the manager; kustomize users have none.
var helmOnlyLabel = regexp.MustCompile(`(?m)^\s+(helm\.sh/chart: .*|app\.kubernetes\.io/managed-by: Helm)\n`)

// dropHelmLabels removes those labels from decoded objects, for comparisons.
func dropHelmLabels(objs []*unstructured.Unstructured) {
	for _, o := range objs {
		labels := o.GetLabels()
		delete(labels, "helm.sh/chart")
		delete(labels, "app.kubernetes.io/managed-by")
		o.SetLabels(labels)
	}
}

var sourceLine = regexp.MustCompile(`^# Source: rds-csi/templates/(.+\.yaml)$`)

// splitBySource groups helm's output by the template each document came from.
func splitBySource(tb testing.TB, manifest []byte) map[string][]string {
	tb.Helper()
	files := map[string][]string{}
	for _, doc := range strings.Split(string(manifest), "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---\n")
		if doc == "" {
			continue
		}
		first, rest, _ := strings.Cut(doc, "\n")
		m := sourceLine.FindStringSubmatch(first)
		if m == nil {
			tb.Fatalf("a rendered document does not start with helm's Source line: %.80q", doc)
		}
		files[m[1]] = append(files[m[1]], rest)
	}
	return files
}

// writeKustomizeBase regenerates deploy/kubernetes from the chart.
func writeKustomizeBase(tb testing.TB, manifest []byte) {
	tb.Helper()
	dir := kustomizeBaseDir(tb)
	old, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			tb.Fatal(err)
		}
	}
	header := "# Generated from the Helm chart deploy/helm/rds-csi by `go test ./test/deploy -run KustomizeBase -update`\n" +
		"# (values: test/deploy/testdata/kustomize-base-values.yaml). Change the chart, not this file.\n"
	files := splitBySource(tb, helmOnlyLabel.ReplaceAll(manifest, nil))
	names := make([]string, 0, len(files))
	for name, docs := range files {
		names = append(names, name)
		body := header + "---\n" + strings.Join(docs, "\n---\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	sort.Strings(names)
	var k bytes.Buffer
	k.WriteString(header)
	k.WriteString(`# The chart's defaults as a kustomize base. Before applying it, in an overlay:
#   - create the Secret rds-csi-rds-credentials in kube-system with the keys ssh-privatekey and host-key;
#   - patch the ConfigMap rds-csi-rds-connection with your RDS's address (rds-address), and base-path;
#   - drop volumesnapshotclasses.yaml's object if the cluster has no snapshot CRDs.
# See "Install with kustomize" in the README.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
`)
	for _, name := range names {
		fmt.Fprintf(&k, "  - %s\n", name)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// kustomizeBuild renders a kustomization directory with the kustomize library (what `kubectl
// kustomize` runs).
func kustomizeBuild(tb testing.TB, dir string) []byte {
	tb.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		tb.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resources.AsYaml()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestKustomizeBaseMatchesChart builds deploy/kubernetes with kustomize and compares every object with
// the chart's rendering of the same values: same objects, same content.
func TestKustomizeBaseMatchesChart(t *testing.T) {
	manifest := render(t, kustomizeBaseValues(t), renderOptions{})
	if *update {
		writeKustomizeBase(t, manifest)
	}
	fromChart := decodeObjects(t, manifest)
	dropHelmLabels(fromChart)
	fromBase := decodeObjects(t, kustomizeBuild(t, kustomizeBaseDir(t)))

	want := map[string]*unstructured.Unstructured{}
	for _, o := range fromChart {
		want[objectKey(o)] = o
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range fromBase {
		got[objectKey(o)] = o
	}
	for key, w := range want {
		g, ok := got[key]
		switch {
		case !ok:
			t.Errorf("%s is in the chart but not in the kustomize base", key)
		case !reflect.DeepEqual(w.Object, g.Object):
			t.Errorf("%s differs between the chart and the kustomize base (regenerate with -update)", key)
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("%s is in the kustomize base but not in the chart", key)
		}
	}
	if len(want) < 15 {
		t.Errorf("only %d objects compared", len(want))
	}
}

// TestREADMEShowsTheTestedOverlay keeps the README's kustomize overlay the one the dry run checks.
func TestREADMEShowsTheTestedOverlay(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(exampleOverlay, "BASE", "../rds-csi/deploy/kubernetes")
	if !strings.Contains(string(readme), "```yaml\n"+want+"```") {
		t.Errorf("README.md does not show this overlay (the one TestServerSideDryRun applies):\n%s", want)
	}
}
