package inventory

import (
	"context"
	"os"
	"reflect"
	"testing"
)

func TestParseFile(t *testing.T) {
	f, err := ReadFile("testdata/cluster.json", "rds.csi.srvlab.io")
	if err != nil {
		t.Fatal(err)
	}
	pvs, _ := f.PersistentVolumes(context.Background())
	if want := []Ref{{Name: "pvc-0a1b", Handle: "pvc-0a1b", SizeBytes: 5 << 30, BasePath: "pool/k8s"}}; !reflect.DeepEqual(pvs, want) {
		t.Errorf("PVs %+v, want %+v", pvs, want)
	}
	contents, known, _ := f.SnapshotContents(context.Background())
	want := []Ref{{Name: "snapcontent-1", Handle: "snapshot-1", SizeBytes: 5 << 30}, {Name: "pre-provisioned", Handle: "snapshot-2"}}
	if !known || !reflect.DeepEqual(contents, want) {
		t.Errorf("contents %+v known=%v, want %+v", contents, known, want)
	}

	for name, tc := range map[string]struct {
		in         string
		pvs, known bool
		bad        bool
	}{
		"yaml list":         {in: "kind: List\nitems:\n- kind: PersistentVolume\n  metadata: {name: a}\n  spec: {csi: {driver: d, volumeHandle: h}}\n", pvs: true},
		"single pv":         {in: `{"kind":"PersistentVolume","metadata":{"name":"a"},"spec":{"csi":{"driver":"d","volumeHandle":"h"}}}`, pvs: true},
		"empty list":        {in: `{"kind":"List","items":[]}`},
		"empty content set": {in: `{"kind":"List","items":[{"kind":"VolumeSnapshotContent","metadata":{"name":"x"},"spec":{"driver":"other"}}]}`, known: true},
		"not an object":     {in: `[1,2]`, bad: true},
		"items not a list":  {in: `{"items":3}`, bad: true},
		"item not object":   {in: `{"items":[3]}`, bad: true},
		"bad pv":            {in: `{"items":[{"kind":"PersistentVolume","spec":{"capacity":{"storage":"lots"}}}]}`, bad: true},
		"garbage":           {in: "\t: :", bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := ParseFile([]byte(tc.in), "d")
			if tc.bad {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pvs, _ := f.PersistentVolumes(context.Background())
			_, known, _ := f.SnapshotContents(context.Background())
			if (len(pvs) > 0) != tc.pvs || known != tc.known {
				t.Errorf("pvs %+v known %v", pvs, known)
			}
		})
	}
}

// FuzzParseFile: any input is parsed or refused, never a panic; what is parsed names only the driver's objects.
func FuzzParseFile(f *testing.F) {
	b, err := os.ReadFile("testdata/cluster.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"kind":"List","items":[{"kind":"VolumeSnapshotContent","spec":{"driver":"rds.csi.srvlab.io","source":{"snapshotHandle":7}}}]}`))
	f.Add([]byte("kind: PersistentVolume\nspec: {csi: {driver: rds.csi.srvlab.io, volumeHandle: [1]}}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := ParseFile(in, "rds.csi.srvlab.io")
		if err != nil {
			return
		}
		pvs, _ := file.PersistentVolumes(context.Background())
		contents, _, _ := file.SnapshotContents(context.Background())
		for _, r := range append(pvs, contents...) {
			if r.Handle == "" {
				t.Fatalf("a ref without a handle: %+v", r)
			}
		}
	})
}
