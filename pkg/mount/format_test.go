package mount

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"
)

func TestFormatAndMountBlankDevice(t *testing.T) {
	for _, tc := range []struct{ name, fsType, want string }{
		{name: "no type asked gives ext4", fsType: "", want: "ext4"},
		{name: "ext4", fsType: "ext4", want: "ext4"},
		{name: "xfs", fsType: "xfs", want: "xfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireRoot(t, "mkfs."+tc.want)
			ctx := ctxT(t)
			dev, _ := loopDevice(t, 512<<20) // mkfs.xfs wants at least 300 MiB
			target := filepath.Join(t.TempDir(), "staging", "globalmount")
			unmountOnCleanup(t, target)
			spy := newSpyExec(t)
			m := NewLinux(Options{Exec: spy})

			if formatted, err := m.FormatAndMount(ctx, dev, target, tc.fsType, []string{"noatime"}, false); err != nil || !formatted {
				t.Fatalf("FormatAndMount(blank) = formatted %v, %v; want a format", formatted, err)
			}
			if got := blkidType(t, dev); got != tc.want {
				t.Fatalf("blkid sees %q on %s, want %q", got, dev, tc.want)
			}
			info, err := m.mountAt(target)
			if err != nil || info == nil || info.FsType != tc.want || !slices.Contains(info.MountOptions, "noatime") {
				t.Fatalf("mount at %s: %+v, %v; want %s with noatime", target, info, err, tc.want)
			}
			if err := os.WriteFile(filepath.Join(target, "data"), []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}

			// A repeated stage (kubelet restarted) must not probe, check or
			// format the mounted device.
			spy.reset()
			if formatted, err := m.FormatAndMount(ctx, dev, target, tc.fsType, []string{"noatime"}, false); err != nil || formatted {
				t.Fatalf("repeated FormatAndMount = formatted %v, %v", formatted, err)
			}
			for _, tool := range []string{"blkid", "mkfs", "fsck", "e2fsck", "xfs_repair", "mount"} {
				if ran := spy.ran(tool); len(ran) > 0 {
					t.Errorf("repeated stage ran %q", ran)
				}
			}
			// The same target asked with other options is not silently reused.
			if _, err := m.FormatAndMount(ctx, dev, target, tc.fsType, nil, true); !errors.Is(err, ErrTargetBusy) {
				t.Errorf("re-stage read-only over a read-write mount = %v, want ErrTargetBusy", err)
			}
			other := map[string]string{"ext4": "xfs", "xfs": "ext4"}[tc.want]
			if _, err := m.FormatAndMount(ctx, dev, target, other, nil, false); !errors.Is(err, ErrTargetBusy) {
				t.Errorf("re-stage as %s over %s = %v, want ErrTargetBusy", other, tc.want, err)
			}

			if err := m.Unmount(ctx, target); err != nil {
				t.Fatal(err)
			}
			// Stage again after unstage: the filesystem and data are kept.
			spy.reset()
			if formatted, err := m.FormatAndMount(ctx, dev, target, tc.fsType, nil, false); err != nil || formatted {
				t.Fatalf("FormatAndMount after unstage = formatted %v, %v", formatted, err)
			}
			if ran := spy.ran("mkfs"); len(ran) > 0 {
				t.Errorf("second stage formatted again: %q", ran)
			}
			if b, err := os.ReadFile(filepath.Join(target, "data")); err != nil || string(b) != "keep me" {
				t.Fatalf("data after re-stage: %q, %v", b, err)
			}
			if err := m.Unmount(ctx, target); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFormatAndMountNeverReformats writes something on the device first and
// asks for another filesystem: the answer is an error, with the data intact.
func TestFormatAndMountNeverReformats(t *testing.T) {
	requireRoot(t, "mkfs.ext4", "mkfs.xfs")
	tests := []struct {
		name    string
		prepare func(t *testing.T, dev string)
		fsType  string
	}{
		{
			name:    "ext4 asked as xfs",
			prepare: func(t *testing.T, dev string) { run(t, "mkfs.ext4", "-q", dev) },
			fsType:  "xfs",
		},
		{
			name:    "xfs asked as ext4",
			prepare: func(t *testing.T, dev string) { run(t, "mkfs.xfs", "-q", dev) },
			fsType:  "ext4",
		},
		{
			name:    "swap asked as ext4",
			prepare: func(t *testing.T, dev string) { run(t, "mkswap", dev) },
			fsType:  "ext4",
		},
		{
			name:    "MBR partition table",
			prepare: func(t *testing.T, dev string) { writeDev(t, dev, 0, dosPartitionTable()) },
			fsType:  "ext4",
		},
		{
			name: "data no probe recognises",
			prepare: func(t *testing.T, dev string) {
				writeDev(t, dev, 64<<10, bytes.Repeat([]byte("application data "), 100))
			},
			fsType: "ext4",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "swap asked as ext4" {
				requireRoot(t, "mkswap")
			}
			ctx := ctxT(t)
			dev, _ := loopDevice(t, 512<<20)
			tc.prepare(t, dev)
			before := readDev(t, dev, 0, 1<<20)
			typeBefore := blkidType(t, dev)
			target := filepath.Join(t.TempDir(), "globalmount")
			unmountOnCleanup(t, target)
			spy := newSpyExec(t)
			m := NewLinux(Options{Exec: spy})

			_, err := m.FormatAndMount(ctx, dev, target, tc.fsType, nil, false)
			if !errors.Is(err, ErrNotBlank) {
				t.Fatalf("FormatAndMount = %v, want ErrNotBlank", err)
			}
			if ran := spy.ran("mkfs"); len(ran) > 0 {
				t.Fatalf("formatted a device that held data: %q", ran)
			}
			if ok, _ := m.IsMountPoint(target); ok {
				t.Fatal("target mounted despite the error")
			}
			if !bytes.Equal(readDev(t, dev, 0, 1<<20), before) || blkidType(t, dev) != typeBefore {
				t.Fatal("device contents changed")
			}
		})
	}
}

// TestFormatAndMountKeepsFiles: a formatted volume with files is mounted as
// it is, its files intact.
func TestFormatAndMountKeepsFiles(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	ctx := ctxT(t)
	dev, _ := loopDevice(t, 256<<20)
	run(t, "mkfs.ext4", "-q", dev)
	scratch := filepath.Join(t.TempDir(), "scratch")
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", dev, scratch)
	err := os.WriteFile(filepath.Join(scratch, "precious"), []byte("do not lose"), 0o644)
	run(t, "umount", scratch)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "globalmount")
	unmountOnCleanup(t, target)
	spy := newSpyExec(t)
	m := NewLinux(Options{Exec: spy})
	if formatted, err := m.FormatAndMount(ctx, dev, target, "ext4", nil, true); err != nil || formatted {
		t.Fatalf("FormatAndMount = formatted %v, %v", formatted, err)
	}
	if ran := spy.ran("mkfs"); len(ran) > 0 {
		t.Fatalf("formatted: %q", ran)
	}
	if b, err := os.ReadFile(filepath.Join(target, "precious")); err != nil || string(b) != "do not lose" {
		t.Fatalf("file after mount: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, os.ErrPermission) && !isEROFS(err) {
		t.Fatalf("write on a read-only stage = %v, want EROFS", err)
	}
	if err := m.Unmount(ctx, target); err != nil {
		t.Fatal(err)
	}
}

// TestFormatAndMountUncertainProbe: every answer other than a clean "nothing
// found" on a readable, zeroed block device is an error and never formats.
func TestFormatAndMountUncertainProbe(t *testing.T) {
	regular := filepath.Join(t.TempDir(), "regular-file")
	if err := os.WriteFile(regular, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nvme9n1")
	tests := []struct {
		name    string
		device  string
		out     string
		err     error
		wantErr error
	}{
		{name: "blkid exit 1", device: missing, err: testingexec.FakeExitError{Status: 1}, wantErr: ErrUncertain},
		{name: "blkid usage error (4)", device: missing, err: testingexec.FakeExitError{Status: 4}, wantErr: ErrUncertain},
		{name: "blkid ambivalent (8)", device: missing, err: testingexec.FakeExitError{Status: 8}, wantErr: ErrUncertain},
		{name: "blkid missing", device: missing, err: utilexec.ErrExecutableNotFound, wantErr: ErrUncertain},
		{name: "blkid timed out", device: missing, err: context.DeadlineExceeded, wantErr: ErrUncertain},
		{name: "exit 2 with an I/O error message", device: missing, out: "error: /dev/nvme9n1: Input/output error\n",
			err: testingexec.FakeExitError{Status: 2}, wantErr: ErrUncertain},
		// blkid exits 2 when it cannot even open the device.
		{name: "exit 2 for a missing device", device: missing, err: testingexec.FakeExitError{Status: 2}, wantErr: ErrUncertain},
		{name: "exit 2 for a regular file", device: regular, err: testingexec.FakeExitError{Status: 2}, wantErr: ErrUncertain},
		{name: "partition table", device: missing, out: "DEVNAME=/dev/nvme9n1\nPTTYPE=gpt\n", wantErr: ErrNotBlank},
		{name: "signature of no type", device: missing, out: "DEVNAME=/dev/nvme9n1\n", wantErr: ErrNotBlank},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeExec(t, func(argv []string) (string, error, bool) {
				if argv[0] == "blkid" {
					return tc.out, tc.err, true
				}
				t.Errorf("ran %q after an uncertain probe", argv)
				return "", errors.New("must not run"), true
			})
			m := NewLinux(Options{Exec: fake})
			_, err := m.FormatAndMount(context.Background(), tc.device, filepath.Join(t.TempDir(), "target"), "ext4", nil, false)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("FormatAndMount = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestFormatAndMountBlankReadOnly: a blank volume staged read-only has
// nothing to mount; formatting it would write to a read-only volume.
func TestFormatAndMountBlankReadOnly(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	dev, _ := loopDevice(t, 64<<20)
	spy := newSpyExec(t)
	m := NewLinux(Options{Exec: spy})
	_, err := m.FormatAndMount(ctxT(t), dev, filepath.Join(t.TempDir(), "t"), "ext4", nil, true)
	if !errors.Is(err, ErrUncertain) || len(spy.ran("mkfs")) > 0 {
		t.Fatalf("FormatAndMount(blank, ro) = %v, mkfs runs %q", err, spy.ran("mkfs"))
	}
}

func TestFormatAndMountTargetHoldsAnotherDevice(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	ctx := ctxT(t)
	devA, _ := loopDevice(t, 64<<20)
	devB, _ := loopDevice(t, 64<<20)
	target := filepath.Join(t.TempDir(), "globalmount")
	unmountOnCleanup(t, target)
	m := NewLinux(Options{})
	if _, err := m.FormatAndMount(ctx, devA, target, "ext4", nil, false); err != nil {
		t.Fatal(err)
	}
	spy := newSpyExec(t)
	m = NewLinux(Options{Exec: spy})
	if _, err := m.FormatAndMount(ctx, devB, target, "ext4", nil, false); !errors.Is(err, ErrTargetBusy) {
		t.Fatalf("FormatAndMount(B over A) = %v, want ErrTargetBusy", err)
	}
	if ran := spy.ran("blkid"); len(ran) > 0 {
		t.Errorf("probed B although the target is taken: %q", ran)
	}
	if got, err := m.MountedDevice(target); err != nil || got != devA {
		t.Fatalf("target now holds %q, %v; want %s", got, err, devA)
	}
}

func TestFormatAndMountRefusesBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		fsType string
		flags  []string
	}{
		{name: "btrfs", fsType: "btrfs"},
		{name: "ext3", fsType: "ext3"},
		{name: "bind flag", fsType: "ext4", flags: []string{"noatime", "bind"}},
		{name: "remount flag", fsType: "ext4", flags: []string{"remount"}},
		{name: "loop flag", fsType: "ext4", flags: []string{"loop=/dev/loop3"}},
		{name: "propagation flag", fsType: "ext4", flags: []string{"make-shared"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewLinux(Options{Exec: newFakeExec(t, nil)})
			_, err := m.FormatAndMount(context.Background(), "/dev/null", filepath.Join(t.TempDir(), "t"), tc.fsType, tc.flags, false)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("FormatAndMount = %v, want ErrUnsupported", err)
			}
		})
	}
}

// dosPartitionTable is an MBR with one Linux partition, as fdisk writes it.
func dosPartitionTable() []byte {
	mbr := make([]byte, 512)
	entry := mbr[446:462]
	entry[4] = 0x83                              // Linux
	copy(entry[8:12], []byte{0x00, 0x08, 0, 0})  // first LBA 2048
	copy(entry[12:16], []byte{0x00, 0x20, 0, 0}) // 8192 sectors
	mbr[510], mbr[511] = 0x55, 0xAA
	return mbr
}

func writeDev(t *testing.T, dev string, off int64, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
}

func readDev(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	fh, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, n)
	if _, err := fh.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
