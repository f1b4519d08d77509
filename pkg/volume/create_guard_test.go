package volume_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// execsOf runs fn and returns the scripts the simulator received meanwhile.
func (e *env) execsOf(t *testing.T, fn func()) []string {
	t.Helper()
	e.sim.ResetCommands()
	fn()
	return e.sim.Scripts()
}

func TestGuardedCreateCostsOneExec(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	if _, err := e.m.PoolFS(ctx, "pool"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"first", "repeated"} {
		scripts := e.execsOf(t, func() {
			if _, err := e.m.Create(ctx, e.req("pvc-g", volume.GiB)); err != nil {
				t.Fatalf("%s create: %v", step, err)
			}
		})
		if len(scripts) != 1 || !strings.HasPrefix(scripts[0], ":if (") {
			t.Errorf("%s create: %d execs, want one guarded script: %q", step, len(scripts), scripts)
		}
	}
	// A repeated create with another size is refused from the same read-back, and changes nothing.
	scripts := e.execsOf(t, func() {
		if _, err := e.m.Create(ctx, e.req("pvc-g", 3*volume.GiB)); !errors.Is(err, volume.ErrAlreadyExists) {
			t.Fatalf("create of another size: %v, want ErrAlreadyExists", err)
		}
	})
	if len(scripts) != 1 {
		t.Errorf("conflicting create: %d execs, want 1", len(scripts))
	}
}

// A console without :if refuses the whole script, so nothing ran: the create reads the name first (two execs
// from then on) and the volume is made exactly once.
func TestCreateWithoutScriptIf(t *testing.T) {
	e := newEnv(t, rdssim.Config{ScriptIf: rdssim.ScriptIfNo}, false)
	ctx := context.Background()
	if _, err := e.m.PoolFS(ctx, "pool"); err != nil {
		t.Fatal(err)
	}
	first := e.execsOf(t, func() {
		if _, err := e.m.Create(ctx, e.req("pvc-a", volume.GiB)); err != nil {
			t.Fatal(err)
		}
	})
	if len(first) != 3 || !strings.HasPrefix(first[0], ":if (") || strings.Contains(first[2], ":if") {
		t.Errorf("first create: %d execs %q, want the refused guard, a read, the script", len(first), first)
	}
	next := e.execsOf(t, func() {
		if _, err := e.m.Create(ctx, e.req("pvc-b", volume.GiB)); err != nil {
			t.Fatal(err)
		}
	})
	if len(next) != 2 || strings.Contains(strings.Join(next, ""), ":if") {
		t.Errorf("next create: %d execs %q, want a read then the script, no guard", len(next), next)
	}
	// The same on a Manager told by the start-up check.
	m := volume.NewManager(e.client)
	m.SetGuards(false)
	if _, err := m.PoolFS(ctx, "pool"); err != nil {
		t.Fatal(err)
	}
	told := e.execsOf(t, func() {
		if _, err := m.Create(ctx, e.req("pvc-c", volume.GiB)); err != nil {
			t.Fatal(err)
		}
	})
	if len(told) != 2 {
		t.Errorf("create with guards off: %d execs %q, want 2", len(told), told)
	}
}

// With one command per exec (configured, or learned from an RDS that goes on after a failed command), a
// block of two commands could run past a failure: no guard is sent.
func TestNoGuardWithOneCommandPerExec(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, true)
	scripts := e.execsOf(t, func() {
		if _, err := e.m.Create(context.Background(), e.req("pvc-a", volume.GiB)); err != nil {
			t.Fatal(err)
		}
	})
	if strings.Contains(strings.Join(scripts, "\n"), ":if") {
		t.Errorf("a guard was sent with one command per exec: %q", scripts)
	}
}

// A create whose connection drops inside the guard's block, after the subvolume was added, leaves the
// driver's own shape: the create converges from it (reading the RDS again), or, where that also failed, the
// CO's retry by a fresh process does; the volume is made once, in its own subvolume.
func TestGuardedCreateInterruptedInsideItsBlock(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.with(rdssim.Fault{Kind: rdssim.FaultDropAfter, Match: "subvolume add", Count: 1}), false)
		e.makeBase(t, e.loc)
		v, err := e.m.Create(context.Background(), e.req("pvc-i", volume.GiB))
		if err != nil {
			if v, err = volume.NewManager(e.client).Create(context.Background(), e.req("pvc-i", volume.GiB)); err != nil {
				t.Fatalf("retry: %v", err)
			}
		}
		if scripts := e.sim.Scripts(); len(scripts) < 2 {
			t.Fatalf("the connection did not drop: scripts %q", scripts)
		}
		var leaves []string
		for _, sv := range e.sim.Subvolumes() {
			if filepath.Base(sv.Path) == "pvc-i" {
				leaves = append(leaves, sv.Path)
			}
		}
		if !slices.Equal(leaves, []string{"k8s/pvc-i"}) || v.FilePath != "pool/k8s/pvc-i/disk.img" {
			t.Fatalf("subvolumes of the id %q, volume %+v", leaves, v)
		}
		d1, err := e.client.Disk(context.Background(), "pvc-i")
		if err != nil || d1 == nil {
			t.Fatalf("disk after the retry: %+v %v", d1, err)
		}
	})
}
