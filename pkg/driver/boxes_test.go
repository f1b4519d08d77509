package driver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// simBox is one simulator with a client and a volume manager over real SSH: one RDS box.
type simBox struct {
	sim    *rdssim.Simulator
	client *rds.Client
	vols   *volume.Manager
}

func startSimBox(t *testing.T, poolSize int64) *simBox {
	t.Helper()
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), PoolSize: poolSize})
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
	hostKey, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	client, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hostKey,
		CommandTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return &simBox{sim: sim, client: client, vols: volume.NewManager(client)}
}

// twoBoxes is a controller over two simulators: the default box "main" (10.0.0.5) and box "rds2" (10.0.0.6).
func twoBoxes(t *testing.T) (*Driver, *simBox, *simBox) {
	t.Helper()
	a, b := startSimBox(t, 100<<30), startSimBox(t, 50<<30)
	loc, _ := volume.ParseLocation("pool/k8s")
	locB, _ := volume.ParseLocation("pool/other")
	d, err := New(Options{Mode: ModeController, DriverName: DefaultDriverName, DefaultLocation: loc, NVMeAddress: "10.0.0.5",
		DefaultBoxName: "main"},
		Deps{Volumes: a.vols, Prober: a.client, Attachments: attachment.NewManager(attachment.Options{}),
			Nodes: knownNodes{"node-a": true, "node-b": true},
			Boxes: []Box{{Name: "rds2", Volumes: b.vols, Prober: b.client, DefaultLocation: locB, NVMeAddress: "10.0.0.6"}}})
	if err != nil {
		t.Fatal(err)
	}
	return d, a, b
}

func onBox(t *testing.T, b *simBox, name string, want bool) {
	t.Helper()
	_, err := b.vols.Get(context.Background(), name)
	if want && err != nil {
		t.Fatalf("volume %s is not on its box: %v", name, err)
	}
	if !want && !errors.Is(err, volume.ErrNotFound) {
		t.Fatalf("volume %s: got %v, want it absent from this box", name, err)
	}
}

