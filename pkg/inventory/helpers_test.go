package inventory

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// env is a simulator with a client and a volume manager on it.
type env struct {
	sim    *rdssim.Simulator
	client *rds.Client
	m      *volume.Manager
	loc    volume.Location
}

func newEnv(t *testing.T, cfg rdssim.Config) *env {
	t.Helper()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	sim, err := rdssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir, err := sim.HostPath("pool/k8s") // the base directory, as README's "Prepare the RDS" makes it
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk, CommandTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	loc, _ := volume.ParseLocation("pool/k8s")
	return &env{sim: sim, client: c, m: volume.NewManager(c), loc: loc}
}

func (e *env) create(t *testing.T, id string, bytes int64) *volume.Volume {
	t.Helper()
	v, err := e.m.Create(context.Background(), volume.CreateRequest{ID: id, RequiredBytes: bytes, Location: e.loc})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	return v
}

// run runs RouterOS commands built by pkg/rds, as an admin would by hand.
func (e *env) run(t *testing.T, cmds ...func() (rds.Cmd, error)) {
	t.Helper()
	var steps []rds.Cmd
	for _, c := range cmds {
		cmd, err := c()
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, cmd)
	}
	if _, err := e.client.Run(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
}

// addDisk adds a file disk as an admin or the older driver would.
func (e *env) addDisk(t *testing.T, spec rds.FileDiskSpec) {
	t.Helper()
	e.run(t, func() (rds.Cmd, error) { return rds.AddFileDisk(spec) })
}

// writeFile puts a file on the pool, as a user copying it there would.
func (e *env) writeFile(t *testing.T, routerosPath string, data []byte) {
	t.Helper()
	hp, err := e.sim.HostPath(routerosPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hp, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *env) inventory(t *testing.T) rdssim.Inventory {
	t.Helper()
	inv, err := e.sim.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// fakeCluster is a Cluster of fixed objects.
type fakeCluster struct {
	pvs, contents []Ref
	noContents    bool
}

func (f *fakeCluster) PersistentVolumes(context.Context) ([]Ref, error) { return f.pvs, nil }
func (f *fakeCluster) SnapshotContents(context.Context) ([]Ref, bool, error) {
	return f.contents, !f.noContents, nil
}

func rdssimDefault() rdssim.Config { return rdssim.Config{} }
