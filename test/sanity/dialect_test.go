package sanity

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// sanityDialects are the simulator variants of the RouterOS behaviours that are still UNVERIFIED
// (routeros.md §1, §1.4) that the controller specs run under: each of rdssim.Dialects (the documented one
// first, the simulator's default), and the documented one with the driver sending one command per exec.
func sanityDialects() []sanityDialect {
	out := []sanityDialect{}
	for _, d := range rdssim.Dialects {
		out = append(out, sanityDialect{d.Name, d.Apply(rdssim.Config{}), false})
		if d.Name == "documented" {
			out = append(out, sanityDialect{"documented-one-command-per-exec", d.Apply(rdssim.Config{}), true})
		}
	}
	return out
}

type sanityDialect struct {
	name       string
	cfg        rdssim.Config
	oneCommand bool // the driver sends one command per exec
}

// TestSanityDialects runs the csi-sanity controller specs once per dialect. Ginkgo runs one suite per
// process, so each run is the csi-sanity command in a process of its own, against a controller served from
// this process and a simulator started with the dialect's options. The node specs do not depend on the
// dialect (the node never speaks RouterOS) and run in TestSanity. No root is needed.
func TestSanityDialects(t *testing.T) {
	sanityBin := binary(t, "CSI_SANITY_BINARY", "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity")
	for _, d := range sanityDialects() {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := d.cfg
			cfg.Listen, cfg.DataDir, cfg.PoolName = "127.0.0.1:0", filepath.Join(dir, "rds"), "pool"
			sim, err := rdssim.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			sock := startController(t, dir, sim, d.oneCommand)

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, sanityBin,
				"-csi.endpoint", sock,
				"-csi.mountdir", filepath.Join(dir, "target"),
				"-csi.stagingdir", filepath.Join(dir, "staging"),
				"-csi.testvolumesize", strconv.Itoa(testVolumeSize),
				"-ginkgo.skip", "Node Service",
				"-ginkgo.no-color").CombinedOutput()
			if err != nil {
				t.Fatalf("csi-sanity controller specs under the %s dialect failed: %v\n%s", d.name, err, out)
			}
			t.Logf("csi-sanity controller specs passed under the %s dialect:\n%s", d.name, lastLines(out, 3))
			if subs := sim.Subvolumes(); len(subs) != 0 {
				t.Errorf("subvolumes left on the simulator after the suite cleaned up: %+v", subs)
			}
			if slots := sim.Slots(); len(slots) != 0 {
				t.Errorf("disks left on the simulator after the suite cleaned up: %v", slots)
			}
		})
	}
}

// startController serves the driver in this process against sim and returns its socket. It runs in all mode:
// the suite's clean-up unpublishes and unstages every volume it made, and those calls need no root when
// nothing was staged.
func startController(t *testing.T, dir string, sim *rdssim.Simulator, oneCommand bool) string {
	t.Helper()
	sock := filepath.Join(dir, "csi.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- driver.Run(ctx, driver.Config{
			Mode: driver.ModeAll, Endpoint: "unix://" + sock, NodeID: "sanity-node", Version: "sanity",
			RDSAddress: sim.Addr(), RDSUser: "admin", RDSKeyFile: sim.ClientKeyFile(), RDSHostKeyFile: sim.KnownHostsFile(),
			RDSOneCommandPerExec: oneCommand, BasePath: "pool/k8s",
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver stopped with: %v", err)
		}
	})
	waitForSocket(t, sock, done)
	return sock
}
