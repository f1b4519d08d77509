package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

const gib = int64(1) << 30

// scenario builds, on the simulator, what a cluster that has run the driver for a while leaves: volumes with
// and without PVs, an older driver's flat volume, a leftover directory of an interrupted delete, and things
// of other people's in the base path that must never be deleted.
func scenario(t *testing.T, e *env) *fakeCluster {
	t.Helper()
	ctx := context.Background()
	e.create(t, "pvc-kept", 2*gib)
	e.create(t, "pvc-orphan", 3*gib)
	e.create(t, "pvc-leftover", gib)
	// An interrupted delete: the disk is gone, its directory (subvolume) with disk.img is not.
	e.run(t, func() (rds.Cmd, error) { return rds.RemoveDisk("pvc-leftover") })
	// The older public driver's volume: a flat file, same slot and NQN; it has a PV.
	e.addDisk(t, rds.FileDiskSpec{Slot: "pvc-legacy", FilePath: "pool/k8s/pvc-legacy.img", SizeBytes: 4 * gib, NQN: volume.NQN("pvc-legacy")})
	// A disk someone made by hand in the base path, under another NQN.
	e.addDisk(t, rds.FileDiskSpec{Slot: "vm-disk", FilePath: "pool/k8s/vm-disk.img", SizeBytes: gib, NQN: "nqn.2024-01.org.example:vm-disk"})
	// A flat image without a disk (it cannot be told from a user's), a user's file and a user's directory.
	e.writeFile(t, "pool/k8s/pvc-old.img", make([]byte, 4096))
	e.writeFile(t, "pool/k8s/notes.txt", []byte("hello"))
	e.writeFile(t, "pool/k8s/userdata/disk.img", make([]byte, 512))
	e.writeFile(t, "pool/k8s/userdata/photo.jpg", []byte("jpg"))
	if _, err := e.m.CreateSnapshot(ctx, "snap-kept", "pvc-kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.CreateSnapshot(ctx, "snap-orphan", "pvc-kept"); err != nil {
		t.Fatal(err)
	}
	return &fakeCluster{
		pvs: []Ref{
			{Name: "pvc-kept", Handle: "pvc-kept", SizeBytes: 2 * gib, BasePath: "pool/k8s"},
			{Name: "legacy-pv", Handle: "pvc-legacy", SizeBytes: 4 * gib},
			{Name: "pv-gone", Handle: "pvc-gone", SizeBytes: 5 * gib, BasePath: "pool/k8s"},
		},
		contents: []Ref{
			{Name: "snapcontent-kept", Handle: "snap-kept", SizeBytes: 2 * gib},
			{Name: "snapcontent-gone", Handle: "snap-gone"},
		},
	}
}

func TestOrphansListsBothSidesAndDeletesOnlyWhatTheDriverOwns(t *testing.T) {
	for name, cfg := range map[string]rdssim.Config{
		"documented":     {},
		"names as paths": {SubvolumeNames: rdssim.NamePath, SubvolumeParent: rdssim.NamePath},
	} {
		t.Run(name, func(t *testing.T) { testOrphans(t, cfg) })
	}
}

