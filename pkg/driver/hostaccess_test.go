package driver

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

const (
	hostNQNA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	hostNQNB = "nqn.2014-08.org.nvmexpress:uuid:bbbbbbbb-0000-0000-0000-000000000002"
)

var hostAccess = map[string]string{"hostAccessControl": "true"}

// allowedOn reads what the RDS (the simulator) says the volume's export allows.
func allowedOn(t *testing.T, e *controllerEnv, id string) []string {
	t.Helper()
	v, err := volume.NewManager(e.client).Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v.AllowedHosts()
}

func wantAllowed(t *testing.T, e *controllerEnv, id string, want ...string) {
	t.Helper()
	if got := allowedOn(t, e, id); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s allows %q, want %q", id, got, want)
	}
}

func createHostAccess(t *testing.T, e *controllerEnv, name string, c *csi.VolumeCapability) map[string]string {
	t.Helper()
	r, err := e.d.CreateVolume(context.Background(), createReq(name, hostAccess, c))
	if err != nil {
		t.Fatal(err)
	}
	if r.GetVolume().GetVolumeContext()["hostAccessControl"] != "true" {
		t.Fatalf("volume context %v lacks hostAccessControl", r.GetVolume().GetVolumeContext())
	}
	return r.GetVolume().GetVolumeContext()
}

func publishTo(vol, node string, c *csi.VolumeCapability, vc map[string]string) *csi.ControllerPublishVolumeRequest {
	return &csi.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: node, VolumeCapability: c, VolumeContext: vc}
}

func unpublish(t *testing.T, e *controllerEnv, vol, node string) {
	t.Helper()
	if _, err := e.d.ControllerUnpublishVolume(context.Background(), &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: node}); err != nil {
		t.Fatalf("unpublish %s from %s: %v", vol, node, err)
	}
}

// TestHostAccessSingleNode: a volume with hostAccessControl is created closed, allowed to the published
// node's host NQN only, and closed again when it is unpublished; a node id without a host NQN cannot get it.
func TestHostAccessSingleNode(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	vc := createHostAccess(t, e, "pvc-acl", fsRWO)
	wantAllowed(t, e, "pvc-acl", volume.NoHost)

	_, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-acl", "node-a", fsRWO, vc))
	wantCode(t, err, codes.FailedPrecondition, "host NQN")
	if h := e.d.attach.Holders("pvc-acl"); h != nil {
		t.Fatalf("a refused publish left holders %v", h)
	}
	wantAllowed(t, e, "pvc-acl", volume.NoHost)

	for i := 0; i < 2; i++ { // idempotent
		if _, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-acl", "node-a,"+hostNQNA, fsRWO, vc)); err != nil {
			t.Fatal(err)
		}
		wantAllowed(t, e, "pvc-acl", hostNQNA)
	}
	_, err = e.d.ControllerPublishVolume(ctx, publishTo("pvc-acl", "node-b,"+hostNQNB, fsRWO, vc))
	wantCode(t, err, codes.FailedPrecondition, "node-a")
	wantAllowed(t, e, "pvc-acl", hostNQNA)

	unpublish(t, e, "pvc-acl", "node-a,"+hostNQNA)
	wantAllowed(t, e, "pvc-acl", volume.NoHost)
	unpublish(t, e, "pvc-acl", "node-a,"+hostNQNA)

	if _, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-acl", "node-b,"+hostNQNB, fsRWO, vc)); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, e, "pvc-acl", hostNQNB)
	// An unpublish by the plain name (an attacher that has the old CSINode entry) still closes the export:
	// no node holds the volume any more.
	unpublish(t, e, "pvc-acl", "node-b")
	wantAllowed(t, e, "pvc-acl", volume.NoHost)
}

// TestHostAccessMigration: during a live migration of a block RWX volume both nodes are allowed; each
// unpublish takes its node off.
func TestHostAccessMigration(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	rwx := blockCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
	vc := createHostAccess(t, e, "pvc-vm", rwx)
	for _, n := range []string{"node-a," + hostNQNA, "node-b," + hostNQNB} {
		if _, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-vm", n, rwx, vc)); err != nil {
			t.Fatal(err)
		}
	}
	wantAllowed(t, e, "pvc-vm", hostNQNA, hostNQNB)
	unpublish(t, e, "pvc-vm", "node-a,"+hostNQNA)
	wantAllowed(t, e, "pvc-vm", hostNQNB)
	// The next migration, back to node-a.
	if _, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-vm", "node-a,"+hostNQNA, rwx, vc)); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, e, "pvc-vm", hostNQNB, hostNQNA)
	unpublish(t, e, "pvc-vm", "") // every node
	wantAllowed(t, e, "pvc-vm", volume.NoHost)
}

