package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/test/procenv"
)

// TestOrphansAndImportSubcommands runs `rds-csi orphans` and `rds-csi import` as processes against the
// simulator: the dispatch, the shared RDS flags, the cluster file and the exit codes.
func TestOrphansAndImportSubcommands(t *testing.T) {
	bin := procenv.DriverBinary(t)
	sim := startSim(t, rdssim.Config{})
	admin := func(script string) {
		t.Helper()
		signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
		if err != nil {
			t.Fatal(err)
		}
		hk, err := rds.LoadHostKey(sim.KnownHostsFile())
		if err != nil {
			t.Fatal(err)
		}
		c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if out, err := c.Exec(context.Background(), script); err != nil || out.ExitStatus != 0 {
			t.Fatalf("%s: %v %+v", script, err, out)
		}
	}
	admin(`/disk add type=file file-path=pool/k8s/pvc-legacy.img file-size=1G slot=pvc-legacy mount-filesystem=no ` +
		`nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-legacy`)
	cluster := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(cluster, []byte(`{"kind":"List","items":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), exitCode(t, err)
	}
	out, code := run(append(append([]string{"orphans"}, rdsArgs(sim)...), "--cluster-file", cluster)...)
	if code != 0 || !strings.Contains(out, "rds only  volume  pvc-legacy  pool/k8s/pvc-legacy.img  1 GiB  yes") {
		t.Errorf("orphans: exit %d\n%s", code, out)
	}
	out, code = run(append(append([]string{"import"}, rdsArgs(sim)...), "--disk", "pvc-legacy", "--no-cluster")...)
	if code != 0 || !strings.Contains(out, "volumeHandle: pvc-legacy") || !strings.Contains(out, "unknown no-pv") {
		t.Errorf("import: exit %d\n%s", code, out)
	}
	out, code = run(append(append([]string{"import"}, rdsArgs(sim)...), "--disk", "pvc-missing", "--no-cluster")...)
	if code != 1 || !strings.Contains(out, `no disk with slot "pvc-missing"`) {
		t.Errorf("import of a missing disk: exit %d\n%s", code, out)
	}
	if out, code = run("orphans", "--output", "yaml"); code != 2 {
		t.Errorf("bad flag: exit %d\n%s", code, out)
	}
	if inv, _ := sim.Inventory(); strings.Join(inv.Disks, ",") != "pvc-legacy" {
		t.Errorf("disks after listing and importing: %v", inv.Disks)
	}
	// A cluster without a single PV of the driver (a wrong kubeconfig or driver name looks like that) makes
	// --delete refuse, unless told.
	del := append(append([]string{"orphans"}, rdsArgs(sim)...), "--cluster-file", cluster, "--delete")
	if out, code = run(del...); code != 1 || !strings.Contains(out, "nothing deleted") {
		t.Errorf("--delete with no PVs: exit %d\n%s", code, out)
	}
	if inv, _ := sim.Inventory(); strings.Join(inv.Disks, ",") != "pvc-legacy" {
		t.Errorf("disks after a refused --delete: %v", inv.Disks)
	}
	if out, code = run(append(del, "--delete-with-no-pvs")...); code != 0 || !strings.Contains(out, "deleted volume pvc-legacy") {
		t.Errorf("--delete --delete-with-no-pvs: exit %d\n%s", code, out)
	}
	if inv, _ := sim.Inventory(); len(inv.Disks) != 0 {
		t.Errorf("disks after --delete: %v", inv.Disks)
	}
}
