package volume_test

import (
	"context"
	"errors"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// env is a real RDS simulator reached through the real SSH client.
type env struct {
	sim    *rdssim.Simulator
	client *rds.Client
	m      *volume.Manager
	loc    volume.Location
	cfg    rdssim.Config
}

// dialect is one simulator variant of the RouterOS behaviours that are still UNVERIFIED (routeros.md §1,
// §1.4): rdssim.Dialects. The driver must work under each.
type dialect struct {
	name string
	cfg  rdssim.Config
}

// forDialects runs test once per dialect, as subtests.
func forDialects(t *testing.T, test func(t *testing.T, d dialect)) {
	for _, d := range rdssim.Dialects {
		t.Run(d.Name, func(t *testing.T) { test(t, dialect{name: d.Name, cfg: d.Apply(rdssim.Config{})}) })
	}
}

// with is the dialect's configuration with more faults.
func (d dialect) with(faults ...rdssim.Fault) rdssim.Config {
	cfg := d.cfg
	cfg.Faults = append(append([]rdssim.Fault{}, d.cfg.Faults...), faults...)
	return cfg
}

// label is the pool's btrfs label, what fs= takes.
func (e *env) label() string { return e.sim.PoolLabel() }

// parent is how parent= names the subvolume rel in this simulator's dialect.
func (e *env) parent(rel string) string {
	if e.cfg.SubvolumeParent == rdssim.NamePath {
		return rel
	}
	return path.Base(rel)
}

func newEnv(t testing.TB, cfg rdssim.Config, oneCommandPerExec bool) *env {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	sim, err := rdssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk,
		CommandTimeout: 5 * time.Second, OneCommandPerExec: oneCommandPerExec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	loc, err := volume.ParseLocation("pool/k8s")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sim: sim, client: c, m: volume.NewManager(c), loc: loc, cfg: cfg}
	// As the controller's start-up check would decide (internal/app adaptedManager): guards where scripts
	// stop at a failed command; a console without :if refuses the first guard and the manager falls back.
	e.m.SetGuards(cfg.OnError != rdssim.OnErrorContinue)
	if cfg.SubvolumeAddParents == rdssim.ParentsRefuse {
		e.makeBase(t, loc) // as README says to, where subvolume add makes no missing parents
	}
	return e
}

