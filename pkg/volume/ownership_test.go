package volume

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

func files(names ...string) []rds.File {
	out := make([]rds.File, len(names))
	for i, n := range names {
		out[i] = rds.File{Name: n}
	}
	return out
}

func TestLeftoversOf(t *testing.T) {
	const id = "pvc-1"
	for _, c := range []struct {
		name    string
		files   []rds.File
		disks   []rds.Disk
		want    []string // leftover dirs
		refused string   // ErrNotOwned mentioning this
	}{
		{"nothing", nil, nil, nil, ""},
		{"subvolume with its file, non-default base path", files("pool/team-a/x", "pool/team-a/x/pvc-1", "pool/team-a/x/pvc-1/disk.img"), nil,
			[]string{"pool/team-a/x/pvc-1"}, ""},
		{"empty subvolume (create stopped before the disk)", files("/pool/k8s/pvc-1"), nil, []string{"pool/k8s/pvc-1"}, ""},
		{"file listed without its directory", files("pool/k8s/pvc-1/disk.img"), nil, []string{"pool/k8s/pvc-1"}, ""},
		{"in two base paths", files("pool/a/pvc-1", "pool/b/pvc-1/disk.img"), nil, []string{"pool/a/pvc-1", "pool/b/pvc-1"}, ""},
		{"near misses are not it", files("pool/k8s/pvc-10", "pool/k8s/pvc-10/disk.img", "pool/k8s/xpvc-1/disk.img", "pool/k8s/pvc-1.bak"), nil, nil, ""},
		{"snapshots of the volume are not it", files("pool/k8s-snapshots/pvc-1", "pool/k8s-snapshots/pvc-1/1073741824/snap-1/disk.img"), nil, nil, ""},
		{"the pool's root is no base path", files("pool/pvc-1"), nil, nil, ""},
		{"an admin's subvolume with files", files("pool/k8s/pvc-1", "pool/k8s/pvc-1/notes.txt"), nil, nil, "notes.txt"},
		{"an admin's nested data", files("pool/k8s/pvc-1", "pool/k8s/pvc-1/db/data"), nil, nil, "db/data"},
		{"a file another disk uses", files("pool/k8s/pvc-1/disk.img"), []rds.Disk{{Slot: "other", FilePath: "/pool/k8s/pvc-1/disk.img"}}, nil, "other"},
		{"a bare flat file", files("pool/k8s/pvc-1.img"), nil, nil, "flat layout"},
		{"one refused refuses all", files("pool/a/pvc-1", "pool/b/pvc-1", "pool/b/pvc-1/x"), nil, nil, "pool/b/pvc-1/x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := leftoversOf(c.files, c.disks, id)
			if c.refused != "" {
				if !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), c.refused) || got != nil {
					t.Fatalf("got %v, %v; want ErrNotOwned mentioning %q and nothing to remove", got, err, c.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var dirs []string
			for _, l := range got {
				dirs = append(dirs, l.dir)
				if l.loc.String()+"/"+id != l.dir {
					t.Errorf("leftover %s has location %s", l.dir, l.loc)
				}
			}
			if !slices.Equal(dirs, c.want) {
				t.Fatalf("got %v, want %v", dirs, c.want)
			}
		})
	}
}

// Whatever a listing holds, a leftover the driver would remove holds nothing but disk.img, is named by the
// id and lies in a base path.
func FuzzLeftoversOf(f *testing.F) {
	f.Add("pool/k8s/pvc-1\npool/k8s/pvc-1/disk.img", "pvc-1")
	f.Add("pool/k8s/pvc-1\npool/k8s/pvc-1/x", "pvc-1")
	f.Add("pool/k8s-snapshots/pvc-1/5/s/disk.img", "pvc-1")
	f.Fuzz(func(t *testing.T, listing, id string) {
		if rds.ValidName(id) != nil {
			return
		}
		fs := files(strings.Split(listing, "\n")...)
		got, err := leftoversOf(fs, nil, id)
		if err != nil {
			return
		}
		for _, l := range got {
			if !strings.HasSuffix(l.dir, "/"+id) {
				t.Fatalf("leftover %q is not named %q", l.dir, id)
			}
			for _, f := range fs {
				n := strings.TrimPrefix(f.Name, "/")
				if strings.HasPrefix(n, l.dir+"/") && n != l.dir+"/"+DiskFileName {
					t.Fatalf("leftover %q holds %q", l.dir, n)
				}
			}
		}
	})
}