// TestHostAccessOff: without the parameter nothing changes: the export stays open, a plain node id
// publishes, and the long node id is the same node.
func TestHostAccessOff(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	r, err := e.d.CreateVolume(ctx, createReq("pvc-open", map[string]string{"hostAccessControl": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	vc := r.GetVolume().GetVolumeContext()
	for _, n := range []string{"node-a", "node-a," + hostNQNA} {
		if _, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-open", n, fsRWO, vc)); err != nil {
			t.Fatalf("publish to %s: %v", n, err)
		}
	}
	wantAllowed(t, e, "pvc-open")
	// published_node_ids are the node id as CSINode has it: the external-attacher compares them exactly.
	g, err := e.d.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: "pvc-open"})
	if err != nil || !reflect.DeepEqual(g.GetStatus().GetPublishedNodeIds(), []string{"node-a," + hostNQNA}) {
		t.Fatalf("ControllerGetVolume published nodes %v, %v", g.GetStatus().GetPublishedNodeIds(), err)
	}
	unpublish(t, e, "pvc-open", "node-a,"+hostNQNA)
	if h := e.d.attach.Holders("pvc-open"); h != nil {
		t.Fatalf("holders after unpublish: %v", h)
	}
	wantAllowed(t, e, "pvc-open")
	// Unpublishing a volume that is gone is success.
	unpublish(t, e, "pvc-gone", "node-a,"+hostNQNA)
}

func TestHostAccessParameter(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	for _, v := range []string{"yes", "True", "1", ""} {
		_, err := e.d.CreateVolume(context.Background(), createReq("pvc-bad", map[string]string{"hostAccessControl": v}))
		wantCode(t, err, codes.InvalidArgument, "hostAccessControl")
	}
	_, err := e.d.ControllerPublishVolume(context.Background(), publishTo("pvc-bad", "node-a,garbage", fsRWO, hostAccess))
	wantCode(t, err, codes.InvalidArgument, "host NQN")
}

