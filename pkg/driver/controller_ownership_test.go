package driver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// Issue 12 cases 1 to 4: the driver removes only what it made, and leaves nothing of what it made.

// run sends RouterOS commands as an admin would, beside the driver.
func (e *controllerEnv) run(t *testing.T, cmds ...func() (rds.Cmd, error)) {
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

func (e *controllerEnv) poolLabel() string { return e.sim.PoolLabel() }

func (e *controllerEnv) writeFile(t *testing.T, routerosPath, content string) {
	t.Helper()
	p, err := e.sim.HostPath(routerosPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *controllerEnv) readFile(t *testing.T, routerosPath string) string {
	t.Helper()
	p, err := e.sim.HostPath(routerosPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the user's file %s: %v", routerosPath, err)
	}
	return string(b)
}

// nothingOf fails when the simulator still holds a disk, subvolume or file of volume id.
func nothingOf(t *testing.T, sim *rdssim.Simulator, id string) {
	t.Helper()
	st := readRDSState(t, sim)
	if fp, ok := st.Disks[id]; ok {
		t.Errorf("disk %s (file %s) is left", id, fp)
	}
	for _, s := range st.Subvolumes {
		if filepathBase(s) == id {
			t.Errorf("subvolume %s is left", s)
		}
	}
	for _, f := range st.Files {
		if strings.Contains("/"+f+"/", "/"+id+"/") || strings.HasSuffix(f, "/"+id+".img") {
			t.Errorf("file %s is left", f)
		}
	}
}

func filepathBase(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// forEachDialect runs f under the documented RouterOS and under each UNVERIFIED variant the simulator has
// that bears on finding and removing subvolumes.
func forEachDialect(t *testing.T, f func(t *testing.T, cfg rdssim.Config)) {
	for name, cfg := range map[string]rdssim.Config{
		"documented":             {},
		"names print as paths":   {SubvolumeNames: rdssim.NamePath},
		"scripts go on at error": {OnError: rdssim.OnErrorContinue},
	} {
		t.Run(name, func(t *testing.T) { f(t, cfg) })
	}
}

// Case 1: an admin's subvolume with the name a mistyped static PV handle gives is not the driver's to remove.
func TestDeleteVolumeLeavesWhatIsNotOurs(t *testing.T) {
	forEachDialect(t, testDeleteVolumeLeavesWhatIsNotOurs)
}

func testDeleteVolumeLeavesWhatIsNotOurs(t *testing.T, cfg rdssim.Config) {
	e := newControllerEnv(t, cfg)
	ctx := context.Background()
	e.run(t, func() (rds.Cmd, error) { return rds.AddSubvolume(e.poolLabel(), "k8s/userdata") })
	e.writeFile(t, "pool/k8s/userdata/notes.txt", "an admin's own files")
	e.writeFile(t, "pool/k8s/userdata/db/data.bin", "more")
	// Files of the older public driver's shape without a disk are not proof of anything either.
	e.writeFile(t, "pool/k8s/legacy.img", "someone's image")
	before := readRDSState(t, e.sim)
	for _, id := range []string{"userdata", "legacy"} {
		_, err := e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id})
		if id == "userdata" {
			wantCode(t, err, codes.FailedPrecondition, "userdata")
		} else if err != nil && status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("delete of %s: %v, want success (nothing of the driver's) or FailedPrecondition", id, err)
		}
		wantUnchanged(t, e.sim, before)
	}
	if got := e.readFile(t, "pool/k8s/userdata/notes.txt"); got != "an admin's own files" {
		t.Fatalf("the admin's file now holds %q", got)
	}
}

// Case 2: a create that finds its name taken answers AlreadyExists and leaves the RDS as it found it.
func TestCreateVolumeOfATakenNameLeavesNothing(t *testing.T) {
	forEachDialect(t, testCreateVolumeOfATakenNameLeavesNothing)
}

func testCreateVolumeOfATakenNameLeavesNothing(t *testing.T, cfg rdssim.Config) {
	e := newControllerEnv(t, cfg)
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-elsewhere", map[string]string{"basePath": "pool/team-a"})); err != nil {
		t.Fatal(err)
	}
	// The base directories exist already (a subvolume's parents are made on the way and stay, as a base path's
	// directory should): what matters is what the create adds in them.
	for _, dir := range []string{"pool/k8s", "pool/team-a"} {
		p, err := e.sim.HostPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	e.run(t, func() (rds.Cmd, error) {
		return rds.AddFileDisk(rds.FileDiskSpec{Slot: "pvc-foreign", FilePath: "pool/other/foreign.img", SizeBytes: gib,
			NQN: "nqn.2010-01.org.example:foreign"})
	})
	if _, err := e.d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-src", SourceVolumeId: "pvc-elsewhere"}); err != nil {
		t.Fatal(err)
	}
	t.Run("restore onto a name taken in another base path", func(t *testing.T) {
		before := readRDSState(t, e.sim)
		r := createReq("pvc-elsewhere", map[string]string{"basePath": "pool/k8s"})
		r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snap-src"}}}
		_, err := e.d.CreateVolume(ctx, r)
		wantCode(t, err, codes.AlreadyExists, "pvc-elsewhere")
		wantUnchanged(t, e.sim, before)
	})
	for _, c := range []struct{ name, base string }{
		{"pvc-elsewhere", "pool/k8s"},  // the same name in another base path
		{"pvc-elsewhere", ""},          // ... and in the controller's default one
		{"pvc-foreign", "pool/k8s"},    // a disk of another tool holds the slot
		{"pvc-foreign", "pool/team-a"}, // ... in any base path
	} {
		t.Run(c.name+" in "+c.base, func(t *testing.T) {
			before := readRDSState(t, e.sim)
			var params map[string]string
			if c.base != "" {
				params = map[string]string{"basePath": c.base}
			}
			_, err := e.d.CreateVolume(ctx, createReq(c.name, params))
			wantCode(t, err, codes.AlreadyExists, c.name)
			wantUnchanged(t, e.sim, before)
		})
	}
}

