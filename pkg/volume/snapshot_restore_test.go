package volume_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// snapshotEnv is a simulator with a 2 GiB volume pvc-src and its snapshot snap-1.
func snapshotEnv(t *testing.T, cfg rdssim.Config) *env {
	t.Helper()
	e := newEnv(t, cfg, false)
	ctx := context.Background()
	must(e.m.Create(ctx, e.req("pvc-src", 2*volume.GiB)))
	must(e.m.CreateSnapshot(ctx, "snap-1", "pvc-src"))
	return e
}

func TestCreateFromSizes(t *testing.T) {
	for _, c := range []struct {
		name            string
		required, limit int64
		want            int64 // 0: ErrOutOfRange
	}{
		{"unspecified: the source's size", 0, 0, 2 * volume.GiB},
		{"exactly the source's size", 2 * volume.GiB, 0, 2 * volume.GiB},
		{"larger, rounded up", 2*volume.GiB + 1, 0, 2*volume.GiB + volume.MiB},
		{"larger within a limit", 3 * volume.GiB, 4 * volume.GiB, 3 * volume.GiB},
		{"smaller than the source", volume.GiB, 0, 0},
		{"limit below the source", 0, volume.GiB, 0},
		{"limit below the rounded request", 2*volume.GiB + 1, 2*volume.GiB + 2, 0},
	} {
		for _, src := range []volume.Source{{SnapshotID: "snap-1"}, {VolumeID: "pvc-src"}} {
			t.Run(c.name+"/"+src.String(), func(t *testing.T) {
				e := snapshotEnv(t, rdssim.Config{})
				ctx := context.Background()
				e.sim.ResetCommands()
				r := e.req("pvc-new", c.required)
				r.LimitBytes = c.limit
				v, err := e.m.CreateFrom(ctx, r, src)
				if c.want == 0 {
					if !errors.Is(err, volume.ErrOutOfRange) {
						t.Fatalf("got %+v, %v; want ErrOutOfRange", v, err)
					}
					for _, cmd := range e.sim.Commands() {
						if !strings.Contains(cmd, " print ") && !strings.HasPrefix(cmd, ":put") {
							t.Fatalf("an out-of-range request changed the RDS: %q", cmd)
						}
					}
					return
				}
				if err != nil || v.SizeBytes != c.want {
					t.Fatalf("got %+v, %v; want %d bytes", v, err, c.want)
				}
				// The disk is added at the source's size and grown only by /disk set.
				cmds := strings.Join(e.sim.Commands(), "\n")
				if !strings.Contains(cmds, "file-size=2147483648 slot=\"pvc-new\"") {
					t.Fatalf("disk not added at the source's size:\n%s", cmds)
				}
				if grown := strings.Contains(cmds, "/disk set"); grown != (c.want > 2*volume.GiB) {
					t.Fatalf("resize sent: %v, want %v:\n%s", grown, c.want > 2*volume.GiB, cmds)
				}
			})
		}
	}
}

// A restore of a snapshot this process made is one exec (guarded, snapshot_fast.go); of any other (a fresh
// process), one read and one script.
func TestCreateFromExecs(t *testing.T) {
	e := snapshotEnv(t, rdssim.Config{})
	ctx := context.Background()
	e.sim.ResetCommands()
	must(e.m.CreateFrom(ctx, e.req("pvc-new", 4*volume.GiB), volume.Source{SnapshotID: "snap-1"}))
	if n := len(e.sim.Scripts()); n != 1 {
		t.Fatalf("restore took %d execs, want 1 (the guarded script): %q", n, e.sim.Scripts())
	}
	fresh := volume.NewManager(e.client)
	must(fresh.PoolFS(ctx, "pool"))
	e.sim.ResetCommands()
	must(fresh.CreateFrom(ctx, e.req("pvc-other", 4*volume.GiB), volume.Source{SnapshotID: "snap-1"}))
	// One read, then the add alone while the process learns the form parent= takes, then the disk's script.
	if n := len(e.sim.Scripts()); n != 3 {
		t.Fatalf("restore by a fresh process took %d execs, want 3 (one read, the add, the disk): %q", n, e.sim.Scripts())
	}
	// The volume restored in one exec is remembered: its delete is one exec too.
	e.sim.ResetCommands()
	if err := e.m.Delete(ctx, "pvc-new", e.loc); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sim.Scripts()); n != 1 {
		t.Fatalf("delete of the restored volume took %d execs, want 1: %q", n, e.sim.Scripts())
	}
}

