package doctor

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// startSim runs a real simulator on loopback over real SSH, closed when the test ends.
func startSim(t *testing.T, cfg rdssim.Config) *rdssim.Simulator {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen = "127.0.0.1:0"
	sim, err := rdssim.New(cfg)
	if err != nil {
		t.Fatalf("rdssim.New: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// prepared is startSim with the base directory pool/k8s made, as README's "Prepare the RDS" has the user
// do (a subvolume on btrfs, a directory elsewhere).
func prepared(t *testing.T, cfg rdssim.Config) *rdssim.Simulator {
	t.Helper()
	sim := startSim(t, cfg)
	dir, err := sim.HostPath("pool/k8s")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return sim
}

// newClient is the RouterOS client the controller would build for sim, pinning its host key.
func newClient(t *testing.T, sim *rdssim.Simulator) *rds.Client {
	t.Helper()
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk,
		CommandTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func location(t *testing.T, s string) volume.Location {
	t.Helper()
	loc, err := volume.ParseLocation(s)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// runDoctor runs every check against sim and returns the report and what it printed.
func runDoctor(t *testing.T, ctx context.Context, ex Execer, opts Options) (*Report, string) {
	t.Helper()
	var out bytes.Buffer
	opts.Out = &out
	if opts.Location == (volume.Location{}) {
		opts.Location = location(t, "pool/k8s")
	}
	rep, err := Run(ctx, ex, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep, out.String()
}

// assertNothingLeft checks the simulator's own state: no disk, subvolume or file of doctor's.
func assertNothingLeft(t *testing.T, sim *rdssim.Simulator) {
	t.Helper()
	inv, err := sim.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range [][]string{inv.Disks, inv.Subvolumes, inv.Files} {
		for _, name := range list {
			if strings.Contains(name, ScratchPrefix) {
				t.Errorf("left behind on the simulator: %s (inventory %+v)", name, inv)
			}
		}
	}
}

func checkNamed(rep *Report, name string) *Check {
	for i := range rep.Checks {
		if rep.Checks[i].Name == name {
			return &rep.Checks[i]
		}
	}
	return nil
}
