package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rds"
)

// The volumes users already have (issue 14, part 3): `rds-csi orphans` and `rds-csi import` run as
// separate processes against the driver's embedded simulator, the way an admin runs them against an RDS.
// The demo has no Kubernetes, so the cluster is a file as `kubectl get pv,volumesnapshotcontent -o json`
// writes it, holding the PV of demo-vol-kept.

const pvJSON = `{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "%s"},
   "spec": {"capacity": {"storage": "%s"}, "accessModes": ["ReadWriteOnce"],
            "csi": {"driver": "rds.csi.srvlab.io", "volumeHandle": "%s", "volumeAttributes": {"basePath": "pool/k8s"}}}}`

// contentJSON is the VolumeSnapshotContent of demo-snap-kept, as the snapshotter writes it.
const contentJSON = `{"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": "snapcontent-kept"},
   "spec": {"driver": "rds.csi.srvlab.io", "deletionPolicy": "Delete", "source": {"volumeHandle": "demo-vol-kept"},
            "volumeSnapshotRef": {"name": "kept", "namespace": "default"}},
   "status": {"snapshotHandle": "demo-snap-kept", "readyToUse": true}}`

// writeCluster writes the cluster file: a List of the content of demo-snap-kept and of PVs (name, size, handle).
func writeCluster(path string, pvs ...[3]string) error {
	items := []string{contentJSON}
	for _, p := range pvs {
		items = append(items, fmt.Sprintf(pvJSON, p[0], p[1], p[2]))
	}
	return os.WriteFile(path, []byte(`{"apiVersion": "v1", "kind": "List", "items": [`+strings.Join(items, ",\n")+"]}\n"), 0o600)
}

var (
	keptPV   = [3]string{"demo-vol-kept", "1Gi", "demo-vol-kept"}
	lostPV   = [3]string{"pv-of-a-lost-volume", "2Gi", "demo-vol-lost"}
	legacyPV = [3]string{"pvc-legacy", "2Gi", "pvc-legacy"}
)

// simConn reads where the embedded simulator listens (its known_hosts line) and the files that log in to it.
func simConn(dir string) ([]string, *rds.Client, error) {
	sim := filepath.Join(dir, "rds")
	kh, err := os.ReadFile(filepath.Join(sim, "known_hosts"))
	if err != nil {
		return nil, nil, err
	}
	host := strings.Fields(string(kh))[0] // [127.0.0.1]:port
	host = strings.Replace(strings.TrimPrefix(host, "["), "]", "", 1)
	args := []string{"--rds-address", host, "--rds-key-file", filepath.Join(sim, "client_key"),
		"--rds-host-key", filepath.Join(sim, "known_hosts"), "--base-path", "pool/k8s"}
	signer, err := rds.LoadPrivateKey(filepath.Join(sim, "client_key"))
	if err != nil {
		return nil, nil, err
	}
	hk, err := rds.LoadHostKey(filepath.Join(sim, "known_hosts"))
	if err != nil {
		return nil, nil, err
	}
	c, err := rds.New(rds.Config{Address: host, User: "admin", Signer: signer, HostKeyCallback: hk, CommandTimeout: 10 * time.Second})
	return args, c, err
}

type inventoryDemo struct {
	*demo
	bin     string
	rdsArgs []string
	admin   *rds.Client // what an admin types on the RDS console
}

