//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/nvme"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
	// rpcTimeout bounds one CSI call; mkfs of a volume under TCG takes seconds, not minutes.
	rpcTimeout = 2 * time.Minute
)

func rpc() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), rpcTimeout)
}

func mountCapability(fsType string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func blockCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// volume is one CSI volume going through the calls kubelet and the sidecars make, with the paths kubelet
// would use.
type volume struct {
	st         *stack
	id         string
	nqn        string
	capacity   int64
	context    map[string]string
	capability *csi.VolumeCapability
	publishCtx map[string]string
	staging    string // a directory the CO creates
	target     string // the SP creates it; the CO makes its parent
	deleted    bool
}

// createVolume creates a blank volume and makes sure it is gone when the test ends, whatever happened.
func (s *stack) createVolume(t *testing.T, name string, size int64, c *csi.VolumeCapability, params map[string]string) *volume {
	t.Helper()
	return s.createVolumeFrom(t, name, size, c, params, nil)
}

// createVolumeFrom creates a volume with content: a snapshot's (restore) or another volume's (clone).
func (s *stack) createVolumeFrom(t *testing.T, name string, size int64, c *csi.VolumeCapability, params map[string]string,
	source *csi.VolumeContentSource) *volume {
	t.Helper()
	ctx, cancel := rpc()
	defer cancel()
	resp, err := s.controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{c}, Parameters: params, VolumeContentSource: source,
	})
	if err != nil {
		t.Fatalf("CreateVolume %s: %v", name, err)
	}
	v := &volume{st: s, id: resp.GetVolume().GetVolumeId(), capacity: resp.GetVolume().GetCapacityBytes(),
		context: resp.GetVolume().GetVolumeContext(), capability: c}
	v.nqn = v.context[nvme.VolumeContextNQN]
	if v.nqn == "" {
		v.nqn = nvme.NQNPrefix + v.id
	}
	base := filepath.Join(s.dir, "kubelet", v.id)
	v.staging, v.target = filepath.Join(base, "globalmount"), filepath.Join(base, "pod", "volume")
	for _, d := range []string{v.staging, filepath.Dir(v.target)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { v.remove(t) })
	if v.capacity < size {
		t.Fatalf("CreateVolume %s: capacity %d, asked for %d", name, v.capacity, size)
	}
	if !isExported(v.nqn) {
		t.Fatalf("CreateVolume %s: the target exports no subsystem %s", name, v.nqn)
	}
	t.Logf("created %s: %d bytes, NQN %s, context %v", v.id, v.capacity, v.nqn, v.context)
	return v
}

// controllerPublish is what external-attacher does, when the controller asks for it.
func (v *volume) controllerPublish(t *testing.T) {
	t.Helper()
	if !v.st.controllerCaps[csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME] {
		return
	}
	ctx, cancel := rpc()
	defer cancel()
	resp, err := v.st.controller.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: v.id, NodeId: nodeID, VolumeCapability: v.capability, VolumeContext: v.context})
	if err != nil {
		t.Fatalf("ControllerPublishVolume %s: %v", v.id, err)
	}
	v.publishCtx = resp.GetPublishContext()
}

func (v *volume) stage(t *testing.T) time.Duration {
	t.Helper()
	ctx, cancel := rpc()
	defer cancel()
	start := time.Now()
	_, err := v.st.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: v.id, PublishContext: v.publishCtx, StagingTargetPath: v.staging,
		VolumeCapability: v.capability, VolumeContext: v.context})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("NodeStageVolume %s: %v", v.id, err)
	}
	return took
}

func (v *volume) publish(t *testing.T) {
	t.Helper()
	ctx, cancel := rpc()
	defer cancel()
	if _, err := v.st.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: v.id, PublishContext: v.publishCtx, StagingTargetPath: v.staging, TargetPath: v.target,
		VolumeCapability: v.capability, VolumeContext: v.context}); err != nil {
		t.Fatalf("NodePublishVolume %s: %v", v.id, err)
	}
}

func (v *volume) unpublish() error {
	ctx, cancel := rpc()
	defer cancel()
	_, err := v.st.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target})
	return err
}

func (v *volume) unstage() error {
	ctx, cancel := rpc()
	defer cancel()
	_, err := v.st.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging})
	return err
}

