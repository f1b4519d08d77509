package volume_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// pattern is data written at the start, the middle and the end of a volume's backing file, as a node would
// write blocks through NVMe/TCP; its checksum is what a copy of the volume must show.
type pattern struct {
	chunks [3][]byte
}

const chunkSize = 256 << 10

func newPattern(t *testing.T) pattern {
	t.Helper()
	var p pattern
	for i := range p.chunks {
		p.chunks[i] = make([]byte, chunkSize)
		if _, err := rand.Read(p.chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func offsets(size int64) [3]int64 { return [3]int64{0, size/2 - chunkSize/2, size - chunkSize} }

// write puts the pattern into the volume's file (whose size must be size).
func (e *env) write(t *testing.T, filePath string, size int64, p pattern) {
	t.Helper()
	f, err := os.OpenFile(must(e.sim.HostPath(filePath)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, off := range offsets(size) {
		if _, err := f.WriteAt(p.chunks[i], off); err != nil {
			t.Fatal(err)
		}
	}
}

// checksum hashes the three regions of a file laid out for size, and says how big the file is.
func (e *env) checksum(t *testing.T, filePath string, size int64) (string, int64) {
	t.Helper()
	f, err := os.Open(must(e.sim.HostPath(filePath)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	for _, off := range offsets(size) {
		if _, err := io.Copy(h, io.NewSectionReader(f, off, chunkSize)); err != nil {
			t.Fatal(err)
		}
	}
	st := must(f.Stat())
	return fmt.Sprintf("%x", h.Sum(nil)), st.Size()
}

func (p pattern) sum() string {
	h := sha256.New()
	for _, c := range p.chunks {
		h.Write(c)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// wantData checks that the file holds want where a file of size had it, and that the file is fileSize bytes.
func (e *env) wantData(t *testing.T, what, filePath string, size, fileSize int64, want pattern) {
	t.Helper()
	sum, got := e.checksum(t, filePath, size)
	if got != fileSize {
		t.Errorf("%s: file %s is %d bytes, want %d", what, filePath, got, fileSize)
	}
	if sum != want.sum() {
		t.Errorf("%s: file %s does not hold the data it should", what, filePath)
	}
}

func snapshotFile(s *volume.Snapshot) string {
	return s.Location.Pool + "/" + s.SubvolumeName() + "/" + volume.DiskFileName
}

// The data proof of issue 5: snapshot, overwrite, restore and clone; every copy holds what it should, writes to
// one never show on another, and the snapshot outlives its source volume.
func TestSnapshotRestoreCloneKeepTheirData(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		for _, single := range []bool{false, true} {
			t.Run(map[bool]string{false: "script", true: "one-command-per-exec"}[single], func(t *testing.T) {
				e := newEnv(t, d.cfg, single)
				ctx := context.Background()
				const size = 2 * volume.GiB
				src := must(e.m.Create(ctx, e.req("pvc-src", size)))
				before, after := newPattern(t), newPattern(t)
				e.write(t, src.FilePath, size, before)

				snap := must(e.m.CreateSnapshot(ctx, "snap-1", "pvc-src"))
				if snap.SizeBytes != size || snap.SourceVolumeID != "pvc-src" || !snap.ReadyToUse || snap.CreationTime.IsZero() {
					t.Fatalf("snapshot %+v", snap)
				}
				if want := volume.SnapshotsContainer(e.loc) + "/snap-1.pvc-src.2147483648.7"; snap.SubvolumeName() != want {
					t.Fatalf("snapshot subvolume %q, want %q", snap.SubvolumeName(), want)
				}
				e.write(t, src.FilePath, size, after)

				restored := must(e.m.CreateFrom(ctx, e.req("pvc-restored", 3*volume.GiB), volume.Source{SnapshotID: "snap-1"}))
				if restored.SizeBytes != 3*volume.GiB || !restored.Exported || restored.Layout != volume.LayoutSubvolume {
					t.Fatalf("restored %+v", restored)
				}
				clone := must(e.m.CreateFrom(ctx, e.req("pvc-clone", 0), volume.Source{VolumeID: "pvc-src"}))
				if clone.SizeBytes != size {
					t.Fatalf("clone of %d bytes, want the source's %d", clone.SizeBytes, size)
				}
				// The restore was grown: its data sits where the snapshot had it, the new tail reads as zeros.
				e.wantData(t, "restore", restored.FilePath, size, 3*volume.GiB, before)
				tail := make([]byte, chunkSize)
				if f, err := os.Open(must(e.sim.HostPath(restored.FilePath))); err != nil {
					t.Fatal(err)
				} else {
					_, err = f.ReadAt(tail, 3*volume.GiB-chunkSize)
					f.Close()
					if err != nil || !bytes.Equal(tail, make([]byte, chunkSize)) {
						t.Fatalf("the grown tail of the restore does not read as zeros (%v)", err)
					}
				}
				e.wantData(t, "clone", clone.FilePath, size, size, after)
				e.wantData(t, "snapshot", snapshotFile(snap), size, size, before)

				// Independence: new data in each copy shows nowhere else.
				third, fourth := newPattern(t), newPattern(t)
				e.write(t, restored.FilePath, size, third)
				e.write(t, clone.FilePath, size, fourth)
				e.wantData(t, "source after writes to the copies", src.FilePath, size, size, after)
				e.wantData(t, "snapshot after writes to the copies", snapshotFile(snap), size, size, before)
				e.wantData(t, "restore after writing the clone", restored.FilePath, size, 3*volume.GiB, third)

				// The source goes; its snapshot stays listed and restorable, and the copies keep working.
				if err := e.m.Delete(ctx, "pvc-src", e.loc); err != nil {
					t.Fatalf("delete a volume that has snapshots: %v", err)
				}
				if d, f, s := e.state(t, "pvc-src"); d || f || s {
					t.Fatalf("source left behind: disk=%v file=%v subvolume=%v", d, f, s)
				}
				listed := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{SourceVolumeID: "pvc-src"}))
				if len(listed) != 1 || listed[0].ID != "snap-1" || listed[0].SizeBytes != size {
					t.Fatalf("snapshots of the deleted volume: %+v", listed)
				}
				again := must(e.m.CreateFrom(ctx, e.req("pvc-again", size), volume.Source{SnapshotID: "snap-1"}))
				e.wantData(t, "restore after the source was deleted", again.FilePath, size, size, before)
				if err := e.m.DeleteSnapshot(ctx, "snap-1"); err != nil {
					t.Fatal(err)
				}
				e.wantData(t, "restore after its snapshot was deleted", again.FilePath, size, size, before)
				for _, id := range []string{"pvc-restored", "pvc-clone", "pvc-again"} {
					if err := e.m.Delete(ctx, id, e.loc); err != nil {
						t.Fatalf("delete %s: %v", id, err)
					}
				}
			})
		}
	})
}

func TestCreateSnapshotIdempotentOneScriptAfterARead(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-a", volume.GiB)))
	must(e.m.Create(ctx, e.req("pvc-b", volume.GiB)))
	must(e.m.PoolFS(ctx, "pool"))
	e.sim.ResetCommands()
	must(e.m.CreateSnapshot(ctx, "snap-first", "pvc-b"))
	if n := len(e.sim.Scripts()); n != 4 {
		t.Fatalf("the base path's first snapshot took %d execs, want 4 (a read, the container looked up and made, "+
			"the add with its read-back): %q", n, e.sim.Scripts())
	}
	e.sim.ResetCommands()
	s1 := must(e.m.CreateSnapshot(ctx, "snap-a", "pvc-a"))
	// The source was made by this process: its size is known, and the add rides on the read (snapshot_fast.go).
	if n := len(e.sim.Scripts()); n != 1 {
		t.Fatalf("create snapshot took %d execs, want 1 (the guarded add with its read): %q", n, e.sim.Scripts())
	}
	if cmds := strings.Join(e.sim.Commands(), "\n"); !strings.Contains(cmds, "read-only=yes") ||
		!strings.Contains(cmds, `parent="`+e.parent("k8s/pvc-a")+`"`) {
		t.Fatalf("the snapshot was not a read-only snapshot of the volume's subvolume:\n%s", cmds)
	}
	e.sim.ResetCommands()
	s2 := must(e.m.CreateSnapshot(ctx, "snap-a", "pvc-a"))
	if *s1 != *s2 {
		t.Fatalf("repeat returned %+v, first %+v", s2, s1)
	}
	if n := len(e.sim.Scripts()); n != 1 {
		t.Fatalf("repeat took %d execs, want the one read: %q", n, e.sim.Scripts())
	}
	if _, err := e.m.CreateSnapshot(ctx, "snap-a", "pvc-b"); !errors.Is(err, volume.ErrAlreadyExists) {
		t.Fatalf("same name, other source: %v, want ErrAlreadyExists", err)
	}
	if _, err := e.m.CreateSnapshot(ctx, "snap-x", "pvc-none"); !errors.Is(err, volume.ErrNotFound) {
		t.Fatalf("missing source: %v, want ErrNotFound", err)
	}
	// A snapshot id that extends another's is another snapshot, not a repeat.
	s3 := must(e.m.CreateSnapshot(ctx, "snap-a-2", "pvc-b"))
	if s3.SourceVolumeID != "pvc-b" {
		t.Fatalf("snap-a-2: %+v", s3)
	}
}

// A connection lost after the snapshot was made (before its read-back) converges: on the spot when the RDS
// can be read again, else on the sidecar's retry; never two snapshots.
func TestCreateSnapshotConvergesAfterDrop(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		for _, f := range []rdssim.Fault{
			{Kind: rdssim.FaultDropAfter, Match: "read-only=yes", Count: 1},
			{Kind: rdssim.FaultDropBefore, Match: "read-only=yes", Count: 1},
		} {
			t.Run(f.String(), func(t *testing.T) {
				e := newEnv(t, d.cfg, false)
				ctx := context.Background()
				must(e.m.Create(ctx, e.req("pvc-a", volume.GiB)))
				e.sim.SetFaults(f)
				s, err := e.m.CreateSnapshot(ctx, "snap-drop", "pvc-a")
				if err != nil {
					if !errors.Is(err, rds.ErrUnavailable) {
						t.Fatalf("first attempt: %v", err)
					}
					s, err = e.m.CreateSnapshot(ctx, "snap-drop", "pvc-a")
				}
				if err != nil || !s.ReadyToUse {
					t.Fatalf("retry: %+v %v", s, err)
				}
				if l := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{})); len(l) != 1 {
					t.Fatalf("snapshots after convergence: %+v", l)
				}
			})
		}
	})
}

func TestSnapshotsRefusedWhereTheyCannotWork(t *testing.T) {
	ctx := context.Background()
	t.Run("xfs pool", func(t *testing.T) {
		e := newEnv(t, rdssim.Config{PoolFS: "xfs"}, false)
		must(e.m.Create(ctx, e.req("pvc-x", volume.GiB)))
		_, err := e.m.CreateSnapshot(ctx, "snap-x", "pvc-x")
		if !errors.Is(err, volume.ErrUnsupported) || !strings.Contains(err.Error(), "xfs") {
			t.Fatalf("snapshot on xfs: %v, want ErrUnsupported naming xfs", err)
		}
		_, err = e.m.CreateFrom(ctx, e.req("pvc-y", volume.GiB), volume.Source{VolumeID: "pvc-x"})
		if !errors.Is(err, volume.ErrUnsupported) || !strings.Contains(err.Error(), "xfs") {
			t.Fatalf("clone on xfs: %v, want ErrUnsupported naming xfs", err)
		}
		if l := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{})); len(l) != 0 {
			t.Fatalf("snapshots on xfs: %+v", l)
		}
		if d, f, _ := e.state(t, "pvc-y"); d || f {
			t.Fatal("a refused clone changed the RDS")
		}
	})
	t.Run("flat volume on btrfs", func(t *testing.T) {
		e := newEnv(t, rdssim.Config{}, false)
		e.raw(t, must(rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-old", FilePath: "pool/metal-csi/pvc-old.img",
			SizeBytes: volume.GiB, NQN: volume.NQN("pvc-old"), Port: 4420})))
		_, err := e.m.CreateSnapshot(ctx, "snap-old", "pvc-old")
		if !errors.Is(err, volume.ErrUnsupported) || !strings.Contains(err.Error(), "flat file") {
			t.Fatalf("snapshot of a flat volume: %v, want ErrUnsupported saying it is a flat file", err)
		}
		_, err = e.m.CreateFrom(ctx, e.req("pvc-new", volume.GiB), volume.Source{VolumeID: "pvc-old"})
		if !errors.Is(err, volume.ErrUnsupported) || !strings.Contains(err.Error(), "flat file") {
			t.Fatalf("clone of a flat volume: %v", err)
		}
	})
	t.Run("a disk that is not ours", func(t *testing.T) {
		e := newEnv(t, rdssim.Config{}, false)
		e.raw(t, must(rds.AddFileDisk(rds.FileDiskSpec{Slot: "vm-disk", FilePath: "pool/vms/vm-disk.img",
			SizeBytes: volume.GiB, NQN: "nqn.2026-09.com.mikrotik:rds2216.vm-disk", Port: 4420})))
		if _, err := e.m.CreateSnapshot(ctx, "snap-vm", "vm-disk"); !errors.Is(err, volume.ErrNotOwned) {
			t.Fatalf("snapshot of a foreign disk: %v, want ErrNotOwned", err)
		}
	})
}

