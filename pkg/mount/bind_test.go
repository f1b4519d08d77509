package mount

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	testingexec "k8s.io/utils/exec/testing"
)

// stagedVolume formats and mounts a fresh loop device, as NodeStage does.
func stagedVolume(t *testing.T, m *Linux) (dev, staging string) {
	t.Helper()
	dev, _ = loopDevice(t, 64<<20)
	staging = filepath.Join(t.TempDir(), "globalmount")
	unmountOnCleanup(t, staging)
	if _, err := m.FormatAndMount(ctxT(t), dev, staging, "ext4", nil, false); err != nil {
		t.Fatal(err)
	}
	return dev, staging
}

func TestBindMount(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	ctx := ctxT(t)
	m := NewLinux(Options{})
	dev, staging := stagedVolume(t, m)
	pods := t.TempDir()
	rw := filepath.Join(pods, "pod-a", "mount")
	ro := filepath.Join(pods, "pod-b", "mount")
	noexec := filepath.Join(pods, "pod-c", "mount")
	for _, p := range []string{rw, ro, noexec} {
		unmountOnCleanup(t, p)
	}

	if err := m.BindMount(ctx, staging, rw, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rw, "from-pod"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(staging, "from-pod")); err != nil || string(b) != "hello" {
		t.Fatalf("write through the bind not seen in staging: %q, %v", b, err)
	}
	if got, err := m.MountedDevice(rw); err != nil || got != dev {
		t.Fatalf("MountedDevice(bind) = %q, %v; want %s", got, err, dev)
	}

	if err := m.BindMount(ctx, staging, ro, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "nope"), nil, 0o644); !isEROFS(err) {
		t.Fatalf("write through a read-only bind = %v, want EROFS", err)
	}
	if b, err := os.ReadFile(filepath.Join(ro, "from-pod")); err != nil || string(b) != "hello" {
		t.Fatalf("read through the read-only bind: %q, %v", b, err)
	}
	// The read-only remount must not have turned the staging mount read-only.
	if err := os.WriteFile(filepath.Join(staging, "still-writable"), nil, 0o644); err != nil {
		t.Fatalf("staging became read-only: %v", err)
	}

	if err := m.BindMount(ctx, staging, noexec, false, []string{"noexec", "nosuid"}); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.mountAt(noexec); info == nil || !slices.Contains(info.MountOptions, "noexec") ||
		!slices.Contains(info.MountOptions, "nosuid") {
		t.Fatalf("flags not applied: %+v", info)
	}

	// Repeats are no-ops; a repeat with other options or source is refused.
	spy := newSpyExec(t)
	m2 := NewLinux(Options{Exec: spy})
	if err := m2.BindMount(ctx, staging, rw, false, nil); err != nil {
		t.Errorf("repeat rw bind: %v", err)
	}
	if err := m2.BindMount(ctx, staging, ro, true, nil); err != nil {
		t.Errorf("repeat ro bind: %v", err)
	}
	if ran := spy.ran("mount"); len(ran) > 0 {
		t.Errorf("repeats ran %q", ran)
	}
	if err := m2.BindMount(ctx, staging, ro, false, nil); !errors.Is(err, ErrTargetBusy) {
		t.Errorf("rw bind over a ro one = %v, want ErrTargetBusy", err)
	}
	if err := m2.BindMount(ctx, t.TempDir(), rw, false, nil); !errors.Is(err, ErrTargetBusy) {
		t.Errorf("bind of another source = %v, want ErrTargetBusy", err)
	}

	for _, p := range []string{rw, ro, noexec} {
		if err := m.Unmount(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Unmount(ctx, staging); err != nil {
		t.Fatal(err)
	}
}

// TestBindMountUndoesBindWhenRemountFails: a bind that could not be made
// read-only must not stay mounted read-write.
func TestBindMountUndoesBindWhenRemountFails(t *testing.T) {
	requireRoot(t)
	src, target := t.TempDir(), filepath.Join(t.TempDir(), "mount")
	unmountOnCleanup(t, target)
	spy := &recordingExec{t: t, real: newSpyExec(t).real, respond: func(argv []string) (string, error, bool) {
		if argv[0] == "mount" && strings.Contains(strings.Join(argv, " "), "remount") {
			return "mount: permission denied", testingexec.FakeExitError{Status: 32}, true
		}
		return "", nil, false
	}}
	m := NewLinux(Options{Exec: spy})
	if err := m.BindMount(ctxT(t), src, target, true, nil); err == nil {
		t.Fatal("BindMount succeeded although the read-only remount failed")
	}
	if ok, err := m.IsMountPoint(target); err != nil || ok {
		t.Fatalf("target still mounted (%v, %v): a writable bind was left behind", ok, err)
	}
}

func TestPublishBlock(t *testing.T) {
	requireRoot(t)
	ctx := ctxT(t)
	m := NewLinux(Options{})
	dev, _ := loopDevice(t, 32<<20)
	other, _ := loopDevice(t, 32<<20)
	target := filepath.Join(t.TempDir(), "volumeDevices", "publish", "pvc-1", "pod-uid")
	roTarget := filepath.Join(t.TempDir(), "ro", "pod-uid")
	unmountOnCleanup(t, target)
	unmountOnCleanup(t, roTarget)

	if err := m.PublishBlock(ctx, dev, target, false); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("raw block "), 400)
	writeDev(t, target, 1<<20, payload)
	if got := readDev(t, dev, 1<<20, len(payload)); !bytes.Equal(got, payload) {
		t.Fatal("bytes written through the published file are not on the device")
	}
	if got, err := m.MountedDevice(target); err != nil || got != dev {
		t.Fatalf("MountedDevice = %q, %v; want %s", got, err, dev)
	}
	if size, err := m.DeviceSize(target); err != nil || size != 32<<20 {
		t.Fatalf("DeviceSize(published file) = %d, %v", size, err)
	}

	spy := newSpyExec(t)
	m2 := NewLinux(Options{Exec: spy})
	if err := m2.PublishBlock(ctx, dev, target, false); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if ran := spy.ran("mount"); len(ran) > 0 {
		t.Fatalf("repeat ran %q", ran)
	}
	if err := m2.PublishBlock(ctx, other, target, false); !errors.Is(err, ErrTargetBusy) {
		t.Fatalf("publish of another device over it = %v, want ErrTargetBusy", err)
	}

	if err := m.PublishBlock(ctx, dev, roTarget, true); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.mountAt(roTarget); info == nil || !isReadOnly(info) {
		t.Fatalf("read-only publish is not a read-only mount: %+v", info)
	}
	if err := m2.PublishBlock(ctx, dev, roTarget, false); !errors.Is(err, ErrTargetBusy) {
		t.Fatalf("rw publish over a ro one = %v, want ErrTargetBusy", err)
	}

	for _, p := range []string{target, roTarget} {
		if err := m.Unmount(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind: %v", p, err)
		}
	}
	if err := m.PublishBlock(ctx, t.TempDir(), target, false); err == nil {
		t.Fatal("published a directory as a block device")
	}
}

