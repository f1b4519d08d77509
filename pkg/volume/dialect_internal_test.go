package volume

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// TestRemovalWithoutTheSubvolumeFailsLoudly: when the listing did not show the volume's subvolume (a dialect
// this driver does not know), the removal must not report success while the subvolume stays. Its directory
// is then removed through /file, which the RDS refuses for a subvolume, and the read-back of the directory
// would find it anyway.
func TestRemovalWithoutTheSubvolumeFailsLoudly(t *testing.T) {
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
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
	c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk, CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := NewManager(c)
	ctx := context.Background()
	loc := Location{Pool: "pool", Dir: "k8s"}
	if _, err := m.Create(ctx, CreateRequest{ID: "pvc-x", RequiredBytes: GiB, Location: loc, Port: 4420}); err != nil {
		t.Fatal(err)
	}
	err = m.remove(ctx, "pvc-x", loc.FilePath("pvc-x", LayoutSubvolume), loc, LayoutSubvolume, true, nil)
	if err == nil {
		t.Fatal("a removal that left the subvolume reported success")
	}
	if !errors.Is(err, rds.ErrProtocol) && !errors.Is(err, ErrIncomplete) {
		t.Errorf("error %v: want the RDS's refusal or ErrIncomplete", err)
	}
	found := false
	for _, sv := range sim.Subvolumes() {
		found = found || sv.Path == "k8s/pvc-x"
	}
	if !found {
		t.Fatal("the subvolume went although the removal never named it")
	}
}

func TestBtrfsLabel(t *testing.T) {
	pool := &rds.Disk{Slot: "raid10", FS: "btrfs", FSLabel: "ocp-storage"}
	for _, c := range []struct {
		name    string
		disk    *rds.Disk
		fss     []rds.Filesystem
		want    string
		wantErr bool
	}{
		{"the filesystem naming the pool's disk", pool, []rds.Filesystem{{Label: "other", Devices: []string{"sata1"}},
			{Label: "raid10-fs", Devices: []string{"raid10"}}}, "raid10-fs", false},
		{"no filesystem names it: fs-label", pool, []rds.Filesystem{{Label: "other", Devices: []string{"sata1"}}}, "ocp-storage", false},
		{"no listing: fs-label", pool, nil, "ocp-storage", false},
		{"two filesystems name it", pool, []rds.Filesystem{{Label: "a", Devices: []string{"raid10"}},
			{Label: "b", Devices: []string{"raid10", "x"}}}, "", true},
		{"nothing at all", &rds.Disk{Slot: "raid10", FS: "btrfs"}, nil, "", true},
	} {
		got, err := btrfsLabel(c.disk, c.fss)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("%s: %q, %v; want %q (error %v)", c.name, got, err, c.want, c.wantErr)
		}
	}
}

// TestIsPrintedAs: the names by which the RDS may print the subvolume k8s/pvc-1 of the pool at pool.
func TestIsPrintedAs(t *testing.T) {
	for name, want := range map[string]bool{
		"pvc-1": true, "k8s/pvc-1": true, "pool/k8s/pvc-1": true, "/pool/k8s/pvc-1": true,
		"pvc-10": false, "xpvc-1": false, "other/pvc-1": false, "k8s-snapshots/pvc-1": false, "": false,
	} {
		if got := isPrintedAs(name, "pool", "k8s/pvc-1"); got != want {
			t.Errorf("%q: %v, want %v", name, got, want)
		}
	}
}
