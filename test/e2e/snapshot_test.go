//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestSnapshotRestoreAndClone takes a snapshot of a mounted, written volume, changes the data, and then
// stages a volume restored from the snapshot (it must hold the old data) and a clone of the volume (it must
// hold the new data), each independent of the source. The snapshot of a live filesystem is crash-consistent,
// so the restored ext4 replays its journal on mount: what was fsynced before the snapshot must be there.
// The restore asks for twice the source's size: Kubernetes sends no NodeExpandVolume for that, so NodeStage
// itself must grow the snapshot's ext4 online to fill the bigger disk.
func TestSnapshotRestoreAndClone(t *testing.T) {
	st := need(t)
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT, csi.ControllerServiceCapability_RPC_CLONE_VOLUME} {
		if !st.controllerCaps[c] {
			t.Fatalf("the controller does not advertise %s, which the driver always declares", c)
		}
	}
	src := st.createVolume(t, "pvc-e2e-snap-src", gib, mountCapability("ext4"), nil)
	src.attach(t)
	before, after := payload(6, 4<<20), payload(7, 4<<20)
	file := func(v *volume) string { return filepath.Join(v.target, "data.bin") }
	writeSynced(t, file(src), before)

	snap := st.createSnapshot(t, "snap-e2e-src", src.id)
	writeSynced(t, file(src), after)

	restored := st.createVolumeFrom(t, "pvc-e2e-snap-restored", 2*gib, mountCapability("ext4"), nil,
		&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap}}})
	restored.attach(t)
	checkFile(t, file(restored), before)
	if got, srcSize := statfsBytes(t, restored.target), statfsBytes(t, src.target); got < srcSize+gib*9/10 {
		t.Errorf("the restored ext4 has %d bytes, the 1 GiB source %d: NodeStage did not grow it to the 2 GiB disk", got, srcSize)
	}

	clone := st.createVolumeFrom(t, "pvc-e2e-clone", gib, mountCapability("ext4"), nil,
		&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.id}}})
	clone.attach(t)
	checkFile(t, file(clone), after)

	// Independence: a write to the clone shows nowhere else.
	writeSynced(t, filepath.Join(clone.target, "only-in-clone"), []byte("clone"))
	for _, v := range []*volume{src, restored} {
		if _, err := os.Stat(filepath.Join(v.target, "only-in-clone")); !os.IsNotExist(err) {
			t.Errorf("a file written to the clone shows in %s (%v)", v.id, err)
		}
	}
	checkFile(t, file(src), after)

	for _, v := range []*volume{clone, restored, src} {
		v.detach(t)
		v.delete(t)
	}
	st.deleteSnapshot(t, snap)
}

// attach is what kubelet does to start a pod with the volume: ControllerPublish (if asked for), stage,
// publish.
func (v *volume) attach(t *testing.T) {
	t.Helper()
	v.controllerPublish(t)
	v.stage(t)
	v.publish(t)
}

// createSnapshot snapshots a volume, waits for nothing (it must be ready at once: btrfs snapshots are
// instant), and deletes it when the test ends.
func (s *stack) createSnapshot(t *testing.T, name, source string) string {
	t.Helper()
	ctx, cancel := rpc()
	defer cancel()
	resp, err := s.controller.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: source})
	if err != nil {
		t.Fatalf("CreateSnapshot %s of %s: %v", name, source, err)
	}
	snap := resp.GetSnapshot()
	t.Cleanup(func() {
		ctx, cancel := rpc()
		defer cancel()
		if _, err := s.controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap.GetSnapshotId()}); err != nil {
			t.Errorf("cleanup: DeleteSnapshot %s: %v", snap.GetSnapshotId(), err)
		}
	})
	if !snap.GetReadyToUse() || snap.GetSourceVolumeId() != source {
		t.Fatalf("CreateSnapshot %s: %+v, want ready and from %s", name, snap, source)
	}
	t.Logf("snapshot %s of %s: %d bytes", snap.GetSnapshotId(), source, snap.GetSizeBytes())
	return snap.GetSnapshotId()
}

func (s *stack) deleteSnapshot(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := rpc()
	defer cancel()
	if _, err := s.controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id}); err != nil {
		t.Fatalf("DeleteSnapshot %s: %v", id, err)
	}
}