func (d *demo) inventorySteps(bin string) ([]step, func(), error) {
	args, admin, err := simConn(d.dir)
	if err != nil {
		return nil, nil, err
	}
	iv := &inventoryDemo{demo: d, bin: bin, rdsArgs: args, admin: admin}
	clusterFile := filepath.Join(d.dir, "cluster.json")
	if err := writeCluster(clusterFile, keptPV, lostPV); err != nil {
		return nil, nil, err
	}
	n := &nodeDemo{demo: d, dir: d.dir}
	steps := []step{
		{"CreateVolume demo-vol-kept (it has a PV) and demo-vol-orphan, demo-vol-left (they have none)", func() (string, error) {
			for _, id := range []string{"demo-vol-kept", "demo-vol-orphan", "demo-vol-left"} {
				if _, err := d.create(id, gib)(); err != nil {
					return "", err
				}
			}
			return "3 volumes", nil
		}},
		{"CreateSnapshot demo-snap-kept (it has a VolumeSnapshotContent) and demo-snap-orphan (none) of demo-vol-kept", func() (string, error) {
			for _, id := range []string{"demo-snap-kept", "demo-snap-orphan"} {
				if _, err := d.snapshot(id, "demo-vol-kept")(); err != nil {
					return "", err
				}
			}
			return "2 snapshots", nil
		}},
		{"On the RDS console: remove demo-vol-left's disk (an interrupted delete), add the older driver's flat disk " +
			"pvc-legacy and a hand-made disk vm-disk of another NQN", iv.admin1},
		{"rds-csi orphans --cluster-file cluster.json (lists only; the default)", iv.run(0, "orphans", "--cluster-file", clusterFile)},
		{"rds-csi import --disk vm-disk: refused, and says what to change on the RDS", iv.run(1, "import", "--disk", "vm-disk",
			"--cluster-file", clusterFile)},
		{"rds-csi import --file pool/k8s/pvc-legacy.img (the older driver's flat file) with a claim", iv.run(0, "import",
			"--file", "pool/k8s/pvc-legacy.img", "--cluster-file", clusterFile, "--nvme-address", "127.0.0.1",
			"--pvc-namespace", "default", "--pvc-name", "legacy-data", "--fs-type", "xfs")},
		{"kubectl apply the manifest (here: its PV is added to cluster.json)", func() (string, error) {
			return "cluster.json: snapcontent-kept and PVs demo-vol-kept, pv-of-a-lost-volume, pvc-legacy", writeCluster(clusterFile, keptPV, lostPV, legacyPV)
		}},
		{"rds-csi orphans --cluster-file cluster.json --delete (only what it listed and the driver owns)",
			iv.run(0, "orphans", "--cluster-file", clusterFile, "--delete")},
		{"rds-csi orphans again, as JSON: what is left is not the driver's, or is in the cluster only",
			iv.run(0, "orphans", "--cluster-file", clusterFile, "--output", "json")},
	}
	if d.withNode {
		steps = append(steps,
			step{"Attach the imported pvc-legacy (mkfs.xfs on its blank file), then detach it", func() (string, error) {
				res, err := n.attach("pvc-legacy")()
				if err != nil {
					return "", err
				}
				if _, err := n.detach("pvc-legacy")(); err != nil {
					return "", err
				}
				return res + ", detached", nil
			}})
	}
	steps = append(steps,
		step{"DeleteSnapshot demo-snap-kept", d.deleteSnapshot("demo-snap-kept")},
		step{"DeleteVolume pvc-legacy and demo-vol-kept through CSI: the imported volume is the driver's", func() (string, error) {
			for _, id := range []string{"pvc-legacy", "demo-vol-kept"} {
				if _, err := d.ctrl.DeleteVolume(d.ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
					return "", err
				}
			}
			return "deleted", nil
		}},
		step{"vm-disk was never touched: on the RDS console, remove it by hand", iv.admin2},
	)
	return steps, func() { admin.Close() }, nil
}

// run runs the binary with a subcommand and the RDS flags, prints what it printed, and wants exit code want.
func (iv *inventoryDemo) run(want int, sub string, args ...string) func() (string, error) {
	return func() (string, error) {
		all := append(append([]string{sub}, iv.rdsArgs...), args...)
		fmt.Printf("    $ rds-csi %s %s\n", sub, strings.Join(iv.shorten(all[1:]), " "))
		cmd := exec.Command(iv.bin, all...)
		out, err := cmd.CombinedOutput()
		for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			fmt.Printf("    | %s\n", l)
		}
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			return "", err
		}
		if code != want {
			return "", fmt.Errorf("rds-csi %s exited %d, want %d", sub, code, want)
		}
		return fmt.Sprintf("exit %d", code), nil
	}
}

// shorten replaces the demo's working directory in a command line by $DEMO.
func (iv *inventoryDemo) shorten(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, iv.dir, "$DEMO")
	}
	return out
}

func (iv *inventoryDemo) admin1() (string, error) {
	var steps []rds.Cmd
	rm, err := rds.RemoveDisk("demo-vol-left")
	if err != nil {
		return "", err
	}
	legacy, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-legacy", FilePath: "pool/k8s/pvc-legacy.img", SizeBytes: 2 * gib, NQN: nvme.VolumeNQN("pvc-legacy")})
	if err != nil {
		return "", err
	}
	foreign, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: "vm-disk", FilePath: "pool/k8s/vm-disk.img", SizeBytes: gib, NQN: "nqn.2024-01.org.example:vm-disk"})
	if err != nil {
		return "", err
	}
	steps = append(steps, rm, legacy, foreign)
	ctx, cancel := context.WithTimeout(iv.ctx, 30*time.Second)
	defer cancel()
	if _, err := iv.admin.Run(ctx, steps); err != nil {
		return "", err
	}
	return "done", nil
}

func (iv *inventoryDemo) admin2() (string, error) {
	rm, err := rds.RemoveDisk("vm-disk")
	if err != nil {
		return "", err
	}
	file, err := rds.RemoveFile("pool/k8s/vm-disk.img")
	if err != nil {
		return "", err
	}
	if _, err := iv.admin.Run(iv.ctx, []rds.Cmd{rm, file}); err != nil {
		return "", err
	}
	return "removed", nil
}
