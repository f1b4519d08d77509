package volume_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// What a create may find under its id, and what it must do about it, under every dialect. These are the cases
// that make a create read the name's state before it adds anything (checkName): under the documented dialect a
// subvolume prints by its leaf only, so a second subvolume of the id added in another base path could never be
// told apart from the first, by this create's undo or by any later delete. A create that added first and
// looked afterwards would fail these cases.

// poolSnapshot is the simulator's own state: its disks, subvolumes, and every file and directory of the pool
// with its content's hash, from the host filesystem (never through a console filter).
func (e *env) poolSnapshot(t *testing.T) []string {
	t.Helper()
	out := append([]string{}, e.sim.Slots()...)
	for i := range out {
		out[i] = "disk " + out[i]
	}
	for _, sv := range e.sim.Subvolumes() {
		out = append(out, "subvolume "+sv.Path)
	}
	root, err := e.sim.HostPath(e.loc.Pool)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out = append(out, "dir "+rel)
			return nil
		}
		size, head, err := fileHead(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(head)
		out = append(out, fmt.Sprintf("file %s %d %s", rel, size, hex.EncodeToString(sum[:8])))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// fileHead returns a file's size and its first MiB (disk files are sparse GiBs; what the tests write is at
// the start).
func fileHead(p string) (int64, []byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	head, err := io.ReadAll(io.LimitReader(f, volume.MiB))
	return st.Size(), head, err
}

// subvolumeAt adds an administrator's subvolume rel (its missing parents first, where the dialect needs them),
// holding the given files.
func (e *env) subvolumeAt(t *testing.T, rel string, files ...string) {
	t.Helper()
	if dir := filepath.Dir(rel); dir != "." {
		e.makeBase(t, volume.Location{Pool: e.loc.Pool, Dir: dir})
	}
	c, err := rds.AddSubvolume(e.label(), rel)
	if err != nil {
		t.Fatal(err)
	}
	e.raw(t, c)
	for _, f := range files {
		host, err := e.sim.HostPath(e.loc.Pool + "/" + rel + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, []byte("an admin's "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateOfATakenIDAddsNothing(t *testing.T) {
	teamA := volume.Location{Pool: "pool", Dir: "team-a"}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  error
	}{
		{"the id's volume in another base path", func(t *testing.T, e *env) {
			r := e.req("pvc-x", volume.GiB)
			r.Location = teamA
			e.makeBase(t, teamA)
			if _, err := e.m.Create(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}, volume.ErrAlreadyExists},
		{"another tool's disk holds the slot", func(t *testing.T, e *env) {
			e.makeBase(t, volume.Location{Pool: "pool", Dir: "other"})
			c, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-x", FilePath: "pool/other/foreign.img", SizeBytes: volume.GiB,
				NQN: "nqn.2010-01.org.example:foreign"})
			if err != nil {
				t.Fatal(err)
			}
			e.raw(t, c)
		}, volume.ErrAlreadyExists},
		{"an admin's subvolume of the id's leaf in another base path", func(t *testing.T, e *env) {
			e.subvolumeAt(t, "team-a/pvc-x", "notes.txt")
		}, volume.ErrNotOwned},
		{"an admin's subvolume at the volume's own path", func(t *testing.T, e *env) {
			e.subvolumeAt(t, "k8s/pvc-x", "notes.txt")
		}, volume.ErrNotOwned},
	} {
		t.Run(c.name, func(t *testing.T) {
			forDialects(t, func(t *testing.T, d dialect) {
				e := newEnv(t, d.cfg, false)
				c.setup(t, e)
				e.makeBase(t, e.loc)
				before := e.poolSnapshot(t)
				_, err := e.m.Create(context.Background(), e.req("pvc-x", volume.GiB))
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "pvc-x") {
					t.Fatalf("got %v, want %v naming the id", err, c.want)
				}
				if after := e.poolSnapshot(t); !slices.Equal(before, after) {
					t.Fatalf("the create changed the RDS:\nbefore %q\nafter  %q", before, after)
				}
			})
		})
	}
}

// What the driver itself left under the id (an interrupted delete, an interrupted create elsewhere) is cleared,
// and the new volume starts empty: it never gets a deleted volume's data.
func TestCreateClearsItsOwnLeftovers(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, e *env)
	}{
		{"a delete interrupted after /disk remove, its data still in the file", func(t *testing.T, e *env) {
			v, err := e.m.Create(context.Background(), e.req("pvc-x", volume.GiB))
			if err != nil {
				t.Fatal(err)
			}
			host, err := e.sim.HostPath(v.FilePath)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(host, []byte("the deleted volume's data"), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := rds.RemoveDisk("pvc-x")
			if err != nil {
				t.Fatal(err)
			}
			e.raw(t, c)
		}},
		{"a create in another base path interrupted before /disk add", func(t *testing.T, e *env) {
			e.subvolumeAt(t, "team-a/pvc-x")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			forDialects(t, func(t *testing.T, d dialect) {
				e := newEnv(t, d.cfg, false)
				e.makeBase(t, e.loc)
				c.setup(t, e)
				// A fresh manager: nothing remembered from the setup, as after a controller restart.
				m := volume.NewManager(e.client)
				v, err := m.Create(context.Background(), e.req("pvc-x", volume.GiB))
				if err != nil {
					t.Fatal(err)
				}
				var leaves []string
				for _, sv := range e.sim.Subvolumes() {
					if filepath.Base(sv.Path) == "pvc-x" {
						leaves = append(leaves, sv.Path)
					}
				}
				if !slices.Equal(leaves, []string{"k8s/pvc-x"}) {
					t.Fatalf("subvolumes of the id: %q, want only k8s/pvc-x", leaves)
				}
				host, err := e.sim.HostPath(v.FilePath)
				if err != nil {
					t.Fatal(err)
				}
				size, head, err := fileHead(host)
				if err != nil {
					t.Fatal(err)
				}
				if size != v.SizeBytes || strings.Trim(string(head), "\x00") != "" {
					t.Fatalf("the new volume's file is %d bytes (volume %d) and starts with %q, want zeros", size, v.SizeBytes, head[:32])
				}
				if err := m.Delete(context.Background(), "pvc-x", e.loc); err != nil {
					t.Fatalf("the new volume cannot be deleted: %v", err)
				}
			})
		})
	}
}
