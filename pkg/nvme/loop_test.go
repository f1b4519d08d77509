package nvme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// resolverFor maps NQNs to files the way the simulator does.
func resolverFor(files map[string]string) BackingFileResolver {
	return func(_ context.Context, nqn string) (string, error) {
		p, ok := files[nqn]
		if !ok {
			return "", fmt.Errorf("no volume for %s", nqn)
		}
		return p, nil
	}
}

func sparseFile(t *testing.T, dir string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "disk.img")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if err := fh.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoopArgv checks the losetup command lines on a fake sysfs tree, so it
// runs without root.
func TestLoopArgv(t *testing.T) {
	f := newFakeSysfs(t)
	f.addOtherDisks()
	file := sparseFile(t, t.TempDir(), 1<<20)
	attach := func(name string) {
		f.write(filepath.Join(f.sys, "block", name, "loop", "backing_file"), file)
		f.write(filepath.Join(f.dev, name), "")
	}
	rec := newRecordingExec(t, func(argv []string) (string, error) {
		switch argv[1] {
		case "--find":
			attach("loop12")
			return filepath.Join(f.dev, "loop12") + "\n", nil
		case "-d":
			return "", os.RemoveAll(filepath.Join(f.sys, "block", filepath.Base(argv[2]), "loop"))
		}
		return "", nil
	})
	l := NewLoop(resolverFor(map[string]string{nqnA: file}), LoopOptions{SysfsRoot: f.sys, DevRoot: f.dev, Exec: rec})
	ctx := context.Background()

	if err := l.Connect(ctx, connectParams(nqnA)); err != nil {
		t.Fatal(err)
	}
	if err := l.Connect(ctx, connectParams(nqnA)); err != nil { // attached: nothing to run
		t.Fatal(err)
	}
	if err := l.Rescan(ctx, nqnA); err != nil {
		t.Fatal(err)
	}
	if err := l.Disconnect(ctx, nqnA); err != nil {
		t.Fatal(err)
	}
	if err := l.Disconnect(ctx, nqnA); err != nil { // detached: nothing to run
		t.Fatal(err)
	}
	rec.expectCalls(
		[]string{"losetup", "--find", "--show", "--direct-io=off", file},
		[]string{"losetup", "-c", filepath.Join(f.dev, "loop12")},
		[]string{"losetup", "-d", filepath.Join(f.dev, "loop12")},
	)
}

func TestLoopRefusesForeignNQN(t *testing.T) {
	f := newFakeSysfs(t)
	rec := newRecordingExec(t, nil)
	l := NewLoop(func(context.Context, string) (string, error) {
		t.Error("resolver called for a foreign NQN")
		return "", errors.New("unreachable")
	}, LoopOptions{SysfsRoot: f.sys, DevRoot: f.dev, Exec: rec})
	if err := l.Disconnect(context.Background(), foreignNQN); !errors.Is(err, ErrForeignNQN) {
		t.Errorf("Disconnect(foreign) = %v, want ErrForeignNQN", err)
	}
	if err := l.Connect(context.Background(), connectParams(foreignNQN)); !errors.Is(err, ErrForeignNQN) {
		t.Errorf("Connect(foreign) = %v, want ErrForeignNQN", err)
	}
	rec.expectCalls()
}

// requireLoopDevices stops the test (testenv.Missing) unless real loop devices can be attached.
func requireLoopDevices(t *testing.T) {
	t.Helper()
	testenv.RequireLoopDevices(t, "attaching loop devices")
	testenv.RequireTools(t, "apt-get install -y util-linux", "losetup")
}

