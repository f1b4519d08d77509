package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// TestNodeDependencyFailures: when the initiator or the mount table fails, the operation fails with that
// error (so pkg/driver maps its code), and it stops there: nothing after the failed call is done.
func TestNodeDependencyFailures(t *testing.T) {
	ctx := context.Background()
	broken := errors.New("broken dependency")
	fsA := fakeMount{device: devA, fsType: "ext4"}
	staged := func(e *nodeEnv) {
		e.init.connected(nqnA, devA)
		e.mnt.mounted(stage, fsA)
	}
	published := func(e *nodeEnv) {
		staged(e)
		e.mnt.mounted(podA, fsA)
	}
	stageFS := func(e *nodeEnv) error { return e.n.Stage(ctx, fsStage(t, volA, "ext4", false)) }
	unstage := func(e *nodeEnv) error { return e.n.Unstage(ctx, volA, stage) }
	publish := func(singleWriter bool) func(e *nodeEnv) error {
		return func(e *nodeEnv) error { return e.n.Publish(ctx, fsPublish(volA, podB, false, singleWriter)) }
	}
	publishBlock := func(e *nodeEnv) error { return e.n.Publish(ctx, blockPublish(volA, podB, false, true)) }
	health := func(e *nodeEnv) error {
		_, err := e.n.Health(ctx, volA, stage, podA)
		return err
	}
	stats := func(e *nodeEnv) error {
		_, err := e.n.Stats(volA, podA)
		return err
	}
	cases := []struct {
		name   string
		setup  func(e *nodeEnv)
		failed string // the method that fails: "Device", "IsMountPoint", ...
		op     func(e *nodeEnv) error
		// never is a call that must not follow the failure.
		never string
	}{
		{"stage: asking whether connected", func(*nodeEnv) {}, "IsConnected", stageFS, "Connect"},
		{"stage: the mount", func(*nodeEnv) {}, "FormatAndMount", stageFS, "mkfs"},
		{"unstage: the device", staged, "Device", unstage, "Unmount"},
		{"unstage: the mount table", staged, "DeviceMountPoints", unstage, "Unmount"},
		{"unstage: the staging mount", staged, "IsMountPoint", unstage, "Disconnect"},
		{"unstage: the unmount", staged, "Unmount", unstage, "Disconnect"},
		{"unstage: the controller state", staged, "State", unstage, "Disconnect"},
		{"unstage: the disconnect", staged, "Disconnect", unstage, ""},
		{"publish: the staging mount", staged, "IsMountPoint", publish(false), "BindMount"},
		{"publish: the bind", staged, "BindMount", publish(false), ""},
		{"single-writer publish: the device", staged, "Device", publish(true), "BindMount"},
		{"single-writer publish: the mount table", staged, "DeviceMountPoints", publish(true), "BindMount"},
		{"block publish: the device", staged, "Device", publishBlock, "PublishBlock"},
		{"block publish: the mount table", staged, "DeviceMountPoints", publishBlock, "PublishBlock"},
		{"block publish: the bind", staged, "PublishBlock", publishBlock, ""},
		{"unpublish: the unmount", published, "Unmount", func(e *nodeEnv) error { return e.n.Unpublish(ctx, volA, podA) }, ""},
		{"health: the controller state", published, "State", health, ""},
		{"health: a mount point", published, "IsMountPoint", health, ""},
		{"health: the device", published, "Device", health, ""},
		{"health: a mounted device", published, "MountedDevice", health, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			e.init.calls, e.mnt.calls = nil, nil
			e.init.fail[tc.failed], e.mnt.fail[tc.failed] = broken, broken
			wantErr(t, tc.op(e), broken, "")
			if tc.never != "" && e.init.count(tc.never)+e.mnt.count(tc.never) > 0 {
				t.Fatalf("%s after the failure: %v %v", tc.never, e.init.calls, e.mnt.calls)
			}
		})
	}

	t.Run("stats of a mounted filesystem", func(t *testing.T) {
		e := newNodeEnv(t)
		path := e.path("mounted")
		if err := os.Mkdir(path, 0o750); err != nil {
			t.Fatal(err)
		}
		e.mnt.mounted(path, fsA)
		for _, m := range []string{"IsMountPoint", "FilesystemStats"} {
			e.mnt.fail = map[string]error{m: broken}
			_, err := e.n.Stats(volA, path)
			wantErr(t, err, broken, "")
		}
	})
	t.Run("stats of a path that cannot be read", func(t *testing.T) {
		e := newNodeEnv(t)
		if err := stats(e); !errors.Is(err, ErrNotOnNode) {
			t.Fatalf("stats of a missing path: %v, want ErrNotOnNode", err)
		}
		_, err := e.n.Stats(volA, string([]byte{0}))
		if err == nil || errors.Is(err, ErrNotOnNode) {
			t.Fatalf("stats of a path that cannot be stat'ed: %v, want that error", err)
		}
	})
}

// TestNodeUndoesItsConnectOnlyWhenSafe: a failed stage that made the connection disconnects it again,
// unless it cannot tell that nothing mounts the device; the stage's own error is the one returned.
func TestNodeUndoesItsConnectOnlyWhenSafe(t *testing.T) {
	ctx := context.Background()
	broken := errors.New("broken dependency")
	for _, tc := range []struct {
		name           string
		failed         string // in the undo
		wantDisconnect bool
	}{
		{"the device cannot be read", "Device", false},
		{"the mount table cannot be read", "DeviceMountPoints", false},
		{"the disconnect fails", "Disconnect", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			e.mnt.fs[devA] = "xfs" // the stage fails at the mount, after its connect
			// The stage itself reads the device before the mount: fail only the undo's calls.
			hookOnce(e, tc.failed, broken)
			err := e.n.Stage(ctx, fsStage(t, volA, "ext4", false))
			if err == nil || errors.Is(err, broken) {
				t.Fatalf("stage: %v, want the mount's error, not the undo's", err)
			}
			if got := e.init.count("Disconnect") > 0; got != tc.wantDisconnect {
				t.Fatalf("disconnected=%v, want %v: %v", got, tc.wantDisconnect, e.init.calls)
			}
			if live, _ := e.init.IsConnected(ctx, nqnA); !live {
				t.Fatal("the volume was disconnected although the undo could not check it")
			}
		})
	}
}

// hookOnce makes a method fail from the moment the mount fails, i.e. only in the undo of a stage.
func hookOnce(e *nodeEnv, method string, err error) {
	e.mnt.onFormat = func() { // under e.mnt.mu
		e.init.mu.Lock()
		e.init.fail[method] = err
		e.init.mu.Unlock()
		e.mnt.fail[method] = err
	}
}

// TestNodeStatsOfABlockVolume: a block device node at the path is a block volume, reported by its size.
func TestNodeStatsOfABlockVolume(t *testing.T) {
	testenv.RequireRoot(t, "creating a block device node")
	e := newNodeEnv(t)
	path := filepath.Join(e.dir, "block")
	if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatal(err)
	}
	e.mnt.sizes[path] = 1 << 30
	u, err := e.n.Stats(volA, path)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Block || u.SizeBytes != 1<<30 {
		t.Fatalf("usage %+v, want a block volume of 1 GiB", u)
	}
	e.mnt.fail["DeviceSize"] = errors.New("broken dependency")
	if _, err := e.n.Stats(volA, path); err == nil {
		t.Fatal("stats with a failing DeviceSize succeeded")
	}
}
