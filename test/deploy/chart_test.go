package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"

	"github.com/rds-csi/rds-csi/test/procenv"
)

// TestHelmLint lints the chart with each variant's values (lint with the bare defaults would fail on
// purpose: the RDS address and keys are required).
func TestHelmLint(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out, err := runHelm(t, "lint", ".", "--strict", "--kube-version", kubeVersion,
				"--values", filepath.Join("ci", v.valuesFile))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !bytes.Contains(out, []byte("0 chart(s) failed")) {
				t.Fatalf("helm lint did not pass:\n%s", out)
			}
		})
	}
}

// TestTemplateGolden compares each variant's whole rendering with testdata/golden/<variant>.yaml.
// After an intended change, rewrite them with `go test ./test/deploy -run Golden -update` and review
// the diff.
func TestTemplateGolden(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			got := render(t, v.valuesFile, renderOptions{})
			path := filepath.Join("testdata", "golden", v.name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendering of %q (%s) differs from %s; rerun with -update if intended:\n%s",
					v.name, v.why, path, firstDifference(string(want), string(got)))
			}
		})
	}
}

// firstDifference shows the first line where two texts differ, with a little context.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return "(same lines, different bytes)"
}

// TestSchemaRejectsBadValues gives values.schema.json wrong values of several kinds; helm must refuse
// each with a message naming the value, before anything reaches a cluster.
func TestSchemaRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		// wantAll must all appear in helm's error: the value's path and what is wrong with it.
		wantAll []string
	}{
		{"missing RDS address", []string{"rds.address="}, []string{"/rds/address", "minLength"}},
		{"address that is not HOST[:PORT]", []string{"rds.address=ssh://rds:22"}, []string{"/rds/address", "pattern"}},
		{"no key and no existing Secret", []string{"rds.privateKey="}, []string{"/rds/privateKey"}},
		{"host key that is not an SSH key", []string{"rds.hostKey=trust-me"}, []string{"/rds/hostKey"}},
		{"wrong type", []string{"controller.replicas=two"}, []string{"/controller/replicas", "integer"}},
		{"zero replicas", []string{"controller.replicas=0"}, []string{"/controller/replicas", "minimum"}},
		{"port out of range", []string{"rds.nvmePort=70000"}, []string{"/rds/nvmePort", "maximum"}},
		{"unknown reclaim policy", []string{"storageClasses[0].name=x", "storageClasses[0].reclaimPolicy=Keep"},
			[]string{"/storageClasses/0/reclaimPolicy"}},
		{"misspelt StorageClass parameter", []string{"storageClasses[0].name=x",
			"storageClasses[0].parameters.ctrlLossTimeout=600"}, []string{"/storageClasses/0/parameters", "ctrlLossTimeout"}},
		{"unsupported fsType", []string{"storageClasses[0].name=x", "storageClasses[0].parameters.fsType=btrfs"},
			[]string{"/storageClasses/0/parameters/fsType"}},
		{"hostAccessControl that is not a boolean", []string{"storageClasses[0].name=x",
			"storageClasses[0].parameters.hostAccessControl=yes"}, []string{"/storageClasses/0/parameters/hostAccessControl"}},
		{"base path without a directory", []string{"rds.basePath=raid1"}, []string{"/rds/basePath", "pattern"}},
		{"duration without a unit", []string{"rds.commandTimeout=30"}, []string{"/rds/commandTimeout"}},
		{"misspelt top-level key", []string{"controler.replicas=1"}, []string{"controler"}},
		{"image tag with a space", []string{"images.controller.tag=v1 beta"}, []string{"/images/controller/tag"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelm(t, templateArgs("default-values.yaml", renderOptions{set: tc.set})...)
			if err == nil {
				t.Fatalf("helm accepted %v; rendered %d bytes", tc.set, len(out))
			}
			msg := err.Error()
			if !strings.Contains(msg, "values don't meet the specifications of the schema") {
				t.Fatalf("refused, but not by the schema: %v", msg)
			}
			for _, want := range tc.wantAll {
				if !strings.Contains(msg, want) {
					t.Errorf("error for %v does not mention %q:\n%s", tc.set, want, msg)
				}
			}
		})
	}
	t.Run("existing Secret needs no keys", func(t *testing.T) {
		render(t, "", renderOptions{set: []string{"rds.address=rds", "rds.existingSecret=mine"}})
	})
}

