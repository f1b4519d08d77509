package node

import (
	"context"
	"errors"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/mount"
)

// TestNodeStageGrowsFilesystem: a stage grows a filesystem that existed before and is smaller than its
// device (a restore or clone into a larger volume), and only that one.
func TestNodeStageGrowsFilesystem(t *testing.T) {
	ctx := context.Background()
	const small, large = int64(1) << 30, int64(2) << 30
	cases := []struct {
		name  string
		req   StageRequest
		setup func(e *nodeEnv)
		// wantChecks and wantGrowths count NeedsResize and ResizeFilesystem over two stages.
		wantChecks, wantGrowths int
	}{
		{"restored into a larger volume: grown once, checked again by the repeat", fsStage(t, volA, "xfs", false), func(e *nodeEnv) {
			e.mnt.fs[devA], e.mnt.sizes[devA], e.mnt.fsSizes[devA] = "xfs", large, small
		}, 2, 1},
		{"a filesystem that fills its device is left alone", fsStage(t, volA, "ext4", false), func(e *nodeEnv) {
			e.mnt.fs[devA], e.mnt.sizes[devA], e.mnt.fsSizes[devA] = "ext4", small, small
		}, 2, 0},
		{"a fresh format is not checked", fsStage(t, volA, "ext4", false), func(e *nodeEnv) {
			e.mnt.sizes[devA] = small
		}, 1, 0}, // the repeat finds it mounted: no format then, so it checks
		{"a read-only stage is not grown", fsStage(t, volA, "ext4", true), func(e *nodeEnv) {
			e.mnt.fs[devA], e.mnt.sizes[devA], e.mnt.fsSizes[devA] = "ext4", large, small
		}, 0, 0},
		{"a block volume has no filesystem to grow", blockStage(t, volA), func(e *nodeEnv) {
			e.mnt.sizes[devA] = large
		}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			for range 2 {
				if err := e.n.Stage(ctx, tc.req); err != nil {
					t.Fatal(err)
				}
			}
			if n := e.mnt.count("NeedsResize " + devA + " " + stage); n != tc.wantChecks {
				t.Errorf("%d size checks, want %d: %v", n, tc.wantChecks, e.mnt.calls)
			}
			if n := e.mnt.count("ResizeFilesystem " + devA + " " + stage); n != tc.wantGrowths {
				t.Errorf("%d growths, want %d: %v", n, tc.wantGrowths, e.mnt.calls)
			}
			if tc.wantGrowths > 0 && e.mnt.fsSizes[devA] != e.mnt.sizes[devA] {
				t.Errorf("filesystem is %d bytes after the stage, its device %d", e.mnt.fsSizes[devA], e.mnt.sizes[devA])
			}
		})
	}
}

// TestNodeStageGrowthFailure: a growth that fails (resize2fs without CAP_SYS_RESOURCE answers EPERM) or a
// size check that fails is an error of the stage, never skipped; the mount and the connection stay, and the
// next stage tries again.
func TestNodeStageGrowthFailure(t *testing.T) {
	ctx := context.Background()
	eperm := &mount.CommandError{Argv: []string{"resize2fs", devA}, Output: "resize2fs: Permission denied to resize filesystem",
		Err: errors.New("exit status 1")}
	cases := []struct {
		name     string
		fail     func(m *fakeMounter, err error)
		mentions string
	}{
		{"the growth fails", func(m *fakeMounter, err error) { m.resizeErr = err }, "Permission denied to resize filesystem"},
		{"the size check fails", func(m *fakeMounter, err error) { m.needsResizeErr = err }, "comparing its filesystem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			e.mnt.fs[devA], e.mnt.sizes[devA], e.mnt.fsSizes[devA] = "ext4", 2<<30, 1<<30
			tc.fail(e.mnt, eperm)
			req := fsStage(t, volA, "ext4", false)
			for range 2 {
				wantErr(t, e.n.Stage(ctx, req), eperm, tc.mentions)
				if mounted, _ := e.mnt.IsMountPoint(stage); !mounted {
					t.Fatal("the failed growth unmounted the staging path")
				}
				if e.init.count("Disconnect") > 0 {
					t.Fatalf("the failed growth disconnected the volume: %v", e.init.calls)
				}
			}
			if n := e.mnt.count("NeedsResize"); n != 2 {
				t.Fatalf("the repeated stage did not check again: %v", e.mnt.calls)
			}

			// Once the growth can succeed, the next stage does it.
			e.mnt.resizeErr, e.mnt.needsResizeErr = nil, nil
			if err := e.n.Stage(ctx, req); err != nil {
				t.Fatal(err)
			}
			if e.mnt.fsSizes[devA] != 2<<30 {
				t.Fatalf("filesystem is %d bytes after the retry, want %d", e.mnt.fsSizes[devA], 2<<30)
			}
			if n := e.init.count("Connect"); n != 1 {
				t.Fatalf("%d connects, want 1: %v", n, e.init.calls)
			}
		})
	}
}