// detach is what kubelet does when the pod goes and the volume leaves the node: unpublish, unstage, and
// (when the controller publishes) ControllerUnpublish. The node must have disconnected.
func (v *volume) detach(t *testing.T) {
	t.Helper()
	if err := v.unpublish(); err != nil {
		t.Fatalf("NodeUnpublishVolume %s: %v", v.id, err)
	}
	if _, mounted := mountAt(t, v.target); mounted {
		t.Fatalf("NodeUnpublishVolume %s left %s mounted", v.id, v.target)
	}
	if err := v.unstage(); err != nil {
		t.Fatalf("NodeUnstageVolume %s: %v", v.id, err)
	}
	if _, mounted := mountAt(t, v.staging); mounted {
		t.Fatalf("NodeUnstageVolume %s left %s mounted", v.id, v.staging)
	}
	// Disconnecting deletes the controller synchronously; the grace covers only sysfs catching up.
	waitForNoController(t, v.nqn, 3*time.Second)
	if err := v.controllerUnpublish(); err != nil {
		t.Fatalf("ControllerUnpublishVolume %s: %v", v.id, err)
	}
}

func (v *volume) controllerUnpublish() error {
	if !v.st.controllerCaps[csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME] {
		return nil
	}
	ctx, cancel := rpc()
	defer cancel()
	_, err := v.st.controller.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: v.id, NodeId: nodeID})
	return err
}

// delete removes the volume and checks the target no longer exports it and its file is gone.
func (v *volume) delete(t *testing.T) {
	t.Helper()
	file := exportedFile(t, v.nqn)
	ctx, cancel := rpc()
	defer cancel()
	if _, err := v.st.controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.id}); err != nil {
		t.Fatalf("DeleteVolume %s: %v", v.id, err)
	}
	v.deleted = true
	if isExported(v.nqn) {
		t.Errorf("DeleteVolume %s: nvmet still exports %s", v.id, v.nqn)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("DeleteVolume %s: its file %s is still on the pool (%v)", v.id, file, err)
	}
}

// remove is the safety net of a test that stopped half-way: every step is idempotent, errors are
// reported, and the next test starts clean.
func (v *volume) remove(t *testing.T) {
	if v.deleted {
		return
	}
	if err := v.unpublish(); err != nil {
		t.Errorf("cleanup: NodeUnpublishVolume %s: %v", v.id, err)
	}
	if err := v.unstage(); err != nil {
		t.Errorf("cleanup: NodeUnstageVolume %s: %v", v.id, err)
	}
	if err := v.controllerUnpublish(); err != nil {
		t.Errorf("cleanup: ControllerUnpublishVolume %s: %v", v.id, err)
	}
	ctx, cancel := rpc()
	defer cancel()
	if _, err := v.st.controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.id}); err != nil {
		t.Errorf("cleanup: DeleteVolume %s: %v", v.id, err)
	}
}

// health is what NodeGetVolumeHealth reports for the published volume, one "STATUS: reason" per problem.
func (v *volume) health(t *testing.T) []string {
	t.Helper()
	ctx, cancel := rpc()
	defer cancel()
	resp, err := v.st.node.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: v.id,
		VolumePublishPath: v.target, StagingTargetPath: v.staging})
	if err != nil {
		t.Fatalf("NodeGetVolumeHealth %s: %v", v.id, err)
	}
	var out []string
	for _, e := range resp.GetVolumeHealth().GetHealthStatuses() {
		out = append(out, e.GetStatus().String()+": "+e.GetReason())
	}
	return out
}

// stagedDevice checks the staging mount and returns the device mounted there, which must be the NQN's.
func (v *volume) stagedDevice(t *testing.T, fsType string) string {
	t.Helper()
	m, ok := mountAt(t, v.staging)
	if !ok {
		t.Fatalf("%s is not mounted at %s after NodeStageVolume", v.id, v.staging)
	}
	if m.fsType != fsType {
		t.Fatalf("%s staged as %s, want %s", v.id, m.fsType, fsType)
	}
	if got := nqnOfDevice(m.source); got != v.nqn {
		t.Fatalf("%s: staging mount is on %s, which belongs to %q, not %s", v.id, m.source, got, v.nqn)
	}
	return m.source
}
