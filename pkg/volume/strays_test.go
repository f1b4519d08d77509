package volume

import (
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

func dir(name string) rds.File  { return rds.File{Name: name, Type: "directory"} }
func file(name string) rds.File { return rds.File{Name: name, Type: ".img file", SizeBytes: 7} }

// TestStraysOf: only a directory of exactly the driver's shape without a disk is owned; a bare flat image, a
// user's directory, and a disk of another NQN or file name are listed and never owned; what disks use is not
// listed at all.
func TestStraysOf(t *testing.T) {
	loc := Location{Pool: "pool", Dir: "k8s"}
	ours := rds.Disk{Type: "file", Slot: "pvc-a", FilePath: "/pool/k8s/pvc-a/disk.img", NQN: NQN("pvc-a")}
	flat := rds.Disk{Type: "file", Slot: "pvc-f", FilePath: "pool/k8s/pvc-f.img", NQN: NQN("pvc-f")}
	foreign := rds.Disk{Type: "file", Slot: "vm", FilePath: "pool/k8s/vm/disk.img", NQN: "nqn.2024-01.org.example:vm"}
	nested := rds.Disk{Type: "file", Slot: "pvc-n", FilePath: "pool/k8s/sub/pvc-n.img", NQN: NQN("pvc-n")}
	fs := []rds.File{
		dir("pool/k8s/pvc-a"), file("pool/k8s/pvc-a/disk.img"), file("pool/k8s/pvc-f.img"),
		dir("pool/k8s/vm"), file("pool/k8s/vm/disk.img"),
		dir("pool/k8s/pvc-left"), file("pool/k8s/pvc-left/disk.img"), // a leftover
		dir("pool/k8s/pvc-empty"),    // a create that stopped before /disk add
		file("pool/k8s/pvc-old.img"), // a flat image without a disk
		dir("pool/k8s/home"), file("pool/k8s/home/disk.img"), file("pool/k8s/home/x"),
		dir("pool/k8s/sub"), file("pool/k8s/sub/pvc-n.img"),
		dir("pool/k8s-old"), // a near miss of the regex
	}
	got := straysOf(fs, []rds.Disk{ours, flat, foreign, nested}, loc)
	var lines []string
	for _, s := range got {
		lines = append(lines, string(s.Kind)+" "+s.ID+" "+s.Path+" "+map[bool]string{true: "owned", false: "not-owned"}[s.Owned])
	}
	want := []string{
		"file  pool/k8s/home not-owned",
		"file  pool/k8s/pvc-empty not-owned",
		"leftover pvc-left pool/k8s/pvc-left owned",
		"file  pool/k8s/pvc-old.img not-owned",
		"foreign-disk pvc-n pool/k8s/sub/pvc-n.img not-owned",
		"foreign-disk vm pool/k8s/vm/disk.img not-owned",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("strays:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzStraysOf: whatever names the RDS prints, nothing panics, and an owned stray is always a directory
// <base>/<id> directly in the base path holding disk.img and nothing else, which no disk uses.
func FuzzStraysOf(f *testing.F) {
	f.Add("pool/k8s/pvc-a", "pool/k8s/pvc-a/disk.img", "pool/k8s/x", "/pool/k8s/pvc-a/disk.img")
	f.Add("pool/k8s/a.img", "pool/k8s//b", "pool/k8s/", "pool/k8s/../k8s/c/disk.img")
	f.Fuzz(func(t *testing.T, d1, f1, f2, diskPath string) {
		loc := Location{Pool: "pool", Dir: "k8s"}
		fs := []rds.File{dir(d1), file(f1), file(f2)}
		ds := []rds.Disk{{Type: "file", Slot: "s", FilePath: diskPath, NQN: NQN("s")}}
		for _, s := range straysOf(fs, ds, loc) {
			if !s.Owned {
				continue
			}
			if s.Kind != StrayLeftover || s.Path != "pool/k8s/"+s.ID || rds.ValidName(s.ID) != nil {
				t.Fatalf("owned: %+v", s)
			}
			if checkOwnShape(fs, ds, s.Path) != nil {
				t.Fatalf("owned without the driver's shape: %+v", s)
			}
			has := false
			for _, x := range fs {
				has = has || strings.TrimPrefix(x.Name, "/") == s.Path+"/"+DiskFileName
			}
			if !has {
				t.Fatalf("owned without disk.img: %+v", s)
			}
		}
	})
}
