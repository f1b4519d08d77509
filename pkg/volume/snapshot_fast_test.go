package volume_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// What the Manager remembers only narrows a guard: a source resized behind its back makes the guard decline,
// and the snapshot is taken from what the RDS answers, with the disk's real size in its name.
func TestSnapshotGuardDeclinesWhatChangedOnTheRDS(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-a", volume.GiB)))
	must(e.m.CreateSnapshot(ctx, "snap-first", "pvc-a")) // the container and parent= form are known from here
	grow, err := rds.SetDiskSize("pvc-a", 2*volume.GiB)
	if err != nil {
		t.Fatal(err)
	}
	e.raw(t, grow)
	e.sim.ResetCommands()
	s := must(e.m.CreateSnapshot(ctx, "snap-b", "pvc-a"))
	if s.SizeBytes != 2*volume.GiB || !strings.Contains(s.SubvolumeName(), ".2147483648.") {
		t.Fatalf("snapshot %+v (%s), want the source's real 2 GiB", s, s.SubvolumeName())
	}
	scripts := e.sim.Scripts()
	if len(scripts) != 2 || !strings.HasPrefix(scripts[0], ":if (") {
		t.Fatalf("want the declined guard with its read, then the add: %q", scripts)
	}
	// A snapshot deleted behind the Manager's back: its remembered removal finds nothing and succeeds.
	rm, err := rds.RemoveSubvolume("", s.SubvolumeName())
	if err == nil {
		e.raw(t, rm)
	}
	if err := e.m.DeleteSnapshot(ctx, "snap-b"); err != nil {
		t.Fatal(err)
	}
	if left := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{ID: "snap-b"})); len(left) != 0 {
		t.Fatalf("snapshot still listed: %+v", left)
	}
}
