package driver

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

func snapshotReq(name, source string, params map[string]string) *csi.CreateSnapshotRequest {
	return &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: source, Parameters: params}
}

func fromSnapshot(name, snapshotID string) *csi.CreateVolumeRequest {
	r := createReq(name, nil)
	r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapshotID}}}
	return r
}

func fromVolume(name, volumeID string) *csi.CreateVolumeRequest {
	r := createReq(name, nil)
	r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: volumeID}}}
	return r
}

// Bad snapshot requests get InvalidArgument and send nothing to the RDS.
func TestSnapshotHandlersRefuseBadInput(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	hostile := `snap";/disk remove 0`
	for _, c := range []struct {
		name    string
		call    func() error
		mention string
	}{
		{"create: no name", func() error { _, err := e.d.CreateSnapshot(ctx, snapshotReq("", "pvc-a", nil)); return err }, "name"},
		{"create: no source", func() error { _, err := e.d.CreateSnapshot(ctx, snapshotReq("snap-a", "", nil)); return err }, "source"},
		{"create: hostile name", func() error { _, err := e.d.CreateSnapshot(ctx, snapshotReq(hostile, "pvc-a", nil)); return err }, "snapshot name"},
		{"create: hostile source", func() error { _, err := e.d.CreateSnapshot(ctx, snapshotReq("snap-a", hostile, nil)); return err }, "volume id"},
		{"create: over-long name", func() error {
			_, err := e.d.CreateSnapshot(ctx, snapshotReq(strings.Repeat("s", 129), "pvc-a", nil))
			return err
		}, "snapshot name"},
		{"create: freeze parameter", func() error {
			_, err := e.d.CreateSnapshot(ctx, snapshotReq("snap-a", "pvc-a", map[string]string{"freeze": "true"}))
			return err
		}, "freeze"},
		{"delete: no id", func() error { _, err := e.d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{}); return err }, "snapshot id"},
		{"delete: hostile id", func() error {
			_, err := e.d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: hostile})
			return err
		}, "snapshot id"},
		{"list: negative max", func() error {
			_, err := e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: -1})
			return err
		}, "max_entries"},
		{"restore: no snapshot id", func() error { _, err := e.d.CreateVolume(ctx, fromSnapshot("pvc-r", "")); return err }, "snapshot id"},
		{"restore: hostile snapshot id", func() error { _, err := e.d.CreateVolume(ctx, fromSnapshot("pvc-r", hostile)); return err }, "snapshot id"},
		{"clone: no volume id", func() error { _, err := e.d.CreateVolume(ctx, fromVolume("pvc-c", "")); return err }, "volume id"},
		{"clone: hostile volume id", func() error { _, err := e.d.CreateVolume(ctx, fromVolume("pvc-c", hostile)); return err }, "volume id"},
		{"source of no kind", func() error {
			r := createReq("pvc-c", nil)
			r.VolumeContentSource = &csi.VolumeContentSource{}
			_, err := e.d.CreateVolume(ctx, r)
			return err
		}, "neither"},
		{"restore: bad StorageClass", func() error {
			r := fromSnapshot("pvc-r", "snap-a")
			r.Parameters = map[string]string{"basePath": "pool/../x"}
			_, err := e.d.CreateVolume(ctx, r)
			return err
		}, "basePath"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.sim.ResetCommands()
			wantCode(t, c.call(), codes.InvalidArgument, c.mention)
			if cmds := e.sim.Commands(); len(cmds) != 0 {
				t.Fatalf("bad input reached the RDS: %q", cmds)
			}
		})
	}
	// A filter no snapshot can match answers empty at once; a bad token is Aborted (list again).
	e.sim.ResetCommands()
	for _, r := range []*csi.ListSnapshotsRequest{{SnapshotId: hostile}, {SourceVolumeId: hostile}} {
		resp, err := e.d.ListSnapshots(ctx, r)
		if err != nil || len(resp.GetEntries()) != 0 {
			t.Fatalf("list %v: %v %v", r, resp, err)
		}
	}
	if cmds := e.sim.Commands(); len(cmds) != 0 {
		t.Fatalf("hostile filters reached the RDS: %q", cmds)
	}
	_, err := e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: hostile})
	wantCode(t, err, codes.Aborted, "token")
}

