package driver

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// knownNodes stands in for the Kubernetes Node lookup in unit tests.
type knownNodes map[string]bool

func (k knownNodes) Exists(_ context.Context, name string) (bool, error) { return k[name], nil }

func publishReq(vol, node string, c *csi.VolumeCapability) *csi.ControllerPublishVolumeRequest {
	return &csi.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: node, VolumeCapability: c}
}

func TestPublishEnforcesSingleNode(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-fsRWO", nil)); err != nil {
		t.Fatal(err)
	}
	r, err := e.d.ControllerPublishVolume(ctx, publishReq("pvc-fsRWO", "node-a", fsRWO))
	if err != nil {
		t.Fatal(err)
	}
	pc := r.GetPublishContext()
	if pc["nqn"] != "nqn.2000-02.com.mikrotik:pvc-fsRWO" || pc["nvmeAddress"] != "10.0.0.5" || pc["nvmePort"] != "4420" {
		t.Fatalf("publish context %v", pc)
	}
	if _, err := e.d.ControllerPublishVolume(ctx, publishReq("pvc-fsRWO", "node-a", fsRWO)); err != nil {
		t.Fatalf("same node again: %v", err)
	}
	_, err = e.d.ControllerPublishVolume(ctx, publishReq("pvc-fsRWO", "node-b", fsRWO))
	wantCode(t, err, codes.FailedPrecondition, "node-a")

	l, err := e.d.ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil || len(l.GetEntries()) != 1 || len(l.GetEntries()[0].GetStatus().GetPublishedNodeIds()) != 1 {
		t.Fatalf("published nodes in ListVolumes: %v %v", l, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := e.d.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: "pvc-fsRWO", NodeId: "node-a"}); err != nil {
			t.Fatalf("unpublish #%d: %v", i+1, err)
		}
	}
	if _, err := e.d.ControllerPublishVolume(ctx, publishReq("pvc-fsRWO", "node-b", fsRWO)); err != nil {
		t.Fatalf("after the first node let go: %v", err)
	}
}

func TestPublishAllowsTheMigrationWindowForBlockRWX(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	rwx := blockCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-vm", nil, rwx)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node-a", "node-b"} {
		if _, err := e.d.ControllerPublishVolume(ctx, publishReq("pvc-vm", n, rwx)); err != nil {
			t.Fatalf("migration %s: %v", n, err)
		}
	}
	_, err := e.d.ControllerPublishVolume(ctx, publishReq("pvc-vm", "node-c", rwx))
	wantCode(t, err, codes.FailedPrecondition, "node-a and node-b")
}

func TestPublishRefusesBadRequests(t *testing.T) {
	e := newControllerEnv(t, rdssim.Config{})
	ctx := context.Background()
	if _, err := e.d.CreateVolume(ctx, createReq("pvc-p", nil)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  *csi.ControllerPublishVolumeRequest
		code codes.Code
	}{
		{"no volume", publishReq("", "node-a", fsRWO), codes.InvalidArgument},
		{"no node", publishReq("pvc-p", "", fsRWO), codes.InvalidArgument},
		{"no capability", publishReq("pvc-p", "node-a", nil), codes.InvalidArgument},
		{"filesystem on many nodes", publishReq("pvc-p", "node-a", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, "")), codes.InvalidArgument},
		{"unknown node", publishReq("pvc-p", "node-zz", fsRWO), codes.NotFound},
		{"unknown volume", publishReq("pvc-none", "node-a", fsRWO), codes.NotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.d.ControllerPublishVolume(ctx, c.req)
			wantCode(t, err, c.code, "")
		})
	}
	if _, err := e.d.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: "pvc-none", NodeId: "node-zz"}); err != nil {
		t.Fatalf("unpublish of unknown volume and node: %v", err)
	}
}
