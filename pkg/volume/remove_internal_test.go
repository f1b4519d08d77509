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