func TestSnapshotHandlersMapDomainErrors(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	for _, v := range []string{"pvc-a", "pvc-b"} {
		if _, err := e.d.CreateVolume(ctx, createReq(v, nil)); err != nil {
			t.Fatal(err)
		}
	}
	meta := map[string]string{"csi.storage.k8s.io/volumesnapshot/name": "before-upgrade",
		"csi.storage.k8s.io/volumesnapshot/namespace": "db", "csi.storage.k8s.io/volumesnapshotcontent/name": "snapcontent-1"}
	s, err := e.d.CreateSnapshot(ctx, snapshotReq("snap-a", "pvc-a", meta))
	if err != nil {
		t.Fatal(err)
	}
	if snap := s.GetSnapshot(); snap.GetSnapshotId() != "snap-a" || snap.GetSourceVolumeId() != "pvc-a" || snap.GetSizeBytes() != gib ||
		!snap.GetReadyToUse() || snap.GetCreationTime().AsTime().IsZero() {
		t.Fatalf("snapshot %v", snap)
	}
	_, err = e.d.CreateSnapshot(ctx, snapshotReq("snap-a", "pvc-b", nil))
	wantCode(t, err, codes.AlreadyExists, "pvc-a")
	_, err = e.d.CreateSnapshot(ctx, snapshotReq("snap-x", "pvc-none", nil))
	wantCode(t, err, codes.NotFound, "pvc-none")
	_, err = e.d.CreateVolume(ctx, fromSnapshot("pvc-r", "snap-none"))
	wantCode(t, err, codes.NotFound, "snap-none")
	_, err = e.d.CreateVolume(ctx, fromVolume("pvc-c", "pvc-none"))
	wantCode(t, err, codes.NotFound, "pvc-none")
	small := fromSnapshot("pvc-r", "snap-a")
	small.CapacityRange = &csi.CapacityRange{RequiredBytes: gib / 2}
	_, err = e.d.CreateVolume(ctx, small)
	wantCode(t, err, codes.OutOfRange, "at least")

	r, err := e.d.CreateVolume(ctx, fromSnapshot("pvc-r", "snap-a"))
	if err != nil {
		t.Fatal(err)
	}
	if r.GetVolume().GetContentSource().GetSnapshot().GetSnapshotId() != "snap-a" || r.GetVolume().GetVolumeContext()["nqn"] != "nqn.2000-02.com.mikrotik:pvc-r" {
		t.Fatalf("restored volume %v", r.GetVolume())
	}
	c, err := e.d.CreateVolume(ctx, fromVolume("pvc-c", "pvc-a"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GetVolume().GetContentSource().GetVolume().GetVolumeId() != "pvc-a" {
		t.Fatalf("cloned volume %v", c.GetVolume())
	}
	_, err = e.d.CreateVolume(ctx, fromVolume("pvc-r", "pvc-b"))
	wantCode(t, err, codes.AlreadyExists, "pvc-b")
	if _, err := e.d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-a"}); err != nil {
		t.Fatalf("delete a volume with snapshots and clones: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := e.d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "snap-a"}); err != nil {
			t.Fatalf("delete snapshot #%d: %v", i+1, err)
		}
	}
}

func TestSnapshotsOnXFSAreFailedPrecondition(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{PoolFS: "xfs"})
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-x", nil)); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.CreateSnapshot(ctx, snapshotReq("snap-x", "pvc-x", nil))
	wantCode(t, err, codes.FailedPrecondition, "xfs")
	_, err = e.d.CreateVolume(ctx, fromVolume("pvc-y", "pvc-x"))
	wantCode(t, err, codes.FailedPrecondition, "xfs")
}

func TestListSnapshotsPages(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	for _, v := range []string{"pvc-a", "pvc-b"} {
		if _, err := e.d.CreateVolume(ctx, createReq(v, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range [][2]string{{"snap-3", "pvc-a"}, {"snap-1", "pvc-b"}, {"snap-2", "pvc-a"}, {"snap-4", "pvc-b"}, {"snap-5", "pvc-a"}} {
		if _, err := e.d.CreateSnapshot(ctx, snapshotReq(s[0], s[1], nil)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r, err := e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range r.GetEntries() {
			got = append(got, en.GetSnapshot().GetSnapshotId()+"<"+en.GetSnapshot().GetSourceVolumeId())
		}
		if token = r.GetNextToken(); token == "" {
			break
		}
	}
	if want := "snap-1<pvc-b snap-2<pvc-a snap-3<pvc-a snap-4<pvc-b snap-5<pvc-a"; strings.Join(got, " ") != want {
		t.Fatalf("pages: %v, want %s", got, want)
	}
	bySource, err := e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: "pvc-b"})
	if err != nil || len(bySource.GetEntries()) != 2 {
		t.Fatalf("by source: %v %v", bySource, err)
	}
	byID, err := e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "snap-4"})
	if err != nil || len(byID.GetEntries()) != 1 || byID.GetEntries()[0].GetSnapshot().GetSourceVolumeId() != "pvc-b" {
		t.Fatalf("by id: %v %v", byID, err)
	}
	_, err = e.d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "snap-gone"})
	wantCode(t, err, codes.Aborted, "list again")
}

// A snapshot of a volume while another operation holds it, or two operations on one snapshot name, are
// Aborted for the sidecar to retry, and leave the guards free.
func TestSnapshotGuards(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-a", nil)); err != nil {
		t.Fatal(err)
	}
	release, err := e.d.guard.acquire("pvc-a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.d.CreateSnapshot(ctx, snapshotReq("snap-a", "pvc-a", nil))
	wantCode(t, err, codes.Aborted, "pvc-a")
	_, err = e.d.CreateVolume(ctx, fromVolume("pvc-c", "pvc-a"))
	wantCode(t, err, codes.Aborted, "pvc-a")
	release()
	release, err = e.d.guard.acquire(snapshotGuardKey("snap-a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "snap-a"})
	wantCode(t, err, codes.Aborted, "snap-a")
	release()
	// Every guard taken above was given back, including the first of two when the second was busy.
	if _, err := e.d.CreateSnapshot(ctx, snapshotReq("snap-a", "pvc-a", nil)); err != nil {
		t.Fatalf("after the guards were released: %v", err)
	}
	if _, err := e.d.CreateVolume(ctx, fromSnapshot("pvc-r", "snap-a")); err != nil {
		t.Fatalf("restore: %v", err)
	}
	restored := false // from the simulator's own state: how the console names subvolumes is the dialect's business
	for _, sv := range e.sim.Subvolumes() {
		restored = restored || (sv.Path == "k8s/pvc-r" && sv.Parent != "")
	}
	if !restored {
		t.Fatalf("restore's subvolume: %+v", e.sim.Subvolumes())
	}
}
