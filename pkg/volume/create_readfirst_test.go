package volume_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// The one-exec create reads the name's state inside its own script, before `subvolume add` and `/disk add`
// (create_readfirst.go). When that read shows the id taken, the create must undo exactly what it added and
// nothing else, and answer as the read-first create did. Under a dialect whose scripts go on after a failed
// command, the create must read first and add nothing while the id is taken.

// scriptsGoOn tells whether a dialect's scripts go on after a failed command.
func scriptsGoOn(d dialect) bool { return d.cfg.OnError == rdssim.OnErrorContinue }

func TestCreateReadFirstUndoesOnlyItsOwnAdditions(t *testing.T) {
	teamA := volume.Location{Pool: "pool", Dir: "team-a"}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  error
		// added: in a dialect that stops, the one-exec script gets as far as adding the subvolume (a
		// different path from what takes the id), which the create must then remove by its uuid.
		added bool
		// oneExec: the state read first decides the answer alone.
		oneExec bool
	}{
		{"the id's volume in another base path", func(t *testing.T, e *env) {
			r := e.req("pvc-x", volume.GiB)
			r.Location = teamA
			e.makeBase(t, teamA)
			if _, err := e.m.Create(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}, volume.ErrAlreadyExists, true, false},
		{"another tool's disk holds the slot", func(t *testing.T, e *env) {
			e.makeBase(t, volume.Location{Pool: "pool", Dir: "other"})
			c, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-x", FilePath: "pool/other/foreign.img", SizeBytes: volume.GiB,
				NQN: "nqn.2010-01.org.example:foreign"})
			if err != nil {
				t.Fatal(err)
			}
			e.raw(t, c)
		}, volume.ErrAlreadyExists, true, false},
		{"an admin's subvolume of the id's leaf in another base path, with files", func(t *testing.T, e *env) {
			e.subvolumeAt(t, "team-a/pvc-x", "notes.txt")
		}, volume.ErrNotOwned, true, false},
		{"an admin's subvolume at the volume's own path, with files", func(t *testing.T, e *env) {
			e.subvolumeAt(t, "k8s/pvc-x", "notes.txt")
		}, volume.ErrNotOwned, false, false},
		{"the same volume, asked for a different size", func(t *testing.T, e *env) {
			if _, err := e.m.Create(context.Background(), e.req("pvc-x", 2*volume.GiB)); err != nil {
				t.Fatal(err)
			}
		}, volume.ErrAlreadyExists, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			forDialects(t, func(t *testing.T, d dialect) {
				e := newEnv(t, d.cfg, false)
				e.makeBase(t, e.loc)
				c.setup(t, e)
				// A fresh manager, as after a controller restart: nothing is remembered.
				m := volume.NewManager(e.client)
				if _, err := m.PoolFS(context.Background(), "pool"); err != nil {
					t.Fatal(err)
				}
				before := e.poolSnapshot(t)
				e.sim.ResetCommands()
				_, err := m.Create(context.Background(), e.req("pvc-x", 3*volume.GiB))
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "pvc-x") {
					t.Fatalf("got %v, want %v naming the id", err, c.want)
				}
				if after := e.poolSnapshot(t); !slices.Equal(before, after) {
					t.Fatalf("the create changed the RDS:\nbefore %q\nafter  %q", before, after)
				}
				scripts := e.sim.Scripts()
				cmds := e.sim.Commands()
				addsSV := slices.ContainsFunc(cmds, func(s string) bool { return strings.HasPrefix(s, "/disk/btrfs/subvolume/add") })
				addsDisk := slices.ContainsFunc(cmds, func(s string) bool { return strings.HasPrefix(s, "/disk add") })
				if scriptsGoOn(d) {
					// Read first, in an exec of its own: nothing is ever added while the id is taken.
					if addsSV || addsDisk {
						t.Fatalf("under a dialect that goes on after errors, the create added while the id was taken: %q", cmds)
					}
					return
				}
				// One exec: the name's state before anything is added.
				first := scripts[0]
				if !strings.HasPrefix(first, `/disk print detail where slot="pvc-x"`) || !strings.Contains(first, "subvolume/add") {
					t.Fatalf("the create's first exec does not read the name's state before adding: %q", first)
				}
				removesByUUID := slices.ContainsFunc(cmds, func(s string) bool {
					return strings.Contains(s, "subvolume remove [find where uuid=") || strings.Contains(s, "subvolume/remove [find where uuid=")
				})
				if c.added != removesByUUID {
					t.Errorf("removal by uuid of what the create added: %v, want %v: %q", removesByUUID, c.added, cmds)
				}
				if c.oneExec && len(scripts) != 1 {
					t.Errorf("a create that added nothing took %d execs, want 1: %q", len(scripts), scripts)
				}
			})
		})
	}
}

// The first create of a process, and a repeated one, are one exec each under every dialect that stops at a
// failed command; under one that goes on, two (the name's state first).
func TestCreateExecsPerDialect(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.cfg, false)
		e.makeBase(t, e.loc)
		ctx := context.Background()
		if _, err := e.m.PoolFS(ctx, "pool"); err != nil {
			t.Fatal(err)
		}
		want := 1
		if scriptsGoOn(d) {
			want = 2
		}
		for _, round := range []string{"create", "create again"} {
			e.sim.ResetCommands()
			if _, err := e.m.Create(ctx, e.req("pvc-1", volume.GiB)); err != nil {
				t.Fatalf("%s: %v", round, err)
			}
			if n := len(e.sim.Scripts()); n > want {
				t.Errorf("%s took %d execs, want at most %d: %q", round, n, want, e.sim.Scripts())
			}
		}
	})
}

// A one-exec create of an id another tool's disk holds, whose connection drops after `subvolume add`, must
// not leave that subvolume behind: it reads the state at once and removes it (found by the soak).
func TestCreateOfATakenIDDroppedLeavesNothing(t *testing.T) {
	for _, kind := range []rdssim.FaultKind{rdssim.FaultDropBefore, rdssim.FaultDropAfter} {
		t.Run(string(kind), func(t *testing.T) {
			forDialects(t, func(t *testing.T, d dialect) {
				e := newEnv(t, d.cfg, false)
				e.makeBase(t, e.loc)
				e.makeBase(t, volume.Location{Pool: "pool", Dir: "other"})
				c, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-x", FilePath: "pool/other/foreign.img", SizeBytes: volume.GiB,
					NQN: "nqn.2010-01.org.example:foreign"})
				if err != nil {
					t.Fatal(err)
				}
				e.raw(t, c)
				ctx := context.Background()
				if _, err := e.m.PoolFS(ctx, "pool"); err != nil {
					t.Fatal(err)
				}
				before := e.poolSnapshot(t)
				match := "/disk add"
				if kind == rdssim.FaultDropAfter {
					match = "subvolume/add"
				}
				e.sim.SetFaults(append(append([]rdssim.Fault{}, d.cfg.Faults...), rdssim.Fault{Kind: kind, Match: match, Count: 1})...)
				_, err = e.m.Create(ctx, e.req("pvc-x", volume.GiB))
				e.sim.SetFaults(d.cfg.Faults...)
				if err == nil {
					t.Fatal("the create of a taken id succeeded")
				}
				if after := e.poolSnapshot(t); !slices.Equal(before, after) {
					t.Fatalf("the interrupted create changed the RDS (%v):\nbefore %q\nafter  %q", err, before, after)
				}
			})
		})
	}
}
