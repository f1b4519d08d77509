package volume_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

func ids(snaps []volume.Snapshot) []string {
	out := []string{}
	for _, s := range snaps {
		out = append(out, s.SourceVolumeID+":"+s.ID)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestListSnapshotsAcrossBasePaths(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.cfg, false)
		ctx := context.Background()
		tenant := e.req("pvc-t", volume.GiB)
		tenant.Location = volume.Location{Pool: "pool", Dir: "tenant/prod"}
		e.makeBase(t, tenant.Location)
		must(e.m.Create(ctx, tenant))
		must(e.m.Create(ctx, e.req("pvc-a", volume.GiB)))
		must(e.m.Create(ctx, e.req("pvc-a2", volume.GiB)))
		for _, s := range [][2]string{{"snap-1", "pvc-a"}, {"snap-10", "pvc-a2"}, {"snap.1", "pvc-a"}, {"snap-t", "pvc-t"}, {"a-first", "pvc-a2"}} {
			must(e.m.CreateSnapshot(ctx, s[0], s[1]))
		}
		// Subvolumes of someone else that look almost like snapshots are never listed.
		e.makeParents(t, "pool", "k8s-snapshots/pvc-a/1073741824/snap-writable")
		e.makeParents(t, "pool", "backup-snapshots/pvc-a/0100/snap-zero")
		e.raw(t, must(rds.AddSubvolume(e.label(), "k8s-snapshots/pvc-a/1073741824/snap-writable")),
			must(rds.AddSnapshot(e.label(), e.parent("k8s/pvc-a"), "backup-snapshots/pvc-a/0100/snap-zero", true)))
		e.sim.ResetCommands()
		for _, c := range []struct {
			f    volume.SnapshotFilter
			want []string
		}{
			{volume.SnapshotFilter{}, []string{"pvc-a2:a-first", "pvc-a:snap-1", "pvc-a2:snap-10", "pvc-t:snap-t", "pvc-a:snap.1"}},
			{volume.SnapshotFilter{ID: "snap-1"}, []string{"pvc-a:snap-1"}},
			{volume.SnapshotFilter{ID: "snap"}, []string{}},
			{volume.SnapshotFilter{ID: "snap-t"}, []string{"pvc-t:snap-t"}},
			{volume.SnapshotFilter{SourceVolumeID: "pvc-a"}, []string{"pvc-a:snap-1", "pvc-a:snap.1"}},
			{volume.SnapshotFilter{SourceVolumeID: "pvc-none"}, []string{}},
			{volume.SnapshotFilter{ID: "snap-10", SourceVolumeID: "pvc-a2"}, []string{"pvc-a2:snap-10"}},
			{volume.SnapshotFilter{ID: "snap-10", SourceVolumeID: "pvc-a"}, []string{}},
		} {
			got := ids(must(e.m.ListSnapshots(ctx, c.f)))
			if !sameStrings(got, c.want) {
				t.Errorf("list %+v: %v, want %v", c.f, got, c.want)
			}
		}
		if n, want := len(e.sim.Scripts()), 8; n != want {
			t.Fatalf("%d lists took %d execs", want, n)
		}
		tl := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{ID: "snap-t"}))
		if tl[0].Location != tenant.Location || tl[0].SubvolumeName() != volume.SnapshotsContainer(tenant.Location)+"/snap-t.pvc-t.1073741824.5" {
			t.Fatalf("snapshot of a StorageClass base path: %+v", tl[0])
		}
	})
}

// dirExists reports whether the RDS lists the directory (as /file print shows directories).
func (e *env) dirExists(t *testing.T, path string) bool {
	t.Helper()
	return len(must(e.client.Files(context.Background(), rds.Eq("name", path)))) > 0
}

