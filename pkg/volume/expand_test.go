package volume_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/routeros"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// TestExpandIsOneExec: growing, and asking for less than the volume has, each cost one exec.
func TestExpandIsOneExec(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-x", 2*volume.GiB)))
	for _, tc := range []struct {
		ask, want int64
	}{{4 * volume.GiB, 4 * volume.GiB}, {3 * volume.GiB, 4 * volume.GiB}, {4 * volume.GiB, 4 * volume.GiB}} {
		e.sim.ResetCommands()
		v := must(e.m.Expand(ctx, "pvc-x", tc.ask, 0))
		if v.SizeBytes != tc.want {
			t.Errorf("expand to %d: %d bytes, want %d", tc.ask, v.SizeBytes, tc.want)
		}
		if n := len(e.sim.Scripts()); n != 1 {
			t.Errorf("expand to %d cost %d execs, want 1: %q", tc.ask, n, e.sim.Scripts())
		}
	}
}

// TestExpandLeavesForeignDisksAlone: a disk with the volume's slot but another NQN is refused and keeps
// its size.
func TestExpandLeavesForeignDisksAlone(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	add := must(rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-f", FilePath: "pool/k8s/pvc-f.img", SizeBytes: volume.GiB,
		NQN: "nqn.2000-02.com.mikrotik:someone-else"}))
	e.raw(t, add)
	if _, err := e.m.Expand(ctx, "pvc-f", 2*volume.GiB, 0); !errors.Is(err, volume.ErrNotOwned) {
		t.Fatalf("expand of a foreign disk: %v, want ErrNotOwned", err)
	}
	d := must(e.client.Disk(ctx, "pvc-f"))
	if d.SizeBytes != volume.GiB {
		t.Errorf("the foreign disk was resized to %d", d.SizeBytes)
	}
}

// dropSteps runs the first Run's reads without its steps: a RouterOS whose find does not compare sizes,
// so the guarded resize matches nothing.
type dropSteps struct {
	volume.RouterOS
	dropped bool
}

func (d *dropSteps) Run(ctx context.Context, steps []rds.Cmd, reads ...rds.Cmd) ([][]routeros.Item, error) {
	if !d.dropped && len(steps) == 1 && steps[0].Verb() == "disk.set" {
		d.dropped = true
		steps = nil
	}
	return d.RouterOS.Run(ctx, steps, reads...)
}

// TestExpandFallsBackWhenTheGuardMatchesNothing: the volume still grows, reading its size first.
func TestExpandFallsBackWhenTheGuardMatchesNothing(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-g", 2*volume.GiB)))
	ros := &dropSteps{RouterOS: e.client}
	m := volume.NewManager(ros)
	v := must(m.Expand(ctx, "pvc-g", 3*volume.GiB, 0))
	if !ros.dropped || v.SizeBytes != 3*volume.GiB {
		t.Fatalf("after the fallback: %d bytes (guard dropped: %v)", v.SizeBytes, ros.dropped)
	}
}

// TestDeleteOfARememberedVolumeIsOneExec: the driver that created a volume deletes it in one exec, the
// subvolume by the uuid it listed at create time, even beside another subvolume with the same leaf; a
// driver that did not create it needs two (it reads first).
func TestDeleteOfARememberedVolumeIsOneExec(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-one", volume.GiB)))
	must(e.m.Create(ctx, e.req("pvc-two", volume.GiB)))
	e.raw(t, must(rds.AddSubvolume(e.label(), "backups/pvc-one")))
	e.sim.ResetCommands()
	if err := e.m.Delete(ctx, "pvc-one", e.loc); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Scripts()); n != 1 {
		t.Errorf("delete of a remembered volume: %d execs, want 1: %q", n, e.sim.Scripts())
	}
	if d, f, s := e.state(t, "pvc-one"); d || f || s {
		t.Errorf("left behind: disk=%v file=%v subvolume=%v", d, f, s)
	}
	if left := e.leftovers(t, "backups/pvc-one"); len(left) != 2 {
		t.Errorf("the other subvolume with the same leaf was touched: %v", left)
	}
	e.sim.ResetCommands()
	if err := volume.NewManager(e.client).Delete(ctx, "pvc-two", e.loc); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Scripts()); n < 2 {
		t.Errorf("delete without memory: %d execs; it must read first", n)
	}
	if d, f, s := e.state(t, "pvc-two"); d || f || s {
		t.Errorf("left behind: disk=%v file=%v subvolume=%v", d, f, s)
	}
}

// TestDeleteOfAReplacedVolumeGoesByTheRDS: a remembered volume whose disk was replaced by a foreign one
// under the same slot: the guarded removal leaves the foreign disk, and the delete refuses it as today.
func TestDeleteOfAReplacedVolumeGoesByTheRDS(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-rep", volume.GiB)))
	e.raw(t, must(rds.RemoveDisk("pvc-rep")))
	e.raw(t, must(rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-rep", FilePath: "pool/other/x.img", SizeBytes: volume.GiB,
		NQN: "nqn.2000-02.com.mikrotik:someone-else"})))
	if err := e.m.Delete(ctx, "pvc-rep", e.loc); !errors.Is(err, volume.ErrNotOwned) {
		t.Fatalf("delete of a replaced disk: %v, want ErrNotOwned", err)
	}
	if d := must(e.client.Disk(ctx, "pvc-rep")); d.FilePath != "pool/other/x.img" && d.FilePath != "/pool/other/x.img" {
		t.Errorf("the foreign disk changed: %+v", d)
	}
}

// TestDeleteOfARestoredVolumeIsOneExec: a restore remembers its subvolume as a create does.
func TestDeleteOfARestoredVolumeIsOneExec(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-src", 2*volume.GiB)))
	must(e.m.CreateSnapshot(ctx, "snap-1", "pvc-src"))
	must(e.m.CreateFrom(ctx, e.req("pvc-new", 4*volume.GiB), volume.Source{SnapshotID: "snap-1"}))
	e.sim.ResetCommands()
	if err := e.m.Delete(ctx, "pvc-new", e.loc); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Scripts()); n != 1 {
		t.Errorf("delete of a restored volume: %d execs, want 1", n)
	}
	if d, f, s := e.state(t, "pvc-new"); d || f || s {
		t.Errorf("left behind: disk=%v file=%v subvolume=%v", d, f, s)
	}
}
