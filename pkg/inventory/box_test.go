package inventory

import (
	"context"
	"reflect"
	"testing"
)

func TestOnBox(t *testing.T) {
	all := &fakeCluster{
		pvs: []Ref{{Name: "a", Handle: "pvc-a"}, {Name: "b", Handle: "rds2/pvc-b"}, {Name: "c", Handle: "rds3/pvc-c"},
			{Name: "bad", Handle: "Not A/Valid"}},
		contents: []Ref{{Name: "s1", Handle: "snap-1"}, {Name: "s2", Handle: "rds2/snap-2"}},
	}
	for _, tc := range []struct {
		box           string
		pvs, contents []string
	}{
		{"", []string{"a:pvc-a", "bad:Not A/Valid"}, []string{"s1:snap-1"}},
		{"rds2", []string{"b:pvc-b"}, []string{"s2:snap-2"}},
		{"rds9", []string{}, []string{}},
	} {
		t.Run("box="+tc.box, func(t *testing.T) {
			c := OnBox(all, tc.box)
			pvs, err := c.PersistentVolumes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			contents, known, err := c.SnapshotContents(context.Background())
			if err != nil || !known {
				t.Fatal(err, known)
			}
			names := func(refs []Ref) []string {
				out := []string{}
				for _, r := range refs {
					out = append(out, r.Name+":"+r.Handle)
				}
				return out
			}
			if got := names(pvs); !reflect.DeepEqual(got, tc.pvs) {
				t.Errorf("PVs %q, want %q", got, tc.pvs)
			}
			if got := names(contents); !reflect.DeepEqual(got, tc.contents) {
				t.Errorf("contents %q, want %q", got, tc.contents)
			}
		})
	}
	if OnBox(nil, "rds2") != nil {
		t.Error("no cluster must stay no cluster")
	}
}