func TestHostileSnapshotNamesNeverReachTheRDS(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-a", volume.GiB)))
	e.sim.ResetCommands()
	for _, id := range []string{`a"b`, "a;b", "a[b]", "a$b", "a\nb", `a\b`, "a b", "ü", "../x", "a/b", ".*", "^a", "",
		string(make([]byte, 200))} {
		if _, err := e.m.CreateSnapshot(ctx, id, "pvc-a"); !errors.Is(err, rds.ErrInvalid) {
			t.Errorf("create snapshot %q: %v, want ErrInvalid", id, err)
		}
		if _, err := e.m.CreateSnapshot(ctx, "snap-ok", id); !errors.Is(err, rds.ErrInvalid) {
			t.Errorf("create snapshot of %q: %v, want ErrInvalid", id, err)
		}
		if err := e.m.DeleteSnapshot(ctx, id); !errors.Is(err, rds.ErrInvalid) {
			t.Errorf("delete snapshot %q: %v, want ErrInvalid", id, err)
		}
		if id == "" {
			continue // an empty filter field means "any"
		}
		for _, f := range []volume.SnapshotFilter{{ID: id}, {SourceVolumeID: id}} {
			if _, err := e.m.ListSnapshots(ctx, f); !errors.Is(err, rds.ErrInvalid) {
				t.Errorf("list %+v: %v, want ErrInvalid", f, err)
			}
		}
		for _, src := range []volume.Source{{SnapshotID: id}, {VolumeID: id}} {
			if _, err := e.m.CreateFrom(ctx, e.req("pvc-new", volume.GiB), src); !errors.Is(err, rds.ErrInvalid) {
				t.Errorf("create from %+v: %v, want ErrInvalid", src, err)
			}
		}
	}
	if _, err := e.m.CreateFrom(ctx, e.req("pvc-new", volume.GiB), volume.Source{SnapshotID: "s", VolumeID: "v"}); !errors.Is(err, rds.ErrInvalid) {
		t.Errorf("two sources at once: %v, want ErrInvalid", err)
	}
	if cmds := e.sim.Commands(); len(cmds) != 0 {
		t.Fatalf("hostile names reached the RDS: %q", cmds)
	}
}