// helpFlag matches a flag in the Go flag package's usage output ("  -rds-address string").
var helpFlag = regexp.MustCompile(`(?m)^\s+-([a-z0-9][a-z0-9-_]*)`)

// TestDriverFlagsExist checks every --flag the chart passes to the driver, in every variant, against the
// flags of the driver built from this tree: a flag it does not know would stop it at start-up.
func TestDriverFlagsExist(t *testing.T) {
	var help bytes.Buffer
	cmd := exec.Command(procenv.DriverBinary(t), "--help")
	cmd.Stdout, cmd.Stderr = &help, &help
	_ = cmd.Run() // --help exits 0 or 2 depending on the Go version; the text is what matters
	known := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(help.String(), -1) {
		known[m[1]] = true
	}
	if !known["rds-address"] || !known["v"] {
		t.Fatalf("could not read the driver's flags from --help:\n%s", help.String())
	}
	for _, v := range variants {
		checked := 0
		for _, o := range decodeObjects(t, render(t, v.valuesFile, renderOptions{})) {
			for _, c := range containers(t, o) {
				if c["name"] != "rds-csi" {
					continue
				}
				for _, arg := range stringList(c, "args") {
					name := flagName(arg)
					if name == "" {
						t.Errorf("%s: %s container: argument %q is not a flag", v.name, objectKey(o), arg)
						continue
					}
					checked++
					if !known[name] {
						t.Errorf("%s: %s passes --%s, which rds-csi does not have", v.name, objectKey(o), name)
					}
				}
			}
		}
		if checked < 10 {
			t.Errorf("%s: only %d driver flags found in the rendering; are the containers still named rds-csi?", v.name, checked)
		}
	}
}

// TestServiceMonitorMatchesTheOperatorsType decodes the rendered ServiceMonitor strictly into the
// Prometheus Operator's own Go type: the dry run cannot check it, since the operator's CRD YAML is not
// available from the Go module proxy (only its API types module is).
func TestServiceMonitorMatchesTheOperatorsType(t *testing.T) {
	found := 0
	for _, v := range variants {
		for _, o := range decodeObjects(t, render(t, v.valuesFile, renderOptions{})) {
			if o.GetKind() != "ServiceMonitor" {
				continue
			}
			found++
			raw, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			var sm monitoringv1.ServiceMonitor
			if err := yaml.UnmarshalStrict(raw, &sm); err != nil {
				t.Fatalf("%s: %s is not a valid ServiceMonitor: %v", v.name, objectKey(o), err)
			}
			if o.GetAPIVersion() != monitoringv1.SchemeGroupVersion.String() {
				t.Errorf("apiVersion %s, want %s", o.GetAPIVersion(), monitoringv1.SchemeGroupVersion)
			}
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" {
				t.Errorf("endpoints %+v: want one, on the Services' port named metrics", sm.Spec.Endpoints)
			}
			// Its selector must pick both metrics Services of the same rendering.
			services := 0
			for _, s := range decodeObjects(t, render(t, v.valuesFile, renderOptions{})) {
				if s.GetKind() == "Service" && labelsMatch(sm.Spec.Selector.MatchLabels, s.GetLabels()) {
					services++
				}
			}
			if services != 2 {
				t.Errorf("the ServiceMonitor selects %d Services, want the controller's and the node's", services)
			}
		}
	}
	if found == 0 {
		t.Fatal("no variant renders a ServiceMonitor")
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestImagesArePinned refuses floating image tags in the default rendering: an upgrade of a sidecar
// must be a reviewed change of values.yaml.
func TestImagesArePinned(t *testing.T) {
	var images []string
	for _, o := range decodeObjects(t, render(t, "default-values.yaml", renderOptions{})) {
		for _, c := range containers(t, o) {
			images = append(images, c["image"].(string))
		}
	}
	sort.Strings(images)
	pinned := regexp.MustCompile(`^[a-z0-9.-]+(/[a-z0-9._-]+)+:v?[0-9]+\.[0-9]+\.[0-9]+$`)
	for _, img := range images {
		if !pinned.MatchString(img) {
			t.Errorf("image %q is not pinned to a version tag", img)
		}
	}
	if len(images) < 9 {
		t.Errorf("only %d containers in the default rendering: %v", len(images), images)
	}
}