// Every call after CreateVolume finds the box from the id alone; default-box ids carry no prefix.
func TestTwoBoxesRouteByID(t *testing.T) {
	d, a, b := twoBoxes(t)
	ctx := context.Background()

	va, err := d.CreateVolume(ctx, createReq("pvc-a", nil))
	if err != nil || va.GetVolume().GetVolumeId() != "pvc-a" {
		t.Fatalf("create on the default box: %v, %v", va, err)
	}
	vb, err := d.CreateVolume(ctx, createReq("pvc-b", map[string]string{paramBox: "rds2"}))
	if err != nil || vb.GetVolume().GetVolumeId() != "rds2/pvc-b" {
		t.Fatalf("create on rds2: %v, %v", vb, err)
	}
	if vc := vb.GetVolume().GetVolumeContext(); vc[paramNVMeAddress] != "10.0.0.6" || vc[paramBasePath] != "pool/other" ||
		vc[ctxNQN] != "nqn.2000-02.com.mikrotik:pvc-b" {
		t.Fatalf("rds2's volume context: %v", vc)
	}
	if _, err := d.CreateVolume(ctx, createReq("pvc-m", map[string]string{paramBox: "main"})); err != nil {
		t.Fatalf("rdsBox naming the default box: %v", err)
	}
	onBox(t, a, "pvc-a", true)
	onBox(t, a, "pvc-m", true)
	onBox(t, a, "pvc-b", false)
	onBox(t, b, "pvc-b", true)
	onBox(t, b, "pvc-a", false)
	// Idempotent on its box.
	if again, err := d.CreateVolume(ctx, createReq("pvc-b", map[string]string{paramBox: "rds2"})); err != nil ||
		again.GetVolume().GetVolumeId() != "rds2/pvc-b" {
		t.Fatalf("create again: %v, %v", again, err)
	}

	ex, err := d.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "rds2/pvc-b",
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}})
	if err != nil || ex.GetCapacityBytes() != 2*gib {
		t.Fatalf("expand on rds2: %v, %v", ex, err)
	}
	if v, err := b.vols.Get(ctx, "pvc-b"); err != nil || v.SizeBytes != 2*gib {
		t.Fatalf("rds2's disk after expand: %v, %v", v, err)
	}
	if g, err := d.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: "rds2/pvc-b"}); err != nil ||
		g.GetVolume().GetVolumeId() != "rds2/pvc-b" {
		t.Fatalf("get: %v, %v", g, err)
	}

	pub, err := d.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: "rds2/pvc-b", NodeId: "node-a",
		VolumeCapability: fsRWO})
	if err != nil {
		t.Fatal(err)
	}
	if pc := pub.GetPublishContext(); pc[paramNVMeAddress] != "10.0.0.6" || pc[ctxNQN] != "nqn.2000-02.com.mikrotik:pvc-b" {
		t.Fatalf("publish context of rds2's volume: %v", pc)
	}
	if h := d.attach.Holders("rds2/pvc-b"); len(h) != 1 || h[0] != "node-a" {
		t.Fatalf("holders are kept under the full id: %v", h)
	}
	if _, err := d.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: "rds2/pvc-b", NodeId: "node-a"}); err != nil {
		t.Fatal(err)
	}

	snap, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-b", SourceVolumeId: "rds2/pvc-b"})
	if err != nil || snap.GetSnapshot().GetSnapshotId() != "rds2/snap-b" || snap.GetSnapshot().GetSourceVolumeId() != "rds2/pvc-b" {
		t.Fatalf("snapshot on rds2: %v, %v", snap, err)
	}
	if _, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-a", SourceVolumeId: "pvc-a"}); err != nil {
		t.Fatal(err)
	}
	ls, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
	if err != nil || len(ls.GetEntries()) != 2 || ls.GetEntries()[0].GetSnapshot().GetSnapshotId() != "rds2/snap-b" ||
		ls.GetEntries()[1].GetSnapshot().GetSnapshotId() != "snap-a" {
		t.Fatalf("snapshots of both boxes, in id order: %v, %v", ls, err)
	}
	for _, f := range []*csi.ListSnapshotsRequest{{SourceVolumeId: "rds2/pvc-b"}, {SnapshotId: "rds2/snap-b"}} {
		ls, err := d.ListSnapshots(ctx, f)
		if err != nil || len(ls.GetEntries()) != 1 || ls.GetEntries()[0].GetSnapshot().GetSnapshotId() != "rds2/snap-b" {
			t.Fatalf("ListSnapshots(%v): %v, %v", f, ls, err)
		}
	}
	if ls, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "snap-b"}); err != nil || len(ls.GetEntries()) != 0 {
		t.Fatalf("snap-b is not on the default box: %v, %v", ls, err)
	}

	restore := func(params map[string]string, snapID string) (*csi.CreateVolumeResponse, error) {
		r := createReq("pvc-r", params)
		r.CapacityRange.RequiredBytes = 2 * gib
		r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}}
		return d.CreateVolume(ctx, r)
	}
	_, err = restore(nil, "rds2/snap-b")
	wantCode(t, err, codes.InvalidArgument, "rdsBox=rds2")
	onBox(t, a, "pvc-r", false)
	if r, err := restore(map[string]string{paramBox: "rds2"}, "rds2/snap-b"); err != nil || r.GetVolume().GetVolumeId() != "rds2/pvc-r" {
		t.Fatalf("restore on rds2: %v, %v", r, err)
	}
	onBox(t, b, "pvc-r", true)
	clone := createReq("pvc-c", map[string]string{paramBox: "rds2"})
	clone.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "pvc-a"}}}
	_, err = d.CreateVolume(ctx, clone)
	wantCode(t, err, codes.InvalidArgument, "box main")
	// A source that exists on neither box is NotFound, as any missing source.
	_, err = restore(nil, "rds2/snap-none")
	wantCode(t, err, codes.NotFound, "snap-none")
	clone.VolumeContentSource.GetVolume().VolumeId = "pvc-none"
	_, err = d.CreateVolume(ctx, clone)
	wantCode(t, err, codes.NotFound, "pvc-none")

	// ListVolumes pages over both boxes, one entry at a time.
	var ids []string
	token := ""
	for i := 0; i < 10; i++ {
		l, err := d.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 1, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.GetEntries() {
			ids = append(ids, e.GetVolume().GetVolumeId())
		}
		if token = l.GetNextToken(); token == "" {
			break
		}
	}
	if want := "pvc-a pvc-m rds2/pvc-b rds2/pvc-r"; joinSp(ids) != want {
		t.Fatalf("ListVolumes pages: %q, want %q", joinSp(ids), want)
	}
	if all, err := d.ListVolumes(ctx, &csi.ListVolumesRequest{}); err != nil || len(all.GetEntries()) != 4 {
		t.Fatalf("ListVolumes in one page: %v, %v", all, err)
	}
	_, err = d.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: "nope@"})
	wantCode(t, err, codes.Aborted, "list again")

	for _, s := range []string{"rds2/snap-b", "snap-a"} {
		if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: s}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"rds2/pvc-b", "rds2/pvc-r", "pvc-a"} {
		if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	onBox(t, b, "pvc-b", false)
	onBox(t, a, "pvc-a", false)
	onBox(t, a, "pvc-m", true)
}

