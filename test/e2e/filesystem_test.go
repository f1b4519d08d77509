//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestFilesystemVolume is a filesystem volume's life on a node: formatted on first stage, data that
// survives a full detach (which must disconnect) and a second stage that must not format again, then
// online growth through the controller and the node.
func TestFilesystemVolume(t *testing.T) {
	st := need(t)
	for _, fsType := range []string{"ext4", "xfs"} {
		t.Run(fsType, func(t *testing.T) { filesystemLifecycle(t, st, fsType) })
	}
}

func filesystemLifecycle(t *testing.T, st *stack, fsType string) {
	v := st.createVolume(t, "pvc-e2e-fs-"+fsType, gib, mountCapability(fsType), nil)
	v.controllerPublish(t)
	took := v.stage(t)
	dev := v.stagedDevice(t, fsType)
	uuid := fsUUID(t, dev, fsType)
	t.Logf("NodeStageVolume took %.2fs: %s on %s, %s UUID %s", took.Seconds(), v.nqn, dev, fsType, uuid)
	v.publish(t)
	staged, _ := mountAt(t, v.staging)
	if m, ok := mountAt(t, v.target); !ok || m.majorMinor != staged.majorMinor {
		t.Fatalf("NodePublishVolume: %s is not the staged filesystem (%+v, staged %+v)", v.target, m, staged)
	}

	data := payload(1, 8<<20)
	file := filepath.Join(v.target, "data.bin")
	writeSynced(t, file, data)

	v.detach(t)
	// The filesystem is on the target's file, not in some cache of the initiator.
	if got := fsUUID(t, exportedFile(t, v.nqn), fsType); got != uuid {
		t.Fatalf("the exported file holds filesystem %s, want %s", got, uuid)
	}

	v.controllerPublish(t)
	v.stage(t)
	dev = v.stagedDevice(t, fsType)
	if again := fsUUID(t, dev, fsType); again != uuid {
		t.Fatalf("second NodeStageVolume made a new filesystem: UUID %s, was %s", again, uuid)
	}
	v.publish(t)
	dropCaches(t)
	checkFile(t, file, data)

	grow(t, v, dev, 2*gib)
	checkFile(t, file, data)

	v.detach(t)
	v.delete(t)
}

// grow expands the volume online the way external-resizer and kubelet do, and checks the device and the
// mounted filesystem really grew.
func grow(t *testing.T, v *volume, dev string, size int64) {
	t.Helper()
	before := statfsBytes(t, v.target)
	ctx, cancel := rpc()
	defer cancel()
	resp, err := v.st.controller.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId: v.id, CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: v.capability})
	if err != nil {
		t.Fatalf("ControllerExpandVolume %s to %d: %v", v.id, size, err)
	}
	if resp.GetCapacityBytes() < size {
		t.Fatalf("ControllerExpandVolume %s: capacity %d, asked for %d", v.id, resp.GetCapacityBytes(), size)
	}
	if resp.GetNodeExpansionRequired() {
		nodeExpand(ctx, t, v, size)
	}
	if got := deviceBytes(t, dev); got != resp.GetCapacityBytes() {
		t.Fatalf("after expansion %s is %d bytes, the controller says %d", dev, got, resp.GetCapacityBytes())
	}
	after := statfsBytes(t, v.target)
	// The filesystem must have gained most of the added space (metadata takes a little).
	if added := size - v.capacity; after-before < added*9/10 {
		t.Fatalf("filesystem at %s grew from %d to %d bytes, want about %d more", v.target, before, after, added)
	}
	t.Logf("grew %s online: device %d bytes, filesystem %d -> %d bytes", v.id, deviceBytes(t, dev), before, after)
	v.capacity = resp.GetCapacityBytes()
}

func nodeExpand(ctx context.Context, t *testing.T, v *volume, size int64) {
	t.Helper()
	if !v.st.nodeCaps[csi.NodeServiceCapability_RPC_EXPAND_VOLUME] {
		t.Fatalf("the controller wants node expansion, but the node does not advertise EXPAND_VOLUME")
	}
	resp, err := v.st.node.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: v.id, VolumePath: v.target,
		StagingTargetPath: v.staging, CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: v.capability})
	if err != nil {
		t.Fatalf("NodeExpandVolume %s: %v", v.id, err)
	}
	if resp.GetCapacityBytes() != 0 && resp.GetCapacityBytes() < size {
		t.Fatalf("NodeExpandVolume %s: capacity %d, asked for %d", v.id, resp.GetCapacityBytes(), size)
	}
}