func TestDeleteSnapshotIdempotentAndTidy(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.cfg, false)
		ctx := context.Background()
		must(e.m.Create(ctx, e.req("pvc-a", volume.GiB)))
		must(e.m.CreateSnapshot(ctx, "snap-1", "pvc-a"))
		must(e.m.CreateSnapshot(ctx, "snap-2", "pvc-a"))
		must(e.m.Expand(ctx, "pvc-a", 2*volume.GiB, 0))
		big := must(e.m.CreateSnapshot(ctx, "snap-big", "pvc-a"))
		if big.SizeBytes != 2*volume.GiB {
			t.Fatalf("snapshot after expansion records %d bytes", big.SizeBytes)
		}
		container := e.loc.Pool + "/" + volume.SnapshotsContainer(e.loc)
		dir := func(s *volume.Snapshot) string { return e.loc.Pool + "/" + s.SubvolumeName() }
		snap1 := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{ID: "snap-1"}))[0]
		snap2 := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{ID: "snap-2"}))[0]

		e.sim.ResetCommands()
		if err := e.m.DeleteSnapshot(ctx, "snap-1"); err != nil {
			t.Fatal(err)
		}
		// Made by this process: the removal and its read-back alone (snapshot_fast.go).
		if n := len(e.sim.Scripts()); n != 1 {
			t.Fatalf("delete took %d execs, want 1 (remove with read-back): %q", n, e.sim.Scripts())
		}
		if e.dirExists(t, dir(&snap1)) || !e.dirExists(t, dir(&snap2)) {
			t.Fatal("the deleted snapshot stayed, or the remaining one went")
		}
		if err := e.m.DeleteSnapshot(ctx, "snap-2"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := e.m.DeleteSnapshot(ctx, "snap-big"); err != nil {
				t.Fatalf("delete #%d: %v", i+1, err)
			}
		}
		// The container is the base path's, like its directory: it stays, empty.
		if !e.dirExists(t, container) || e.dirExists(t, dir(big)) {
			t.Fatalf("after the last snapshot: container %v, snap-big %v", e.dirExists(t, container), e.dirExists(t, dir(big)))
		}
		for _, sv := range e.sim.Subvolumes() {
			if sv.ReadOnly {
				t.Errorf("a read-only subvolume is left: %+v", sv)
			}
		}
		if err := e.m.DeleteSnapshot(ctx, "snap-never"); err != nil {
			t.Fatalf("delete of a snapshot that never was: %v", err)
		}
		if l := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{})); len(l) != 0 {
			t.Fatalf("left: %+v", l)
		}
		// The volume itself was never touched.
		if v := must(e.m.Get(ctx, "pvc-a")); v.SizeBytes != 2*volume.GiB || !v.Exported {
			t.Fatalf("source after its snapshots went: %+v", v)
		}
	})
}

// A snapshot still restored from can be deleted: the restore is a snapshot of its own.
func TestDeleteSnapshotWithRestoresAndDropped(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := snapshotEnv(t, d.cfg)
		ctx := context.Background()
		must(e.m.CreateFrom(ctx, e.req("pvc-r", 0), volume.Source{SnapshotID: "snap-1"}))
		e.sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDropAfter, Match: "subvolume/remove", Count: 1})
		err := e.m.DeleteSnapshot(ctx, "snap-1")
		if err != nil {
			if !errors.Is(err, rds.ErrUnavailable) {
				t.Fatalf("interrupted delete: %v", err)
			}
			if err := e.m.DeleteSnapshot(ctx, "snap-1"); err != nil {
				t.Fatalf("retry: %v", err)
			}
		}
		if l := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{})); len(l) != 0 {
			t.Fatalf("left: %+v", l)
		}
		if v := must(e.m.Get(ctx, "pvc-r")); !v.Exported {
			t.Fatalf("restore after its snapshot went: %+v", v)
		}
	})
}

// TestStateFromBeforeLabels: a simulator data directory written before the simulator followed the manual
// (testdata/state-before-labels.json: no label, subvolumes made by path by the driver of then: a volume, a
// snapshot of it, a volume restored from the snapshot) stays usable: the snapshot is found with its source
// and size, the restore is recognised as made from it, and everything can be deleted.
func TestStateFromBeforeLabels(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("testdata", "state-before-labels.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"k8s/pvc-old/disk.img", "k8s-snapshots/pvc-old/1073741824/snap-old/disk.img", "k8s/pvc-restored-old/disk.img"} {
		host := filepath.Join(dir, "fs", "pool", f)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(host, volume.GiB); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, rdssim.Config{DataDir: dir}, false)
	ctx := context.Background()
	snaps := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{}))
	if len(snaps) != 1 || snaps[0].ID != "snap-old" || snaps[0].SourceVolumeID != "pvc-old" || snaps[0].SizeBytes != volume.GiB {
		t.Fatalf("snapshots of the old state: %+v", snaps)
	}
	again := must(e.m.CreateFrom(ctx, e.req("pvc-restored-old", 0), volume.Source{SnapshotID: "snap-old"}))
	if again.SizeBytes != volume.GiB {
		t.Fatalf("the old restore: %+v", again)
	}
	must(e.m.CreateFrom(ctx, e.req("pvc-new", 0), volume.Source{SnapshotID: "snap-old"}))
	if err := e.m.DeleteSnapshot(ctx, "snap-old"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pvc-old", "pvc-restored-old", "pvc-new"} {
		if err := e.m.Delete(ctx, id, e.loc); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if subs, slots := e.sim.Subvolumes(), e.sim.Slots(); len(subs) != 0 || len(slots) != 0 {
		t.Fatalf("left: subvolumes %+v, disks %v", subs, slots)
	}
}
