package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rds-csi/rds-csi/internal/testenv"
	"github.com/rds-csi/rds-csi/pkg/driver"
)

// The node lifecycle on real parts: the driver runs in all mode with its embedded simulator, whose volume
// files the loop initiator attaches, so real mkfs, mount, bind mounts, raw block and xfs_growfs run, over
// gRPC as the CO drives them. Loop devices and mounts stand in for NVMe/TCP; the VM lane (make e2e-nvme)
// runs the same over the kernel initiator.

const loopGiB = int64(1) << 30

// loopEnv is a running driver in all mode and a client for it.
type loopEnv struct {
	dir  string
	ctrl csi.ControllerClient
	node csi.NodeClient
}

func newLoopEnv(t *testing.T) *loopEnv {
	t.Helper()
	testenv.RequireLoopDevices(t, "the loop-device lifecycle (loop devices and mount)")
	testenv.RequireTools(t, "apt-get install -y util-linux e2fsprogs xfsprogs",
		"losetup", "blkid", "mount", "umount", "mkfs.ext4", "mkfs.xfs", "xfs_growfs", "resize2fs")
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	leftoverCheck(t, dir)

	sock := filepath.Join(dir, "csi.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Mode: driver.ModeAll, Endpoint: "unix://" + sock, NodeID: "loop-node", Version: "test",
			RDSSimulatorDir: filepath.Join(dir, "rds"), BasePath: "pool/k8s"})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver stopped with: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("driver exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("driver did not serve within 30s")
		}
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &loopEnv{dir: dir, ctrl: csi.NewControllerClient(conn), node: csi.NewNodeClient(conn)}
}

// leftoverCheck fails the test if, once everything else has been cleaned up, a mount under dir or a loop
// device on a file under dir remains (unpublish and unstage must remove them), and removes them so that a
// failed run leaves the machine clean.
func leftoverCheck(t *testing.T, dir string) {
	t.Cleanup(func() {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Error(err)
			return
		}
		var mounts []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(kernelUnescape(f[4]), dir+"/") {
				mounts = append(mounts, kernelUnescape(f[4]))
			}
		}
		slices.Reverse(mounts) // the most recent first: stacked and nested mounts come off in order
		for _, m := range mounts {
			t.Errorf("left mounted: %s", m)
			if out, err := exec.Command("umount", m).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", m, err, out)
			}
		}
		files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), dir+"/") {
				dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f)))
				t.Errorf("left attached: %s (%s)", dev, strings.TrimSpace(string(b)))
				if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
					t.Errorf("losetup -d %s: %v: %s", dev, err, out)
				}
			}
		}
	})
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// loopVolume is one volume of the lifecycle tests with the paths the CO would give it.
type loopVolume struct {
	e                     *loopEnv
	id                    string
	cap                   *csi.VolumeCapability
	context               map[string]string
	staging, target, file string
}

// create makes a volume of 1 GiB and registers its teardown, which also runs if the test fails half-way.
func (e *loopEnv) create(t *testing.T, id string, c *csi.VolumeCapability) *loopVolume {
	t.Helper()
	return e.createFrom(t, id, loopGiB, c, nil)
}

// createFrom makes a volume of size bytes from source (nil for an empty one), as create does.
func (e *loopEnv) createFrom(t *testing.T, id string, size int64, c *csi.VolumeCapability, source *csi.VolumeContentSource) *loopVolume {
	t.Helper()
	resp, err := e.ctrl.CreateVolume(rpcCtx(t), &csi.CreateVolumeRequest{Name: id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeCapabilities: []*csi.VolumeCapability{c},
		VolumeContentSource: source})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetVolume().GetCapacityBytes(); got != size {
		t.Fatalf("CreateVolume %s: %d bytes, asked %d", id, got, size)
	}
	v := &loopVolume{e: e, id: id, cap: c, context: resp.GetVolume().GetVolumeContext(),
		staging: filepath.Join(e.dir, "plugins", id, "globalmount"), target: filepath.Join(e.dir, "pods", id, "mount")}
	if err := os.MkdirAll(v.staging, 0o750); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := e.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: v.target}); err != nil {
			t.Errorf("teardown: unpublish %s: %v", id, err)
		}
		if _, err := e.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: v.staging}); err != nil {
			t.Errorf("teardown: unstage %s: %v", id, err)
		}
		if _, err := e.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Errorf("teardown: delete %s: %v", id, err)
		}
	})
	return v
}

func (v *loopVolume) stage(t *testing.T) {
	t.Helper()
	if _, err := v.e.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging,
		VolumeCapability: v.cap, VolumeContext: v.context}); err != nil {
		t.Fatalf("stage %s: %v", v.id, err)
	}
}

func (v *loopVolume) publish(t *testing.T, readOnly bool) {
	t.Helper()
	if _, err := v.e.node.NodePublishVolume(rpcCtx(t), &csi.NodePublishVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging,
		TargetPath: v.target, VolumeCapability: v.cap, VolumeContext: v.context, Readonly: readOnly}); err != nil {
		t.Fatalf("publish %s: %v", v.id, err)
	}
}

func (v *loopVolume) unpublish(t *testing.T) {
	t.Helper()
	if _, err := v.e.node.NodeUnpublishVolume(rpcCtx(t), &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target}); err != nil {
		t.Fatalf("unpublish %s: %v", v.id, err)
	}
}

func (v *loopVolume) unstage(t *testing.T) {
	t.Helper()
	if _, err := v.e.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging}); err != nil {
		t.Fatalf("unstage %s: %v", v.id, err)
	}
}

func (v *loopVolume) stats(t *testing.T, path string) []*csi.VolumeUsage {
	t.Helper()
	resp, err := v.e.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: v.id, VolumePath: path})
	if err != nil {
		t.Fatalf("stats of %s: %v", v.id, err)
	}
	return resp.GetUsage()
}

// attachedLoops lists the loop devices on the volume's backing file.
func (v *loopVolume) attachedLoops(t *testing.T) []string {
	t.Helper()
	file := v.backingFile(t)
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == file {
			out = append(out, filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return out
}

// backingFile finds the simulator's file of the volume: disk.img in a directory named after the volume.
func (v *loopVolume) backingFile(t *testing.T) string {
	t.Helper()
	if v.file != "" {
		return v.file
	}
	_ = filepath.WalkDir(filepath.Join(v.e.dir, "rds"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == v.id {
			v.file = p
		}
		return nil
	})
	if v.file == "" {
		t.Fatalf("no backing file for %s under %s", v.id, v.e.dir)
	}
	return v.file
}

// filesystemUUID reads the UUID of the filesystem mounted at path: mkfs makes a new one every time, so
// an unchanged UUID proves the volume was not formatted again.
func filesystemUUID(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("blkid", "-p", "-s", "UUID", "-o", "value", "/dev/"+filepath.Base(link)).Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("blkid UUID of the device under %s: %v %q", path, err, out)
	}
	return string(bytes.TrimSpace(out))
}

func writeSynced(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func usage(u []*csi.VolumeUsage, unit csi.VolumeUsage_Unit) *csi.VolumeUsage {
	for _, x := range u {
		if x.GetUnit() == unit {
			return x
		}
	}
	return nil
}

func TestNodeLifecycleOnLoopDevices(t *testing.T) {
	e := newLoopEnv(t)

	t.Run("filesystem data survives unstage and stage, never formatted twice", func(t *testing.T) {
		v := e.create(t, "pvc-loop-fs", nodeFSCap(rwo, "ext4"))
		v.stage(t)
		v.publish(t, false)
		uuid := filesystemUUID(t, v.staging)
		data := randomBytes(t, 1<<20)
		writeSynced(t, filepath.Join(v.target, "data.bin"), data)

		// Kubelet restarts and stages again under the live mount: nothing changes.
		v.stage(t)
		if got := filesystemUUID(t, v.staging); got != uuid {
			t.Fatalf("a repeated stage re-formatted the volume: UUID %s, was %s", got, uuid)
		}
		// Unstage while published is refused, and leaves the volume as it was.
		_, err := e.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging})
		wantNodeCode(t, err, codes.FailedPrecondition, v.target)
		if len(v.attachedLoops(t)) != 1 {
			t.Fatalf("the refused unstage detached the volume: %v", v.attachedLoops(t))
		}

		st := v.stats(t, v.target)
		if b := usage(st, csi.VolumeUsage_BYTES); b == nil || b.GetTotal() < loopGiB*9/10 || b.GetUsed() < 1<<20 {
			t.Fatalf("byte usage %v: want a total near 1 GiB with the 1 MiB written", b)
		}
		if i := usage(st, csi.VolumeUsage_INODES); i == nil || i.GetTotal() == 0 || i.GetUsed() == 0 {
			t.Fatalf("inode usage %v", i)
		}
		health, err := e.node.NodeGetVolumeHealth(rpcCtx(t), &csi.NodeGetVolumeHealthRequest{VolumeId: v.id,
			StagingTargetPath: v.staging, VolumePublishPath: v.target})
		if err != nil || len(health.GetVolumeHealth().GetHealthStatuses()) != 0 {
			t.Fatalf("health of a healthy volume: %v, %v", health, err)
		}

		v.unpublish(t)
		v.unstage(t)
		if loops := v.attachedLoops(t); len(loops) != 0 {
			t.Fatalf("unstage left %v attached", loops)
		}
		_, err = e.node.NodeGetVolumeHealth(rpcCtx(t), &csi.NodeGetVolumeHealthRequest{VolumeId: v.id})
		wantNodeCode(t, err, codes.NotFound, "")

		v.stage(t)
		if got := filesystemUUID(t, v.staging); got != uuid {
			t.Fatalf("the second stage re-formatted the volume: UUID %s, was %s", got, uuid)
		}
		v.publish(t, true)
		got, err := os.ReadFile(filepath.Join(v.target, "data.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if sha(got) != sha(data) {
			t.Fatalf("data changed across unstage and stage: sha256 %s, wrote %s", sha(got), sha(data))
		}
		if err := os.WriteFile(filepath.Join(v.target, "other"), []byte("x"), 0o600); err == nil {
			t.Fatal("wrote through a read-only publish")
		}
	})

	t.Run("raw block publish writes and reads the device", func(t *testing.T) {
		v := e.create(t, "pvc-loop-block", nodeBlockCap(rwo))
		v.stage(t)
		if ok, _ := isMountPoint(v.staging); ok {
			t.Fatal("a block stage mounted something at the staging path")
		}
		v.publish(t, false)
		const offset = 10 << 20
		data := randomBytes(t, 64<<10)
		f, err := os.OpenFile(v.target, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, offset); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if b := usage(v.stats(t, v.target), csi.VolumeUsage_BYTES); b == nil || b.GetTotal() != loopGiB {
			t.Fatalf("block usage %v, want a total of %d", b, loopGiB)
		}

		v.unpublish(t)
		v.unstage(t)
		// The bytes are in the volume's file on the "RDS", where the device wrote them.
		onDisk := make([]byte, len(data))
		bf, err := os.Open(v.backingFile(t))
		if err != nil {
			t.Fatal(err)
		}
		defer bf.Close()
		if _, err := bf.ReadAt(onDisk, offset); err != nil || !bytes.Equal(onDisk, data) {
			t.Fatalf("the backing file does not hold what the pod wrote (err %v)", err)
		}

		v.stage(t)
		v.publish(t, false)
		back := make([]byte, len(data))
		f, err = os.Open(v.target)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.ReadAt(back, offset); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("read back other bytes through the published device (err %v)", err)
		}
	})

	for _, fsType := range []string{"xfs", "ext4"} {
		t.Run(fsType+" grows online", func(t *testing.T) {
			v := e.create(t, "pvc-loop-grow-"+fsType, nodeFSCap(rwo, fsType))
			v.stage(t)
			v.publish(t, false)
			data := randomBytes(t, 256<<10)
			writeSynced(t, filepath.Join(v.target, "before-growth"), data)
			before := usage(v.stats(t, v.target), csi.VolumeUsage_BYTES).GetTotal()

			exp, err := e.ctrl.ControllerExpandVolume(rpcCtx(t), &csi.ControllerExpandVolumeRequest{VolumeId: v.id,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * loopGiB}, VolumeCapability: v.cap})
			if err != nil {
				t.Fatal(err)
			}
			if !exp.GetNodeExpansionRequired() || exp.GetCapacityBytes() != 2*loopGiB {
				t.Fatalf("controller expand: %v", exp)
			}
			resp, err := e.node.NodeExpandVolume(rpcCtx(t), &csi.NodeExpandVolumeRequest{VolumeId: v.id, VolumePath: v.target,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * loopGiB}, VolumeCapability: v.cap, StagingTargetPath: v.staging})
			if fsType == "ext4" {
				testenv.SkipIfLacksCapability(t, err, testenv.CapSysResource, "CAP_SYS_RESOURCE (online ext4 growth)",
					"Permission denied to resize filesystem", "the VM lane (make e2e-nvme)")
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetCapacityBytes() != 2*loopGiB {
				t.Fatalf("node expand reports %d bytes", resp.GetCapacityBytes())
			}
			after := usage(v.stats(t, v.target), csi.VolumeUsage_BYTES).GetTotal()
			if after < before+loopGiB*9/10 {
				t.Fatalf("%s grew from %d to %d bytes, want about 1 GiB more", fsType, before, after)
			}
			got, err := os.ReadFile(filepath.Join(v.target, "before-growth"))
			if err != nil || sha(got) != sha(data) {
				t.Fatalf("data written before the growth changed (err %v)", err)
			}
		})
	}
}

// kernelUnescape undoes the octal escapes the kernel writes into mountinfo paths (space, tab, newline,
// backslash). The tests read the mount table on their own, independent of pkg/mount, which they test.
var kernelUnescape = strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace

// isMountPoint reads the mount table directly, independent of the code under test.
func isMountPoint(path string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && kernelUnescape(f[4]) == path {
			return true, nil
		}
	}
	return false, nil
}
