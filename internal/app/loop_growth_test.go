package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
)

// Growth at stage on real parts (see node_loop_test.go): a disk that grew while its filesystem kept the old
// size, which is what a restore or clone into a larger volume hands the node, without a NodeExpandVolume.

// statfsBytes is the size of the filesystem mounted at path, read with statfs(2) by the test itself.
func statfsBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Frsize
}

// mountID is the mount table's id of the mount at path ("" if none): a new mount gets a new one.
func mountID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && kernelUnescape(f[4]) == path {
			id = f[0]
		}
	}
	return id
}

func (e *loopEnv) expandOnController(t *testing.T, v *loopVolume, size int64) {
	t.Helper()
	resp, err := e.ctrl.ControllerExpandVolume(rpcCtx(t), &csi.ControllerExpandVolumeRequest{VolumeId: v.id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapability: v.cap})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetCapacityBytes() != size {
		t.Fatalf("controller expand of %s: %d bytes, asked %d", v.id, resp.GetCapacityBytes(), size)
	}
}

func TestNodeStageGrowsOnLoopDevices(t *testing.T) {
	e := newLoopEnv(t)

	t.Run("xfs whose disk grew while unstaged grows at the next stage", func(t *testing.T) {
		v := e.create(t, "pvc-loop-stage-grow", nodeFSCap(rwo, "xfs"))
		v.stage(t)
		v.publish(t, false)
		data := randomBytes(t, 1<<20)
		writeSynced(t, filepath.Join(v.target, "data.bin"), data)
		before := statfsBytes(t, v.staging)
		uuid := filesystemUUID(t, v.staging)
		v.unpublish(t)
		v.unstage(t)

		// The disk grows under the filesystem, and no NodeExpandVolume follows.
		e.expandOnController(t, v, 2*loopGiB)
		v.stage(t)
		after := statfsBytes(t, v.staging)
		if after < before+loopGiB*9/10 {
			t.Fatalf("xfs is %d bytes after the stage, was %d: want about 1 GiB more", after, before)
		}
		if got := filesystemUUID(t, v.staging); got != uuid {
			t.Fatalf("the stage made a new filesystem: UUID %s, was %s", got, uuid)
		}

		// A repeated stage has nothing left to do: same mount, same size.
		id := mountID(t, v.staging)
		v.stage(t)
		if got := mountID(t, v.staging); got != id || statfsBytes(t, v.staging) != after {
			t.Fatalf("the repeated stage changed the mount (id %s, was %s) or the size", got, id)
		}
		v.publish(t, false)
		if b := usage(v.stats(t, v.target), csi.VolumeUsage_BYTES); b.GetTotal() != after {
			t.Fatalf("NodeGetVolumeStats reports %d bytes, statfs %d", b.GetTotal(), after)
		}
		got, err := os.ReadFile(filepath.Join(v.target, "data.bin"))
		if err != nil || sha(got) != sha(data) {
			t.Fatalf("data changed across the growth (err %v)", err)
		}
	})

	t.Run("ext4 whose disk grew: the growth runs, or its failure fails the stage", func(t *testing.T) {
		v := e.create(t, "pvc-loop-stage-grow-ext4", nodeFSCap(rwo, "ext4"))
		v.stage(t)
		writeSynced(t, filepath.Join(v.staging, "data.bin"), []byte("kept"))
		before := statfsBytes(t, v.staging)
		v.unstage(t)
		e.expandOnController(t, v, 2*loopGiB)

		req := &csi.NodeStageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging, VolumeCapability: v.cap,
			VolumeContext: v.context}
		_, err := e.node.NodeStageVolume(rpcCtx(t), req)
		if err != nil && strings.Contains(err.Error(), "Permission denied") {
			// Online ext4 growth needs CAP_SYS_RESOURCE, which this host's sandbox lacks (the VM lane has it).
			// The stage must say so, keep the mount, and try again when retried.
			wantNodeCode(t, err, codes.Internal, "growing its filesystem")
			if ok, _ := isMountPoint(v.staging); !ok {
				t.Fatal("the failed growth left the staging path unmounted")
			}
			if len(v.attachedLoops(t)) != 1 {
				t.Fatalf("the failed growth detached the volume: %v", v.attachedLoops(t))
			}
			if _, err := e.node.NodeStageVolume(rpcCtx(t), req); err == nil || !strings.Contains(err.Error(), "Permission denied") {
				t.Fatalf("the retried stage did not try the growth again: %v", err)
			}
			if got := statfsBytes(t, v.staging); got != before {
				t.Fatalf("ext4 is %d bytes after the failed growth, was %d", got, before)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if after := statfsBytes(t, v.staging); after < before+loopGiB*9/10 {
			t.Fatalf("ext4 is %d bytes after the stage, was %d: want about 1 GiB more", after, before)
		}
		if b, err := os.ReadFile(filepath.Join(v.staging, "data.bin")); err != nil || string(b) != "kept" {
			t.Fatalf("data after the growth: %q, %v", b, err)
		}
	})

	t.Run("a snapshot restored into a larger volume stages with the larger filesystem", func(t *testing.T) {
		src := e.create(t, "pvc-loop-restore-src", nodeFSCap(rwo, "xfs"))
		src.stage(t)
		src.publish(t, false)
		data := randomBytes(t, 1<<20)
		writeSynced(t, filepath.Join(src.target, "data.bin"), data)
		srcBytes := statfsBytes(t, src.staging)

		snap, err := e.ctrl.CreateSnapshot(rpcCtx(t), &csi.CreateSnapshotRequest{Name: "snap-loop-restore", SourceVolumeId: src.id})
		if err != nil {
			t.Fatal(err)
		}
		snapID := snap.GetSnapshot().GetSnapshotId()
		t.Cleanup(func() {
			if _, err := e.ctrl.DeleteSnapshot(rpcCtx(t), &csi.DeleteSnapshotRequest{SnapshotId: snapID}); err != nil {
				t.Errorf("teardown: delete snapshot %s: %v", snapID, err)
			}
		})
		// A write after the snapshot must not show in the restore.
		writeSynced(t, filepath.Join(src.target, "after-snapshot"), []byte("later"))

		restored := e.createFrom(t, "pvc-loop-restore-large", 2*loopGiB, nodeFSCap(rwo, "xfs"),
			&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
				Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}})
		restored.stage(t)
		restored.publish(t, false)
		if got := statfsBytes(t, restored.staging); got < srcBytes+loopGiB*9/10 {
			t.Fatalf("the restored xfs is %d bytes, its source %d: want about 1 GiB more", got, srcBytes)
		}
		got, err := os.ReadFile(filepath.Join(restored.target, "data.bin"))
		if err != nil || sha(got) != sha(data) {
			t.Fatalf("the restored volume does not hold the snapshot's data (err %v)", err)
		}
		if _, err := os.Stat(filepath.Join(restored.target, "after-snapshot")); !os.IsNotExist(err) {
			t.Fatalf("a file written after the snapshot shows in the restore (%v)", err)
		}
		if got := statfsBytes(t, src.staging); got != srcBytes {
			t.Fatalf("the source changed size to %d bytes, was %d", got, srcBytes)
		}
	})
}
