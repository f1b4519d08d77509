package sanity

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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
// process, so each run is the csi-sanity command in a process of its own, against the rds-csi binary
// (`--rds-address` pointing at a simulator this test starts with the dialect's options). The node specs do
// not depend on the dialect (the node never speaks RouterOS) and run in TestSanity. No root is needed: the
// suite's clean-up unpublishes and unstages every volume it made, and those calls need no root when nothing
// was staged.
func TestSanityDialects(t *testing.T) {
	driverBin := binary(t, "RDS_CSI_BINARY", "github.com/rds-csi/rds-csi/cmd/rds-csi")
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
			sock := filepath.Join(dir, "csi.sock")
			args := []string{"--mode=all", "--endpoint", "unix://" + sock, "--node-id", "sanity-node",
				"--rds-address", sim.Addr(), "--rds-user", "admin", "--rds-key-file", sim.ClientKeyFile(),
				"--rds-host-key", sim.KnownHostsFile(), "--base-path", "pool/k8s"}
			if d.oneCommand {
				args = append(args, "--rds-one-command-per-exec")
			}
			exited := startProcess(t, filepath.Join(dir, "rds-csi.log"), driverBin, args...)
			waitForSocket(t, sock, exited)

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