func TestUnmount(t *testing.T) {
	ctx := ctxT(t)
	m := NewLinux(Options{Exec: newFakeExec(t, nil)}) // nothing below is mounted: nothing may run

	t.Run("missing target", func(t *testing.T) {
		if err := m.Unmount(ctx, filepath.Join(t.TempDir(), "gone", "mount")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unmounted directory is removed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "mount")
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := m.Unmount(ctx, dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("directory left: %v", err)
		}
	})
	t.Run("block target file is removed", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "pod-uid")
		if err := os.WriteFile(file, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := m.Unmount(ctx, file); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("file left: %v", err)
		}
	})
	t.Run("unmounted directory with files is kept", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := m.Unmount(ctx, dir); err == nil {
			t.Fatal("Unmount removed or accepted a non-empty directory")
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
			t.Fatalf("data deleted: %v", err)
		}
	})
}

func TestUnmountStackedAndRepeated(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	ctx := ctxT(t)
	m := NewLinux(Options{})
	_, staging := stagedVolume(t, m)
	target := filepath.Join(t.TempDir(), "mount")
	unmountOnCleanup(t, target)
	if err := m.BindMount(ctx, staging, target, false, nil); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "--bind", staging, target) // a second mount stacked on the first
	if err := m.Unmount(ctx, target); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.IsMountPoint(target); ok {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("target left: %v", err)
	}
	if err := m.Unmount(ctx, target); err != nil {
		t.Fatalf("second Unmount: %v", err)
	}
}

// TestUnmountFailureKeepsData: when umount fails the target and the data
// behind it stay, and the error says so.
func TestUnmountFailureKeepsData(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	ctx := ctxT(t)
	m := NewLinux(Options{})
	_, staging := stagedVolume(t, m)
	if err := os.WriteFile(filepath.Join(staging, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	failing := &recordingExec{t: t, respond: func(argv []string) (string, error, bool) {
		return "umount: target is busy.", testingexec.FakeExitError{Status: 32}, true
	}}
	if err := NewLinux(Options{Exec: failing}).Unmount(ctx, staging); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("Unmount = %v, want the busy error", err)
	}
	if b, err := os.ReadFile(filepath.Join(staging, "data")); err != nil || string(b) != "x" {
		t.Fatalf("data after a failed unmount: %q, %v", b, err)
	}
	if err := m.Unmount(ctx, staging); err != nil {
		t.Fatal(err)
	}
}