// TestNodeInfoCarriesTheHostNQN: the node plugin reports "name,<host NQN>" when it has a valid host NQN,
// and the bare name otherwise (an invalid NQN, or a node id Kubernetes would refuse as too long).
func TestNodeInfoCarriesTheHostNQN(t *testing.T) {
	long := strings.Repeat("n", 150)
	for _, tc := range []struct{ name, host, want string }{
		{"node-a", hostNQNA, "node-a," + hostNQNA},
		{"node-a", "", "node-a"},
		{"node-a", "garbage", "node-a"},
		{long, hostNQNA, long},
	} {
		d, err := New(Options{Mode: ModeNode, DriverName: DefaultDriverName, NodeID: tc.name, HostNQN: tc.host}, Deps{Node: &fakeNode{}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := d.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
		if err != nil || info.GetNodeId() != tc.want {
			t.Errorf("node %q host %q: NodeGetInfo %q, %v; want %q", tc.name, tc.host, info.GetNodeId(), err, tc.want)
		}
	}
	if _, err := New(Options{Mode: ModeNode, DriverName: DefaultDriverName, NodeID: "a,b"}, Deps{Node: &fakeNode{}}); err == nil {
		t.Error("a node name with ',' was accepted")
	}
}

// TestHostAccessOnABoxWithoutIt: when the start-up check found that the RDS does not know the property,
// volumes with hostAccessControl are refused with FailedPrecondition saying so, at create and at publish;
// others work.
func TestHostAccessOnABoxWithoutIt(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{AllowHostName: rdssim.AllowHostAbsent})
	e.d.boxes.def.Volumes.(*volume.Manager).SetHostAccess(false) // what the start-up check found
	ctx := context.Background()
	e.sim.ResetCommands()
	_, err := e.d.CreateVolume(ctx, createReq("pvc-acl", hostAccess))
	wantCode(t, err, codes.FailedPrecondition, "does not know nvme-tcp-server-allow-host-name")
	for _, c := range e.sim.Commands() {
		if strings.Contains(c, "/disk add") {
			t.Fatalf("the create was tried on the RDS: %s", c)
		}
	}
	r, err := e.d.CreateVolume(ctx, createReq("pvc-open", nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.d.ControllerPublishVolume(ctx, publishTo("pvc-open", "node-a,"+hostNQNA, fsRWO, hostAccess))
	wantCode(t, err, codes.FailedPrecondition, "hostAccessControl")
	if _, err := e.d.ControllerPublishVolume(ctx, publishTo("pvc-open", "node-a,"+hostNQNA, fsRWO, r.GetVolume().GetVolumeContext())); err != nil {
		t.Fatal(err)
	}
	unpublish(t, e, "pvc-open", "node-a,"+hostNQNA)
}

// TestHostAccessUnknownToTheBox: without the start-up check's verdict, a box that refuses the property
// at create fails clearly rather than leaving an open export.
func TestHostAccessUnknownToTheBox(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{AllowHostName: rdssim.AllowHostAbsent})
	_, err := e.d.CreateVolume(context.Background(), createReq("pvc-acl", hostAccess))
	wantCode(t, err, codes.FailedPrecondition, "nvme-tcp-server-allow-host-name")
	t.Logf("refused with %v", err)
	nothingOfVolume(t, e.sim, "pvc-acl")
}

// TestHostAccessExecs pins what host access control costs in SSH execs (docs/architecture.md §3: the
// round trips are the cost): a publish of a restricted volume reads it and sets the hosts with their
// read-back (2), a repeated publish only reads (1); an unpublish reads (1) and, when the export is
// restricted, sets (2); a volume without the parameter publishes as before (1) and, published open by this
// process, unpublishes with no exec; by a restarted controller, with one read.
func TestHostAccessExecs(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	vc := createHostAccess(t, e, "pvc-acl", fsRWO)
	r, err := e.d.CreateVolume(ctx, createReq("pvc-open", nil))
	if err != nil {
		t.Fatal(err)
	}
	execs := func(what string, want int, f func()) {
		t.Helper()
		e.sim.ResetCommands()
		f()
		if got := len(e.sim.Scripts()); got != want {
			t.Errorf("%s: %d execs, want %d: %q", what, got, want, e.sim.Scripts())
		}
	}
	pub := func(vol string, vc map[string]string) func() {
		return func() {
			if _, err := e.d.ControllerPublishVolume(ctx, publishTo(vol, "node-a,"+hostNQNA, fsRWO, vc)); err != nil {
				t.Fatal(err)
			}
		}
	}
	execs("publish, restricted", 2, pub("pvc-acl", vc))
	execs("publish again, restricted", 1, pub("pvc-acl", vc))
	execs("unpublish, restricted", 2, func() { unpublish(t, e, "pvc-acl", "node-a,"+hostNQNA) })
	execs("publish, open", 1, pub("pvc-open", r.GetVolume().GetVolumeContext()))
	execs("unpublish, open", 0, func() { unpublish(t, e, "pvc-open", "node-a,"+hostNQNA) })
	execs("publish, open, again", 1, pub("pvc-open", r.GetVolume().GetVolumeContext()))
	restarted := newControllerEnvOn(t, e)
	execs("unpublish, open, by a restarted controller", 1, func() {
		if _, err := restarted.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: "pvc-open",
			NodeId: "node-a," + hostNQNA}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHostAccessRestoreAndClone: a volume restored from a snapshot or cloned with hostAccessControl is closed
// until it is published, as a new one is (the restore's fast path included).
func TestHostAccessRestoreAndClone(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	createHostAccess(t, e, "pvc-src", fsRWO)
	snap, err := e.d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: "pvc-src"})
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]*csi.VolumeContentSource{
		"pvc-restored": {Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{
			SnapshotId: snap.GetSnapshot().GetSnapshotId()}}},
		"pvc-clone": {Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "pvc-src"}}},
	} {
		req := createReq(name, hostAccess)
		req.VolumeContentSource = src
		if _, err := e.d.CreateVolume(ctx, req); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantAllowed(t, e, name, volume.NoHost)
	}
}