// makeBase makes the base path's directory (and each missing directory above it) as a subvolume, as an
// administrator does before installing, with no fault active.
func (e *env) makeBase(t testing.TB, loc volume.Location) {
	t.Helper()
	e.sim.SetFaults()
	defer e.sim.SetFaults(e.cfg.Faults...)
	segs := strings.Split(loc.Dir, "/")
	for i := range segs {
		dir := strings.Join(segs[:i+1], "/")
		host, err := e.sim.HostPath(loc.Pool + "/" + dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(host); err == nil {
			continue
		}
		c, err := rds.AddSubvolume(e.label(), dir)
		if err != nil {
			t.Fatal(err)
		}
		e.raw(t, c)
	}
}

// makeParents makes the missing parent directories of the subvolume rel below the pool, where subvolume add
// does not make them: plain directories, as a user's file share would (subvolumes would add leaves that
// parent= could no longer tell apart).
func (e *env) makeParents(t testing.TB, pool, rel string) {
	t.Helper()
	if e.cfg.SubvolumeAddParents != rdssim.ParentsRefuse || path.Dir(rel) == "." {
		return
	}
	host, err := e.sim.HostPath(pool + "/" + path.Dir(rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
}

func (e *env) req(id string, size int64) volume.CreateRequest {
	return volume.CreateRequest{ID: id, RequiredBytes: size, Location: e.loc, Port: 4420}
}

// raw runs RouterOS commands directly, as an administrator would on the console.
func (e *env) raw(t testing.TB, cmds ...rds.Cmd) {
	t.Helper()
	if _, err := e.client.Run(context.Background(), cmds); err != nil {
		t.Fatalf("raw commands: %v", err)
	}
}

// state reports what exists on the RDS for a volume id in the default location, from the simulator's own
// state and files: never through a console filter, which could match nothing because of the dialect.
func (e *env) state(t *testing.T, id string) (disk, file, subvolume bool) {
	t.Helper()
	for _, slot := range e.sim.Slots() {
		disk = disk || slot == id
	}
	host, err := e.sim.HostPath(e.loc.FilePath(id, volume.LayoutSubvolume))
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(host)
	file = err == nil
	for _, sv := range e.sim.Subvolumes() {
		subvolume = subvolume || sv.Path == e.loc.SubvolumeName(id)
	}
	return disk, file, subvolume
}

// leftovers lists what the simulator holds under a path of the pool (its files and directories, from the
// host filesystem) and the subvolumes at or below it.
func (e *env) leftovers(t *testing.T, rel string) []string {
	t.Helper()
	var out []string
	host, err := e.sim.HostPath(e.loc.Pool + "/" + rel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(host); err == nil {
		out = append(out, "file "+rel)
	}
	for _, sv := range e.sim.Subvolumes() {
		if sv.Path == rel || strings.HasPrefix(sv.Path, rel+"/") {
			out = append(out, "subvolume "+sv.Path)
		}
	}
	return out
}

func TestCreateIsOneExecAndExact(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(map[bool]string{false: "script", true: "one-command-per-exec"}[single], func(t *testing.T) {
			e := newEnv(t, rdssim.Config{}, single)
			ctx := context.Background()
			if _, err := e.m.PoolFS(ctx, "pool"); err != nil { // learned once per process
				t.Fatal(err)
			}
			e.sim.ResetCommands()
			const want = 3 * volume.GiB / 2 // 1.5 GiB must not be floored to 1G
			v, err := e.m.Create(ctx, e.req("pvc-exact", want))
			if err != nil {
				t.Fatal(err)
			}
			if v.SizeBytes != want || v.Layout != volume.LayoutSubvolume || v.NQN != "nqn.2000-02.com.mikrotik:pvc-exact" ||
				v.FilePath != "pool/k8s/pvc-exact/disk.img" || !v.Exported {
				t.Fatalf("created %+v", v)
			}
			scripts := e.sim.Scripts()
			// One script: the guard adds nothing while the id is taken (create_guard.go), and the read-back.
			if !single && len(scripts) != 1 {
				t.Fatalf("create took %d execs, want 1 (the guarded script): %q", len(scripts), scripts)
			}
			cmds := strings.Join(e.sim.Commands(), "\n")
			for _, must := range []string{"mount-filesystem=no", "file-size=1610612736", `nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:pvc-exact"`} {
				if !strings.Contains(cmds, must) {
					t.Errorf("commands lack %q:\n%s", must, cmds)
				}
			}
			hp, err := e.sim.HostPath(v.FilePath)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(hp)
			if err != nil || st.Size() != want {
				t.Fatalf("backing file: %v, %v", st, err)
			}
		})
	}
}

func TestCreateIdempotentAndConflicting(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.cfg, false)
		ctx := context.Background()
		v1, err := e.m.Create(ctx, e.req("pvc-a", 2*volume.GiB))
		if err != nil {
			t.Fatal(err)
		}
		v2, err := e.m.Create(ctx, e.req("pvc-a", 2*volume.GiB))
		if err != nil || *v1 != *v2 {
			t.Fatalf("repeat: %+v, %v (first %+v)", v2, err, v1)
		}
		if _, err := e.m.Create(ctx, e.req("pvc-a", 3*volume.GiB)); !errors.Is(err, volume.ErrAlreadyExists) {
			t.Fatalf("bigger repeat: %v, want ErrAlreadyExists", err)
		}
		other := e.req("pvc-a", 2*volume.GiB)
		other.Location = volume.Location{Pool: "pool", Dir: "other"}
		if _, err := e.m.Create(ctx, other); !errors.Is(err, volume.ErrAlreadyExists) {
			t.Fatalf("other location: %v, want ErrAlreadyExists", err)
		}
	})
}