// testOrphans is the scenario on one RouterOS dialect: the same report, the same deletions.
func testOrphans(t *testing.T, cfg rdssim.Config) {
	e := newEnv(t, cfg)
	ctx := context.Background()
	cluster := scenario(t, e)
	before := e.inventory(t)

	rep, err := Compare(ctx, e.m, cluster, []volume.Location{e.loc})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "orphans.table.golden", table.Bytes())
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "orphans.json.golden", js.Bytes())
	if after := e.inventory(t); !slices.Equal(after.Files, before.Files) || !slices.Equal(after.Disks, before.Disks) {
		t.Fatalf("listing changed the RDS:\nbefore %+v\nafter  %+v", before, after)
	}

	var log bytes.Buffer
	for _, o := range Delete(ctx, e.m, cluster, rep, &log) {
		if o.Err != nil {
			t.Errorf("delete %s %s: %v", o.Item.Kind, o.Item.ID, o.Err)
		}
	}
	golden(t, "orphans.delete.golden", log.Bytes())

	inv := e.inventory(t)
	for _, gone := range []string{"pvc-orphan", "pvc-leftover", "snap-orphan"} {
		for _, n := range append(append(inv.Disks, inv.Subvolumes...), inv.Files...) {
			if strings.Contains(n, gone) {
				t.Errorf("%s still on the RDS: %s", gone, n)
			}
		}
	}
	if want := []string{"pvc-kept", "pvc-legacy", "vm-disk"}; !slices.Equal(inv.Disks, want) {
		t.Errorf("disks after delete: %v, want %v", inv.Disks, want)
	}
	for _, kept := range []string{"pool/k8s/pvc-old.img", "pool/k8s/notes.txt", "pool/k8s/userdata/photo.jpg",
		"pool/k8s/userdata/disk.img", "pool/k8s/vm-disk.img", "pool/k8s/pvc-legacy.img", "pool/k8s/pvc-kept/disk.img"} {
		if !slices.Contains(inv.Files, kept) {
			t.Errorf("%s was removed: %v", kept, inv.Files)
		}
	}

	// Run again: only what the driver does not own, and the cluster's side, are left.
	rep, err = Compare(ctx, e.m, cluster, []volume.Location{e.loc})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range rep.Items {
		if it.Deletable {
			t.Errorf("still deletable after --delete: %+v", it)
		}
	}
}

// TestDeleteOnlyWhatWasListed: a volume created after the listing (a PVC being provisioned while orphans
// runs) is not deleted, and an item whose ownership changed since the listing is refused by pkg/volume.
func TestDeleteOnlyWhatWasListed(t *testing.T) {
	e := newEnv(t, rdssimDefault())
	ctx := context.Background()
	e.create(t, "pvc-a", gib)
	e.create(t, "pvc-b", gib)
	e.run(t, func() (rds.Cmd, error) { return rds.RemoveDisk("pvc-b") })
	rep, err := Compare(ctx, e.m, &fakeCluster{}, []volume.Location{e.loc})
	if err != nil {
		t.Fatal(err)
	}
	e.create(t, "pvc-new", gib)
	e.create(t, "pvc-c", gib)
	// pvc-b's directory now holds a user's file: it is no longer of the driver's shape.
	e.writeFile(t, "pool/k8s/pvc-b/keep.txt", []byte("mine"))
	// pvc-c was listed, then its PV was made (the PVC was being provisioned while orphans ran).
	rep.Items = append(rep.Items, Item{Side: OnlyOnRDS, Kind: KindVolume, ID: "pvc-c", Deletable: true, loc: e.loc})
	var log bytes.Buffer
	out := Delete(ctx, e.m, &fakeCluster{pvs: []Ref{{Name: "pv-c", Handle: "pvc-c"}}}, rep, &log)
	if len(out) != 2 || out[0].Err != nil || out[1].Err == nil {
		t.Fatalf("outcomes: %+v\n%s", out, log.String())
	}
	for _, want := range []string{"FAILED to delete leftover pvc-b", "skipped volume pvc-c (): PersistentVolume pv-c names it now"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q: %s", want, log.String())
		}
	}
	inv := e.inventory(t)
	if !slices.Contains(inv.Disks, "pvc-new") || !slices.Contains(inv.Disks, "pvc-c") || !slices.Contains(inv.Files, "pool/k8s/pvc-b/keep.txt") {
		t.Errorf("deleted what it did not list or own: %+v", inv)
	}
}