func TestCreateFromIdempotentAndConflicting(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := snapshotEnv(t, d.cfg)
		ctx := context.Background()
		must(e.m.Create(ctx, e.req("pvc-other", 2*volume.GiB)))
		must(e.m.CreateSnapshot(ctx, "snap-2", "pvc-src"))
		restore := volume.Source{SnapshotID: "snap-1"}
		v1 := must(e.m.CreateFrom(ctx, e.req("pvc-r", 3*volume.GiB), restore))
		v2 := must(e.m.CreateFrom(ctx, e.req("pvc-r", 3*volume.GiB), restore))
		if *v1 != *v2 {
			t.Fatalf("repeat: %+v, first %+v", v2, v1)
		}
		clone := volume.Source{VolumeID: "pvc-src"}
		c1 := must(e.m.CreateFrom(ctx, e.req("pvc-c", 0), clone))
		if c2 := must(e.m.CreateFrom(ctx, e.req("pvc-c", 0), clone)); *c1 != *c2 {
			t.Fatalf("repeat clone: %+v, first %+v", c2, c1)
		}
		for _, c := range []struct {
			name string
			id   string
			size int64
			src  volume.Source
		}{
			{"restore with another snapshot", "pvc-r", 3 * volume.GiB, volume.Source{SnapshotID: "snap-2"}},
			{"restore as a clone of the snapshot's source", "pvc-r", 3 * volume.GiB, clone},
			{"restore larger than made", "pvc-r", 4 * volume.GiB, restore},
			{"clone of another volume", "pvc-c", 0, volume.Source{VolumeID: "pvc-other"}},
			{"clone as a restore", "pvc-c", 0, restore},
			{"a plain volume's name", "pvc-other", 0, clone},
			{"a clone onto its source", "pvc-src", 0, clone},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := e.m.CreateFrom(ctx, e.req(c.id, c.size), c.src); !errors.Is(err, volume.ErrAlreadyExists) {
					t.Fatalf("got %v, want ErrAlreadyExists", err)
				}
			})
		}
		other := e.req("pvc-r", 3*volume.GiB)
		other.Location = volume.Location{Pool: "pool", Dir: "elsewhere"}
		if _, err := e.m.CreateFrom(ctx, other, restore); !errors.Is(err, volume.ErrAlreadyExists) {
			t.Fatalf("same name in another base path: %v, want ErrAlreadyExists", err)
		}
		// The snapshot deleted after the restore: a repeat still recognises the restore by its parent's name.
		if err := e.m.DeleteSnapshot(ctx, "snap-1"); err != nil {
			t.Fatal(err)
		}
		if v3 := must(e.m.CreateFrom(ctx, e.req("pvc-r", 3*volume.GiB), restore)); *v3 != *v1 {
			t.Fatalf("repeat after the snapshot was deleted: %+v", v3)
		}
	})
}

func TestCreateFromMissingSources(t *testing.T) {
	e := snapshotEnv(t, rdssim.Config{})
	ctx := context.Background()
	for _, src := range []volume.Source{{SnapshotID: "snap-none"}, {SnapshotID: "snap"}, {VolumeID: "pvc-none"}} {
		if _, err := e.m.CreateFrom(ctx, e.req("pvc-new", 0), src); !errors.Is(err, volume.ErrNotFound) {
			t.Errorf("from %s: %v, want ErrNotFound", src, err)
		}
	}
	if d, f, s := e.state(t, "pvc-new"); d || f || s {
		t.Fatal("a create from a missing source changed the RDS")
	}
	// A base path on a pool the RDS does not have is refused before anything is read of the source.
	r := e.req("pvc-new", 0)
	r.Location = volume.Location{Pool: "pool2", Dir: "k8s"}
	if _, err := e.m.CreateFrom(ctx, r, volume.Source{SnapshotID: "snap-1"}); !errors.Is(err, volume.ErrNoPool) {
		t.Fatalf("onto a pool the RDS does not have: %v, want ErrNoPool", err)
	}
}

