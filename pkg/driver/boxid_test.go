package driver

import (
	"errors"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		id, box, name string
		bad           bool
	}{
		{id: "pvc-1", name: "pvc-1"},
		{id: "rds2/pvc-1", box: "rds2", name: "pvc-1"},
		{id: "a/b", box: "a", name: "b"},
		{id: strings.Repeat("b", 32) + "/x", box: strings.Repeat("b", 32), name: "x"},
		{id: "", bad: true},
		{id: "/pvc-1", bad: true},
		{id: "rds2/", bad: true},
		{id: "RDS2/pvc-1", bad: true},
		{id: "-rds/pvc-1", bad: true},
		{id: "rds-/pvc-1", bad: true},
		{id: "rds_2/pvc-1", bad: true},
		{id: strings.Repeat("b", 33) + "/x", bad: true},
		{id: "a/b/c", bad: true},
		{id: "a/.x", bad: true},
		{id: "a b", bad: true},
	} {
		box, name, err := ParseID(tc.id)
		if tc.bad {
			if err == nil || !errors.Is(err, rds.ErrInvalid) {
				t.Errorf("ParseID(%q) = %q, %q, %v; want an rds.ErrInvalid", tc.id, box, name, err)
			}
			continue
		}
		if err != nil || box != tc.box || name != tc.name {
			t.Errorf("ParseID(%q) = %q, %q, %v; want %q, %q", tc.id, box, name, err, tc.box, tc.name)
		}
		if got := JoinID(box, name); got != tc.id {
			t.Errorf("JoinID(%q, %q) = %q, want %q", box, name, got, tc.id)
		}
	}
}

func TestValidBoxName(t *testing.T) {
	for _, ok := range []string{"a", "default", "rds-2", "0"} {
		if err := ValidBoxName(ok); err != nil {
			t.Errorf("ValidBoxName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "a.b", "a/b", "-a", "a-", strings.Repeat("x", 33)} {
		if err := ValidBoxName(bad); err == nil {
			t.Errorf("ValidBoxName(%q) accepted it", bad)
		}
	}
}

// FuzzParseID: whatever ParseID accepts is made of a valid box (or none) and a valid RDS name, and JoinID
// gives the same id back.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"pvc-1", "rds2/pvc-1", "/x", "a/", "a/b/c", "A/b", "default/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		box, name, err := ParseID(id)
		if err != nil {
			return
		}
		if rds.ValidName(name) != nil || (box != "" && ValidBoxName(box) != nil) {
			t.Fatalf("ParseID(%q) accepted box %q name %q", id, box, name)
		}
		if JoinID(box, name) != id {
			t.Fatalf("JoinID(ParseID(%q)) = %q", id, JoinID(box, name))
		}
	})
}