// TestCompareWithoutSnapshotCRD: a cluster that cannot say which snapshot contents exist gets no snapshot
// listed as an orphan, and a note says so.
func TestCompareWithoutSnapshotCRD(t *testing.T) {
	e := newEnv(t, rdssimDefault())
	ctx := context.Background()
	e.create(t, "pvc-a", gib)
	if _, err := e.m.CreateSnapshot(ctx, "snap-a", "pvc-a"); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(ctx, e.m, &fakeCluster{pvs: []Ref{{Name: "a", Handle: "pvc-a"}}, noContents: true}, []volume.Location{e.loc})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 0 || len(rep.Notes) != 1 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestCompareBasePathsFromPVs: a base path that only a PV names is looked in as well.
func TestCompareBasePathsFromPVs(t *testing.T) {
	e := newEnv(t, rdssimDefault())
	ctx := context.Background()
	other, _ := volume.ParseLocation("pool/other")
	e.writeFile(t, "pool/other/x.txt", []byte("x"))
	if _, err := e.m.Create(ctx, volume.CreateRequest{ID: "pvc-o", RequiredBytes: gib, Location: other}); err != nil {
		t.Fatal(err)
	}
	e.create(t, "pvc-main", gib)
	cluster := &fakeCluster{pvs: []Ref{{Name: "main", Handle: "pvc-main", BasePath: "pool/k8s"}, {Name: "other", Handle: "pvc-gone", BasePath: "pool/other"},
		{Name: "elsewhere", Handle: "pvc-main", BasePath: "nopool/x"}}}
	rep, err := Compare(ctx, e.m, cluster, []volume.Location{e.loc})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	if !slices.Equal(rep.BasePaths, []string{"pool/k8s", "nopool/x", "pool/other"}) {
		t.Errorf("base paths %v", rep.BasePaths)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "base path nopool/x: no pool is mounted") {
		t.Errorf("notes %q", rep.Notes)
	}
	var ids []string
	for _, it := range rep.Items {
		ids = append(ids, string(it.Kind)+":"+it.ID+it.Path)
	}
	want := []string{"volume:pvc-opool/other/pvc-o/disk.img", "file:pool/other/x.txt", "pv:pvc-gone"}
	if !slices.Equal(ids, want) {
		t.Errorf("items %v, want %v\n%s", ids, want, b)
	}
}

// TestOrphansOnAnXFSPool: flat volumes are compared and deleted the same way, and a box without btrfs is never
// asked about btrfs (no snapshots can exist there).
func TestOrphansOnAnXFSPool(t *testing.T) {
	e := newEnv(t, rdssim.Config{PoolFS: "xfs"})
	ctx := context.Background()
	e.create(t, "pvc-kept", gib)
	e.create(t, "pvc-orphan", gib)
	cluster := &fakeCluster{pvs: []Ref{{Name: "kept", Handle: "pvc-kept"}}}
	rep, err := Compare(ctx, e.m, cluster, []volume.Location{e.loc})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 1 || rep.Items[0].ID != "pvc-orphan" || rep.Items[0].Path != "pool/k8s/pvc-orphan.img" || !rep.Items[0].Deletable {
		t.Fatalf("items %+v", rep.Items)
	}
	for _, o := range Delete(ctx, e.m, cluster, rep, &bytes.Buffer{}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	if inv := e.inventory(t); !slices.Equal(inv.Disks, []string{"pvc-kept"}) || slices.Contains(inv.Files, "pool/k8s/pvc-orphan.img") {
		t.Errorf("after delete: %+v", inv)
	}
	for _, c := range e.sim.Commands() {
		if strings.Contains(c, "btrfs") {
			t.Errorf("asked an xfs-only box about btrfs: %s", c)
		}
	}
}

// TestCompareCostsFixedExecs: one comparison costs the same few SSH execs whatever the number of volumes
// (one listing each of disks, the base path, snapshots, and the pool once), so at 30 ms a round trip it
// stays well under a second on a box with hundreds of volumes.
func TestCompareCostsFixedExecs(t *testing.T) {
	e := newEnv(t, rdssimDefault())
	ctx := context.Background()
	execs := func(n int) int {
		for i := len(e.sim.Slots()); i < n; i++ {
			e.create(t, fmt.Sprintf("pvc-%03d", i), gib)
		}
		m := volume.NewManager(e.client) // a fresh process: nothing about the pool is known yet
		e.sim.ResetCommands()
		rep, err := Compare(ctx, m, &fakeCluster{}, []volume.Location{e.loc})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Items) != n {
			t.Fatalf("%d items for %d volumes", len(rep.Items), n)
		}
		return len(e.sim.Scripts())
	}
	few, many := execs(3), execs(150)
	if few != many || many > 6 {
		t.Errorf("execs: %d for 3 volumes, %d for 150", few, many)
	}
	e.sim.SetLatency(30 * time.Millisecond)
	start := time.Now()
	if _, err := Compare(ctx, volume.NewManager(e.client), &fakeCluster{}, []volume.Location{e.loc}); err != nil {
		t.Fatal(err)
	}
	t.Logf("150 volumes: %d execs, %s at 30 ms per exec", many, time.Since(start).Round(time.Millisecond))
}