func joinSp(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// Ids and parameters naming boxes the driver does not know are refused with a code that says so, before
// anything reaches an RDS.
func TestTwoBoxesRefuseUnknownBoxes(t *testing.T) {
	d, _, _ := twoBoxes(t)
	ctx := context.Background()
	_, err := d.CreateVolume(ctx, createReq("pvc-x", map[string]string{paramBox: "nope"}))
	wantCode(t, err, codes.InvalidArgument, `box "nope" is not in the driver's configuration (boxes: main, rds2)`)
	_, err = d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "nope/pvc-x"})
	wantCode(t, err, codes.FailedPrecondition, `box "nope"`)
	_, err = d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "main/pvc-x"})
	wantCode(t, err, codes.InvalidArgument, `use "pvc-x"`)
	_, err = d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "Bad/pvc-x"})
	wantCode(t, err, codes.InvalidArgument, "not a valid id")
	_, err = d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "nope/snap"})
	wantCode(t, err, codes.FailedPrecondition, `box "nope"`)
	_, err = d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: "nope/pvc-x"})
	wantCode(t, err, codes.FailedPrecondition, `box "nope"`)
	if ls, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: "nope/pvc-x"}); err != nil || len(ls.GetEntries()) != 0 {
		t.Fatalf("ListSnapshots of an unknown box's volume: %v, %v", ls, err)
	}
	// Releasing a hold needs no box: it only changes the attachment records.
	if _, err := d.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: "nope/pvc-x", NodeId: "node-a"}); err != nil {
		t.Fatal(err)
	}
}

// GetCapacity answers for the StorageClass's box; Probe stays ready while one box answers.
func TestTwoBoxesCapacityAndProbe(t *testing.T) {
	d, a, b := twoBoxes(t)
	ctx := context.Background()
	capOf := func(params map[string]string) int64 {
		t.Helper()
		c, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: params})
		if err != nil {
			t.Fatal(err)
		}
		return c.GetAvailableCapacity()
	}
	main, rds2 := capOf(nil), capOf(map[string]string{paramBox: "rds2"})
	if main <= 50<<30 || rds2 > 50<<30 || rds2 <= 0 {
		t.Fatalf("capacity: default box %d, rds2 %d; want the 100 GiB and the 50 GiB pool's", main, rds2)
	}
	if _, err := d.CreateVolume(ctx, createReq("pvc-b", map[string]string{paramBox: "rds2"})); err != nil {
		t.Fatal(err)
	}
	_, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: map[string]string{paramBox: "nope"}})
	wantCode(t, err, codes.InvalidArgument, "nope")

	ready := func() bool {
		p, err := d.Probe(ctx, &csi.ProbeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return p.GetReady().GetValue()
	}
	if !ready() {
		t.Fatal("not ready with both boxes up")
	}
	b.sim.Close()
	if !ready() {
		t.Fatal("not ready while the default box still answers")
	}
	if _, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: map[string]string{paramBox: "rds2"}}); err == nil {
		t.Fatal("capacity of a box that is down")
	}
	if _, err := d.CreateVolume(ctx, createReq("pvc-a", nil)); err != nil {
		t.Fatalf("the default box stops serving when rds2 is down: %v", err)
	}
	// A list that silently missed a box would look like its volumes were gone: the page fails instead.
	_, err = d.ListVolumes(ctx, &csi.ListVolumesRequest{})
	wantCode(t, err, codes.Unavailable, "box rds2")
	_, err = d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "rds2/pvc-b"})
	wantCode(t, err, codes.Unavailable, "")
	a.sim.Close()
	if ready() {
		t.Fatal("ready with every box down")
	}
}