// A crash at any step of the restore script converges on the retry the sidecar makes (or at once, when the
// RDS answers the re-read): one volume of the asked size holding the snapshot's data, nothing twice.
func TestCreateFromConvergesAfterDrop(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		for _, f := range []rdssim.Fault{
			{Kind: rdssim.FaultDropAfter, Match: "subvolume/add", Count: 1},
			{Kind: rdssim.FaultDropBefore, Match: "/disk add", Count: 1},
			{Kind: rdssim.FaultDropAfter, Match: "/disk add", Count: 1},
			{Kind: rdssim.FaultDropBefore, Match: "/disk set", Count: 1},
			{Kind: rdssim.FaultDropAfter, Match: "/disk set", Count: 1},
			{Kind: rdssim.FaultDropAfter, Match: "subvolume/add", Count: 2},
			{Kind: rdssim.FaultDropBefore, Match: "/disk set", Count: 2},
		} {
			t.Run(f.String(), func(t *testing.T) {
				e := snapshotEnv(t, d.cfg)
				ctx := context.Background()
				p := newPattern(t)
				e.write(t, "pool/k8s/pvc-src/disk.img", 2*volume.GiB, p)
				must(e.m.CreateSnapshot(ctx, "snap-data", "pvc-src"))
				e.sim.SetFaults(f)
				src := volume.Source{SnapshotID: "snap-data"}
				v, err := e.m.CreateFrom(ctx, e.req("pvc-r", 3*volume.GiB), src)
				for i := 0; err != nil && i < 2; i++ {
					if !errors.Is(err, rds.ErrUnavailable) {
						t.Fatalf("attempt: %v, want success or ErrUnavailable", err)
					}
					v, err = e.m.CreateFrom(ctx, e.req("pvc-r", 3*volume.GiB), src)
				}
				if err != nil {
					t.Fatalf("retries: %v", err)
				}
				if v.SizeBytes != 3*volume.GiB || !v.Exported {
					t.Fatalf("converged to %+v", v)
				}
				if disks := must(e.client.Disks(ctx, rds.Eq("slot", "pvc-r"))); len(disks) != 1 {
					t.Fatalf("disks: %+v", disks)
				}
				e.wantData(t, "converged restore", v.FilePath, 2*volume.GiB, 3*volume.GiB, p)
			})
		}
	})
}

// A pool without room for the copy refuses it with the RDS's words and keeps nothing of it, whichever step
// ran out of space: the writable snapshot, or the growth to the requested size. (The /disk add itself
// allocates nothing: its file is already there.)
func TestCreateFromDiskFullLeavesNothing(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		for _, match := range []string{"subvolume/add", "/disk set"} {
			t.Run(match, func(t *testing.T) {
				e := snapshotEnv(t, d.cfg)
				ctx := context.Background()
				e.sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDiskFull, Match: match})
				_, err := e.m.CreateFrom(ctx, e.req("pvc-r", 3*volume.GiB), volume.Source{SnapshotID: "snap-1"})
				if !errors.Is(err, rds.ErrNoSpace) || !strings.Contains(err.Error(), "not enough space") {
					t.Fatalf("got %v, want ErrNoSpace with the RouterOS text", err)
				}
				e.sim.SetFaults()
				if d, f, s := e.state(t, "pvc-r"); d || f || s {
					t.Fatalf("left behind: disk=%v file=%v subvolume=%v", d, f, s)
				}
			})
		}
	})
}