func TestCreateRoundsUpAndRefusesOutOfRange(t *testing.T) {
	e := newEnv(t, rdssim.Config{}, false)
	ctx := context.Background()
	v, err := e.m.Create(ctx, e.req("pvc-small", 1))
	if err != nil || v.SizeBytes != volume.MinSize {
		t.Fatalf("tiny request: %+v %v", v, err)
	}
	v, err = e.m.Create(ctx, e.req("pvc-odd", volume.GiB+1))
	if err != nil || v.SizeBytes != volume.GiB+volume.MiB {
		t.Fatalf("odd request: %+v %v", v, err)
	}
	r := e.req("pvc-limit", volume.GiB+1)
	r.LimitBytes = volume.GiB + 2
	if _, err := e.m.Create(ctx, r); !errors.Is(err, volume.ErrOutOfRange) {
		t.Fatalf("limit below the allocation unit: %v", err)
	}
	if d, _, s := e.state(t, "pvc-limit"); d || s {
		t.Fatal("an out-of-range request changed the RDS")
	}
}

func TestDiskFullIsNoSpaceAndLeavesNothing(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.with(rdssim.Fault{Kind: rdssim.FaultDiskFull}), false)
		_, err := e.m.Create(context.Background(), e.req("pvc-full", 2*volume.GiB))
		if !errors.Is(err, rds.ErrNoSpace) || !strings.Contains(err.Error(), "not enough space") {
			t.Fatalf("got %v, want ErrNoSpace with the RouterOS text", err)
		}
		if left := e.leftovers(t, "k8s/pvc-full"); len(left) != 0 || len(e.sim.Slots()) != 0 {
			t.Fatalf("left behind: %v, disks %v", left, e.sim.Slots())
		}
	})
}

func TestPoolTooSmallIsNoSpace(t *testing.T) {
	e := newEnv(t, rdssim.Config{PoolSize: 4 * volume.GiB}, false)
	if _, err := e.m.Create(context.Background(), e.req("pvc-huge", 8*volume.GiB)); !errors.Is(err, rds.ErrNoSpace) {
		t.Fatalf("got %v, want ErrNoSpace", err)
	}
	if d, f, s := e.state(t, "pvc-huge"); d || f || s {
		t.Fatalf("left behind: disk=%v file=%v subvolume=%v", d, f, s)
	}
}

// A connection lost right after /disk add ran (the crash between the add and its read-back) must converge on
// the retry the sidecar makes: the same volume, nothing twice.
func TestCreateConvergesAfterDrop(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		for _, f := range []rdssim.Fault{
			{Kind: rdssim.FaultDropAfter, Match: "/disk add", Count: 1},
			{Kind: rdssim.FaultDropAfter, Match: "subvolume", Count: 1},
			{Kind: rdssim.FaultDropBefore, Match: "/disk add", Count: 1},
		} {
			t.Run(f.String(), func(t *testing.T) {
				e := newEnv(t, d.cfg, false)
				ctx := context.Background()
				if _, err := e.m.PoolFS(ctx, "pool"); err != nil {
					t.Fatal(err)
				}
				e.sim.SetFaults(f)
				v, err := e.m.Create(ctx, e.req("pvc-drop", 2*volume.GiB))
				if err != nil {
					if !errors.Is(err, rds.ErrUnavailable) {
						t.Fatalf("first attempt: %v, want success or ErrUnavailable", err)
					}
					v, err = e.m.Create(ctx, e.req("pvc-drop", 2*volume.GiB))
				}
				if err != nil {
					t.Fatalf("retry: %v", err)
				}
				if v.SizeBytes != 2*volume.GiB || !v.Exported {
					t.Fatalf("converged to %+v", v)
				}
				disks, err := e.client.Disks(ctx, rds.Eq("slot", "pvc-drop"))
				if err != nil || len(disks) != 1 {
					t.Fatalf("disks after convergence: %v %v", disks, err)
				}
			})
		}
	})
}