// Cases 3 and 4: what an interrupted delete or create left in a base path other than the controller's
// default is found from the RDS alone and removed by the next DeleteVolume.
func TestDeleteVolumeFindsLeftoversInAnyBasePath(t *testing.T) {
	forEachDialect(t, testDeleteVolumeFindsLeftoversInAnyBasePath)
}

func testDeleteVolumeFindsLeftoversInAnyBasePath(t *testing.T, cfg rdssim.Config) {
	for _, c := range []struct {
		name  string
		fault rdssim.Fault
		// interrupt is the operation the fault breaks; it must fail.
		interrupt func(e *controllerEnv, id string) error
	}{
		{"delete dropped after the disk was removed", rdssim.Fault{Kind: rdssim.FaultDropAfter, Match: "/disk remove", Count: 1},
			func(e *controllerEnv, id string) error {
				if _, err := e.d.CreateVolume(context.Background(), createReq(id, map[string]string{"basePath": "pool/team-a/x"})); err != nil {
					return err
				}
				return errOf(e.d.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: id}))
			}},
		{"create hung at the disk, after the subvolume, until the CO gave up", rdssim.Fault{Kind: rdssim.FaultHang, Match: "/disk add", Count: 1},
			func(e *controllerEnv, id string) error {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				defer cancel()
				return errOf(e.d.CreateVolume(ctx, createReq(id, map[string]string{"basePath": "pool/team-a/x"})))
			}},
		{"create dropped before the disk, twice", rdssim.Fault{Kind: rdssim.FaultDropBefore, Match: "/disk add", Count: 2},
			func(e *controllerEnv, id string) error {
				return errOf(e.d.CreateVolume(context.Background(), createReq(id, map[string]string{"basePath": "pool/team-a/x"})))
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newControllerEnv(t, cfg)
			ctx := context.Background()
			// A neighbour with snapshots in the same base path, which must survive.
			if _, err := e.d.CreateVolume(ctx, createReq("pvc-neighbour", map[string]string{"basePath": "pool/team-a/x"})); err != nil {
				t.Fatal(err)
			}
			if _, err := e.d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-neighbour", SourceVolumeId: "pvc-neighbour"}); err != nil {
				t.Fatal(err)
			}
			const id = "pvc-left"
			e.sim.SetFaults(c.fault)
			err := c.interrupt(e, id)
			e.sim.SetFaults()
			if err == nil {
				t.Fatal("the interrupted operation succeeded: the fault did not interrupt it")
			}
			if st := readRDSState(t, e.sim); !slices.Contains(st.Subvolumes, "team-a/x/"+id) {
				t.Fatalf("the interrupted operation left no subvolume to find: %+v", st)
			}
			neighbour := readRDSState(t, e.sim)
			if _, err := e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
				t.Fatalf("delete after the interruption: %v", err)
			}
			nothingOf(t, e.sim, id)
			after := readRDSState(t, e.sim)
			if after.Disks["pvc-neighbour"] != neighbour.Disks["pvc-neighbour"] || len(after.Subvolumes) < 2 {
				t.Fatalf("the neighbour or its snapshot was touched: %+v", after)
			}
			// The neighbour itself, once its disk is gone, is found too, and its snapshot stays.
			e.sim.SetFaults(rdssim.Fault{Kind: rdssim.FaultDropAfter, Match: "/disk remove", Count: 1})
			_, _ = e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-neighbour"})
			e.sim.SetFaults()
			if _, err := e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-neighbour"}); err != nil {
				t.Fatalf("delete of the neighbour after an interruption: %v", err)
			}
			nothingOfVolume(t, e.sim, "pvc-neighbour")
			if r, err := e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "snap-neighbour"}); err != nil || len(r.GetEntries()) != 1 {
				t.Fatalf("the snapshot of a deleted volume is gone: %v %v", r, err)
			}
		})
	}
}

// nothingOfVolume is nothingOf for a volume that has snapshots: they keep its id in their paths.
func nothingOfVolume(t *testing.T, sim *rdssim.Simulator, id string) {
	t.Helper()
	st := readRDSState(t, sim)
	if _, ok := st.Disks[id]; ok {
		t.Errorf("disk %s is left", id)
	}
	for _, f := range append(st.Subvolumes, st.Files...) {
		if strings.Contains(f, "-snapshots/") {
			continue
		}
		if strings.Contains("/"+f+"/", "/"+id+"/") {
			t.Errorf("%s is left", f)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }
