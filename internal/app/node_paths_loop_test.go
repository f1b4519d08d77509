package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// Hostile staging and target paths, on real mounts (issue 12, cases 5 and 6): each is refused with
// InvalidArgument before anything is connected or mounted, and the mount table stays as it was; a second
// staging path of a staged volume is refused with FailedPrecondition naming the first, and the volume then
// unpublishes and unstages cleanly (the teardown of loopEnv.create checks that, leftoverCheck the mounts).
func TestNodeRefusesHostilePathsOnLoopDevices(t *testing.T) {
	e := newLoopEnv(t)
	v := e.create(t, "pvc-loop-paths", nodeFSCap(rwo, "ext4"))

	// A directory holding a file: whatever is mounted over it would hide the file.
	victim := filepath.Join(e.dir, "victim")
	if err := os.MkdirAll(filepath.Join(e.dir, "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(victim, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "precious"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	relative, err := filepath.Rel(cwd, victim) // the driver runs in this process: its working directory is ours
	if err != nil {
		t.Fatal(err)
	}
	hostile := []struct{ name, path, mention string }{
		{"relative", relative, "not an absolute path"},
		{"dot-dot", filepath.Join(e.dir, "x") + "/../victim", "not a clean path"},
		{"trailing slash", victim + "/", "not a clean path"},
		{"symlink at the last element", link, "symbolic link"},
		{"/proc/self/cwd", "/proc/self/cwd", "/proc"},
		{"/proc/self/root/tmp", "/proc/self/root" + victim, "/proc"},
	}
	// Where a followed hostile path would mount: the test's directory and the driver's working directory.
	mountPoints := func() []string { return mountPointsUnder(t, e.dir, cwd) }
	check := func(t *testing.T, before []string) {
		t.Helper()
		if after := mountPoints(); !slices.Equal(before, after) {
			t.Fatalf("a refused request changed the mount table:\nbefore %q\nafter  %q", before, after)
		}
		if b, err := os.ReadFile(filepath.Join(victim, "precious")); err != nil || string(b) != "mine" {
			t.Fatalf("the victim directory's file is hidden or changed: %q, %v", b, err)
		}
	}

	t.Run("stage", func(t *testing.T) {
		for _, h := range hostile {
			t.Run(h.name, func(t *testing.T) {
				before := mountPoints()
				_, err := e.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: v.id,
					StagingTargetPath: h.path, VolumeCapability: v.cap, VolumeContext: v.context})
				wantNodeCode(t, err, codes.InvalidArgument, h.mention)
				check(t, before)
				if loops := v.attachedLoops(t); len(loops) != 0 {
					t.Fatalf("a refused stage attached the volume: %v", loops)
				}
				_, err = e.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: h.path})
				wantNodeCode(t, err, codes.InvalidArgument, h.mention)
				check(t, before)
			})
		}
	})

	v.stage(t)
	t.Run("publish", func(t *testing.T) {
		for _, h := range hostile {
			t.Run(h.name, func(t *testing.T) {
				before := mountPoints()
				_, err := e.node.NodePublishVolume(rpcCtx(t), &csi.NodePublishVolumeRequest{VolumeId: v.id,
					StagingTargetPath: v.staging, TargetPath: h.path, VolumeCapability: v.cap, VolumeContext: v.context})
				wantNodeCode(t, err, codes.InvalidArgument, h.mention)
				check(t, before)
				_, err = e.node.NodeUnpublishVolume(rpcCtx(t), &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: h.path})
				wantNodeCode(t, err, codes.InvalidArgument, h.mention)
				check(t, before)
			})
		}
		// The staging path of a publish obeys the same rule: a bind from a symlinked directory binds its target.
		before := mountPoints()
		_, err := e.node.NodePublishVolume(rpcCtx(t), &csi.NodePublishVolumeRequest{VolumeId: v.id,
			StagingTargetPath: link, TargetPath: v.target, VolumeCapability: v.cap, VolumeContext: v.context})
		wantNodeCode(t, err, codes.InvalidArgument, "symbolic link")
		check(t, before)
	})

	t.Run("second staging path", func(t *testing.T) {
		v.publish(t, false)
		second := filepath.Join(e.dir, "plugins", "other", "globalmount")
		if err := os.MkdirAll(second, 0o750); err != nil {
			t.Fatal(err)
		}
		before := mountPoints()
		_, err := e.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: v.id,
			StagingTargetPath: second, VolumeCapability: v.cap, VolumeContext: v.context})
		wantNodeCode(t, err, codes.FailedPrecondition, v.staging)
		check(t, before)
		if mounted, err := isMountPoint(second); err != nil || mounted {
			t.Fatalf("the second staging path is mounted (%v, %v)", mounted, err)
		}
		// A repeat of the stage at the first path, while published, is still fine.
		v.stage(t)
		if loops := v.attachedLoops(t); len(loops) != 1 {
			t.Fatalf("volume attached %d times after the refused stage: %v", len(loops), loops)
		}
		// And the volume leaves the node cleanly, from where it was staged.
		v.unpublish(t)
		v.unstage(t)
		if loops := v.attachedLoops(t); len(loops) != 0 {
			t.Fatalf("volume still attached after unstage: %v", loops)
		}
		if mounted, _ := isMountPoint(v.staging); mounted {
			t.Fatal("the staging path is still mounted after unstage")
		}
	})
}

// mountPointsUnder is the mount points at or under one of roots, read from the mount table directly (not
// through pkg/mount), sorted. Only these roots: other tests on the machine mount elsewhere meanwhile.
func mountPointsUnder(t *testing.T, roots ...string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) <= 4 {
			continue
		}
		p := kernelUnescape(f[4])
		for _, r := range roots {
			if p == r || strings.HasPrefix(p, r+"/") {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