// detachOnCleanup makes sure a failing test leaves no loop device behind.
func detachOnCleanup(t *testing.T, l *Loop, nqn string) {
	t.Cleanup(func() {
		if err := l.Disconnect(context.Background(), nqn); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func TestLoopLifecycleOnRealDevices(t *testing.T) {
	requireLoopDevices(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	file := sparseFile(t, t.TempDir(), 64<<20)
	l := NewLoop(resolverFor(map[string]string{nqnA: file}), LoopOptions{})
	detachOnCleanup(t, l, nqnA)

	if st, err := l.State(ctx, nqnA); err != nil || st != "" {
		t.Fatalf("State before connect = %q, %v", st, err)
	}
	if _, err := l.Device(ctx, nqnA); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Device before connect = %v, want ErrNoDevice", err)
	}
	if err := l.Connect(ctx, connectParams(nqnA)); err != nil {
		t.Fatal(err)
	}
	dev, err := l.WaitForDevice(ctx, nqnA)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Connect(ctx, connectParams(nqnA)); err != nil {
		t.Fatal(err)
	}
	if again, err := l.Device(ctx, nqnA); err != nil || again != dev {
		t.Fatalf("second Connect moved the device: %q, %v (first %q)", again, err, dev)
	}
	real, _ := filepath.EvalSymlinks(file)
	if loops, err := l.loopsOf(real); err != nil || len(loops) != 1 {
		t.Fatalf("file attached to %v (%v), want exactly one loop device", loops, err)
	}
	if ok, err := l.IsConnected(ctx, nqnA); err != nil || !ok {
		t.Fatalf("IsConnected = %v, %v", ok, err)
	}

	// The device really is the file: bytes written through one are read
	// back from the other.
	payload := []byte("rds-csi loop initiator")
	writeAt(t, dev, payload, 4096)
	if got := readAt(t, file, len(payload), 4096); !bytes.Equal(got, payload) {
		t.Fatalf("file holds %q at 4096, wrote %q through %s", got, payload, dev)
	}

	// Growth: the loop device keeps its old size until rescanned.
	if err := os.Truncate(file, 96<<20); err != nil {
		t.Fatal(err)
	}
	if err := l.Rescan(ctx, nqnA); err != nil {
		t.Fatal(err)
	}
	if got := sectors(t, dev) * 512; got != 96<<20 {
		t.Fatalf("after Rescan %s is %d bytes, want %d", dev, got, 96<<20)
	}

	if err := l.Disconnect(ctx, nqnA); err != nil {
		t.Fatal(err)
	}
	if st, err := l.State(ctx, nqnA); err != nil || st != "" {
		t.Fatalf("State after disconnect = %q, %v", st, err)
	}
	if err := l.Rescan(ctx, nqnA); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Rescan after disconnect = %v, want ErrNotConnected", err)
	}
}

// TestLoopDetachesAfterFileDeleted: a volume deleted while attached still
// has its loop device found and detached.
func TestLoopDetachesAfterFileDeleted(t *testing.T) {
	requireLoopDevices(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	file := sparseFile(t, t.TempDir(), 8<<20)
	l := NewLoop(resolverFor(map[string]string{nqnB: file}), LoopOptions{})
	detachOnCleanup(t, l, nqnB)
	if err := l.Connect(ctx, connectParams(nqnB)); err != nil {
		t.Fatal(err)
	}
	dev, err := l.WaitForDevice(ctx, nqnB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Device(ctx, nqnB); err != nil || got != dev {
		t.Fatalf("Device after the file was deleted = %q, %v; want %q", got, err, dev)
	}
	if err := l.Disconnect(ctx, nqnB); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file")); err == nil {
		t.Fatalf("%s still attached after Disconnect", dev)
	}
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
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

func readAt(t *testing.T, path string, n int, off int64) []byte {
	t.Helper()
	fh, err := os.Open(path)
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

func sectors(t *testing.T, dev string) int64 {
	t.Helper()
	v, err := readAttr(filepath.Join("/sys/block", filepath.Base(dev), "size"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if _, err := fmt.Sscan(strings.TrimSpace(v), &n); err != nil {
		t.Fatal(err)
	}
	return n
}
