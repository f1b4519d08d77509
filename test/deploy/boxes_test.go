package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rds-csi/rds-csi/internal/app"
)

// The chart's boxes file is one the driver accepts (app.LoadBoxes, as at start-up), and every key file it
// names is where the controller pod mounts that box's Secret.
func TestChartBoxesFileIsTheDriversFormat(t *testing.T) {
	objs := decodeObjects(t, render(t, "two-boxes-values.yaml", renderOptions{}))
	var boxesJSON string
	var mounts []string
	var args []string
	for _, o := range objs {
		switch {
		case o.GetKind() == "ConfigMap" && o.GetName() == "rds-csi-rds-boxes":
			boxesJSON, _, _ = unstructured.NestedString(o.Object, "data", "boxes.json")
		case o.GetKind() == "Deployment":
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				c := c.(map[string]any)
				if c["name"] != "rds-csi" {
					continue
				}
				for _, a := range c["args"].([]any) {
					args = append(args, a.(string))
				}
				for _, m := range c["volumeMounts"].([]any) {
					mounts = append(mounts, m.(map[string]any)["mountPath"].(string))
				}
			}
		}
	}
	if boxesJSON == "" {
		t.Fatal("no ConfigMap rds-csi-rds-boxes with boxes.json")
	}
	if !slices.Contains(args, "--rds-boxes-config=/etc/rds-csi-boxes-config/boxes.json") ||
		!slices.Contains(mounts, "/etc/rds-csi-boxes-config") {
		t.Fatalf("the controller does not read the boxes file: args %v, mounts %v", args, mounts)
	}
	path := filepath.Join(t.TempDir(), "boxes.json")
	if err := os.WriteFile(path, []byte(boxesJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := app.LoadBoxes(path)
	if err != nil {
		t.Fatalf("the driver refuses the chart's boxes file: %v\n%s", err, boxesJSON)
	}
	if f.DefaultBox != "main" || len(f.Boxes) != 2 {
		t.Fatalf("boxes file: %+v", f)
	}
	want := map[string]app.BoxConfig{
		"rds2": {Name: "rds2", Address: "192.0.2.20", User: "csi", BasePath: "raid1/k8s", NVMeAddress: "198.51.100.20"},
		"rds3": {Name: "rds3", Address: "192.0.2.30:2222", User: "k8s-csi", BasePath: "pool/k8s"},
	}
	for _, b := range f.Boxes {
		w := want[b.Name]
		w.KeyFile, w.HostKeyFile = "/etc/rds-csi-boxes/"+b.Name+"/ssh-privatekey", "/etc/rds-csi-boxes/"+b.Name+"/host-key"
		if b != w {
			t.Errorf("box %s: %+v, want %+v", b.Name, b, w)
		}
		if !slices.Contains(mounts, filepath.Dir(b.KeyFile)) {
			t.Errorf("box %s: its keys at %s are not mounted (mounts: %v)", b.Name, filepath.Dir(b.KeyFile), mounts)
		}
	}
}

// Mistakes in the list of boxes are refused by the schema, or by the chart, naming the value.
func TestChartRefusesBadBoxes(t *testing.T) {
	box := func(i int, kv ...string) []string {
		set := []string{}
		for j := 0; j+1 < len(kv); j += 2 {
			set = append(set, "boxes["+string(rune('0'+i))+"]."+kv[j]+"="+kv[j+1])
		}
		return set
	}
	ok := []string{"name", "rds2", "address", "192.0.2.20", "existingSecret", "s"}
	for _, tc := range []struct {
		name    string
		set     []string
		wantAll []string
		schema  bool
	}{
		{"upper-case name", box(0, "name", "RDS2", "address", "a", "existingSecret", "s"), []string{"/boxes/0/name", "pattern"}, true},
		{"name too long", box(0, "name", strings.Repeat("a", 33), "address", "a", "existingSecret", "s"), []string{"/boxes/0/name", "maxLength"}, true},
		{"no address", box(0, "name", "rds2", "existingSecret", "s"), []string{"/boxes/0", "address"}, true},
		{"no keys and no Secret", box(0, "name", "rds2", "address", "a"), []string{"/boxes/0", "privateKey"}, true},
		{"a host key that is not one", box(0, "name", "rds2", "address", "a", "privateKey", "-----BEGIN OPENSSH PRIVATE KEY-----", "hostKey", "x"),
			[]string{"/boxes/0/hostKey"}, true},
		{"unknown field", box(0, append(slices.Clone(ok), "password", "x")...), []string{"/boxes/0", "password"}, true},
		{"bad rdsBox in a StorageClass", []string{"storageClasses[0].name=x", "storageClasses[0].parameters.rdsBox=Nope"},
			[]string{"/storageClasses/0/parameters/rdsBox"}, true},
		{"bad rds.boxName", []string{"rds.boxName=Main"}, []string{"/rds/boxName"}, true},
		{"a name twice", append(box(0, ok...), box(1, ok...)...), []string{`the name "rds2" is taken`}, false},
		{"the default box's name", box(0, "name", "default", "address", "a", "existingSecret", "s"), []string{`the name "default" is taken`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelm(t, templateArgs("default-values.yaml", renderOptions{set: tc.set})...)
			if err == nil {
				t.Fatalf("helm accepted %v; rendered %d bytes", tc.set, len(out))
			}
			msg := err.Error()
			if tc.schema && !strings.Contains(msg, "values don't meet the specifications of the schema") {
				t.Fatalf("refused, but not by the schema: %v", msg)
			}
			for _, want := range tc.wantAll {
				if !strings.Contains(msg, want) {
					t.Errorf("error for %v does not mention %q:\n%s", tc.set, want, msg)
				}
			}
		})
	}
}
