package inventory

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

func importReq(slot string) ImportRequest {
	return ImportRequest{Slot: slot, Driver: "rds.csi.srvlab.io", NVMeAddress: "10.0.0.5", VolumeMode: corev1.PersistentVolumeFilesystem,
		AccessMode: corev1.ReadWriteOnce, ReclaimPolicy: corev1.PersistentVolumeReclaimRetain}
}

// TestImportWritesAManifest imports a volume of this driver's layout, and an older driver's flat file named by
// its path, as static PVs.
func TestImportWritesAManifest(t *testing.T) {
	e := newEnv(t, rdssimDefault())
	e.create(t, "pvc-made-by-hand", 5*gib)
	e.addDisk(t, rds.FileDiskSpec{Slot: "pvc-legacy", FilePath: "pool/k8s/pvc-legacy.img", SizeBytes: 3 * gib / 2, NQN: volume.NQN("pvc-legacy")})
	cluster := &fakeCluster{pvs: []Ref{{Name: "other", Handle: "pvc-other"}}}

	req := importReq("pvc-made-by-hand")
	req.PVCNamespace, req.PVCName, req.FSType = "apps", "data", "xfs"
	res, err := Import(context.Background(), e.client, cluster, req)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "import-subvolume.yaml.golden", res.Manifest)
	var checks bytes.Buffer
	WriteChecks(&checks, res.Checks)
	golden(t, "import-subvolume.checks.golden", checks.Bytes())

	req = importReq("")
	req.FilePath, req.VolumeMode, req.AccessMode, req.PVName = "pool/k8s/pvc-legacy.img", corev1.PersistentVolumeBlock, corev1.ReadWriteMany, "legacy"
	res, err = Import(context.Background(), e.client, nil, req)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "import-flat.yaml.golden", res.Manifest)
	if res.Volume.Layout != volume.LayoutFlat || !strings.Contains(string(res.Manifest), "storage: 1536Mi") {
		t.Errorf("flat import: %+v\n%s", res.Volume, res.Manifest)
	}

	// On a named box of several, the handle names the box; a PV of the slot on another box is no conflict.
	req = importReq("pvc-made-by-hand")
	req.Box = "rds2"
	res, err = Import(context.Background(), e.client, OnBox(&fakeCluster{pvs: []Ref{{Name: "elsewhere", Handle: "pvc-made-by-hand"}}}, "rds2"), req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Manifest), "volumeHandle: rds2/pvc-made-by-hand") {
		t.Errorf("import on box rds2:\n%s", res.Manifest)
	}
}

// TestImportRefuses: every disk the driver could not serve as it is gets a failed check saying what to do,
// and no manifest; nothing on the RDS changes.
func TestImportRefuses(t *testing.T) {
	e := newEnv(t, rdssimDefault())
	e.create(t, "pvc-taken", gib)
	e.addDisk(t, rds.FileDiskSpec{Slot: "vm-disk", FilePath: "pool/k8s/vm-disk.img", SizeBytes: gib, NQN: "nqn.2024-01.org.example:vm-disk"})
	e.addDisk(t, rds.FileDiskSpec{Slot: "images", FilePath: "pool/images/data.raw", SizeBytes: gib, NQN: volume.NQN("images")})
	e.addDisk(t, rds.FileDiskSpec{Slot: "pvc-quiet", FilePath: "pool/k8s/pvc-quiet.img", SizeBytes: gib, NQN: volume.NQN("pvc-quiet")})
	if _, err := e.client.Exec(context.Background(), `/disk set [find slot="pvc-quiet"] nvme-tcp-export=no`); err != nil {
		t.Fatal(err)
	}
	cluster := &fakeCluster{pvs: []Ref{{Name: "pv-taken", Handle: "pvc-taken"}}}
	before := e.inventory(t)
	for _, tc := range []struct {
		slot, check, detail string
	}{
		{"pvc-taken", "no-pv", "PersistentVolume pv-taken already has volumeHandle pvc-taken"},
		{"vm-disk", "nqn", `nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:vm-disk"`},
		{"images", "layout", "not where this driver keeps volumes"},
		{"pvc-quiet", "exported", `/disk set [find slot="pvc-quiet"] nvme-tcp-export=yes`},
	} {
		t.Run(tc.slot, func(t *testing.T) {
			res, err := Import(context.Background(), e.client, cluster, importReq(tc.slot))
			if !errors.Is(err, ErrCheckFailed) {
				t.Fatalf("err = %v, want ErrCheckFailed", err)
			}
			var failed []Check
			for _, c := range res.Checks {
				if c.Status == CheckFail {
					failed = append(failed, c)
				}
			}
			if len(failed) != 1 || failed[0].Name != tc.check || !strings.Contains(failed[0].Detail, tc.detail) {
				t.Errorf("failed checks %+v, want %s containing %q", failed, tc.check, tc.detail)
			}
			if res.Manifest != nil {
				t.Errorf("a manifest despite a failed check")
			}
		})
	}
	if _, err := Import(context.Background(), e.client, cluster, importReq("pvc-missing")); !errors.Is(err, volume.ErrNotFound) {
		t.Errorf("missing disk: %v", err)
	}
	if after := e.inventory(t); strings.Join(after.Files, ",") != strings.Join(before.Files, ",") ||
		strings.Join(after.Disks, ",") != strings.Join(before.Disks, ",") {
		t.Errorf("import changed the RDS")
	}
}

func TestImportRequestValidation(t *testing.T) {
	for name, mutate := range map[string]func(r *ImportRequest){
		"no disk":            func(r *ImportRequest) { r.Slot = "" },
		"disk and file":      func(r *ImportRequest) { r.FilePath = "pool/k8s/a.img" },
		"bad slot":           func(r *ImportRequest) { r.Slot = "a b" },
		"no address":         func(r *ImportRequest) { r.NVMeAddress = "" },
		"bad pv name":        func(r *ImportRequest) { r.PVName = "Not_DNS" },
		"bad mode":           func(r *ImportRequest) { r.VolumeMode = "Raw" },
		"bad fs":             func(r *ImportRequest) { r.FSType = "btrfs" },
		"fs on block":        func(r *ImportRequest) { r.VolumeMode, r.FSType = corev1.PersistentVolumeBlock, "ext4" },
		"rwx filesystem":     func(r *ImportRequest) { r.AccessMode = corev1.ReadWriteMany },
		"bad reclaim":        func(r *ImportRequest) { r.ReclaimPolicy = "Recycle" },
		"claim without name": func(r *ImportRequest) { r.PVCNamespace = "apps" },
	} {
		t.Run(name, func(t *testing.T) {
			r := importReq("pvc-a")
			mutate(&r)
			if err := r.valid(); !errors.Is(err, rds.ErrInvalid) {
				t.Errorf("valid() = %v, want ErrInvalid", err)
			}
		})
	}
}
