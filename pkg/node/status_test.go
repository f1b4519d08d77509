package node

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

func TestNodeGetVolumeStats(t *testing.T) {
	e := newNodeEnv(t)
	mounted, bare := e.path("mounted"), e.path("bare")
	for _, p := range []string{mounted, bare} {
		if err := os.Mkdir(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	e.mnt.mounted(mounted, fakeMount{device: devA, fsType: "ext4"})

	for _, tc := range []struct{ name, path string }{
		{"a path that does not exist", e.path("missing")},
		{"a relative path that does not exist", "some/path"},
		{"a directory with nothing mounted", bare},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.n.Stats(volA, tc.path)
			wantErr(t, err, ErrNotOnNode, "")
		})
	}
	t.Run("a mounted filesystem", func(t *testing.T) {
		got, err := e.n.Stats(volA, mounted)
		if err != nil {
			t.Fatal(err)
		}
		want := Usage{FS: mount.FilesystemStats{TotalBytes: 1000, UsedBytes: 300, AvailableBytes: 600,
			TotalInodes: 64, UsedInodes: 11, FreeInodes: 53}}
		if got != want {
			t.Fatalf("usage %+v, want %+v", got, want)
		}
	})
	t.Run("a character device is not a block volume", func(t *testing.T) {
		// /dev/null is a character device: only a block device node counts as a block volume.
		if _, err := e.n.Stats(volA, "/dev/null"); !errors.Is(err, ErrNotOnNode) {
			t.Fatalf("stats of a character device: %v, want ErrNotOnNode", err)
		}
	})
}

func TestNodeGetVolumeHealth(t *testing.T) {
	ctx := context.Background()
	fsOn := func(dev string) fakeMount { return fakeMount{device: dev, fsType: "ext4"} }
	cases := []struct {
		name    string
		setup   func(e *nodeEnv)
		paths   [2]string // staging, publish
		want    error
		reasons []string
		// mentions is a text every message taken together must hold.
		mentions string
	}{
		{"healthy and published", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsOn(devA))
			e.mnt.mounted(podA, fsOn(devA))
		}, [2]string{stage, podA}, nil, nil, ""},
		{"healthy, asked without paths", func(e *nodeEnv) { e.init.connected(nqnA, devA) }, [2]string{}, nil, nil, ""},
		{"not on this node", func(e *nodeEnv) {}, [2]string{stage, podA}, ErrNotOnNode, nil, ""},
		{"the controller is reconnecting", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.init.state[nqnA] = nvme.StateConnecting
			e.mnt.mounted(stage, fsOn(devA))
		}, [2]string{stage, ""}, nil, []string{ReasonNotLive}, `"connecting"`},
		{"the controller was deleted under the mount", func(e *nodeEnv) {
			e.mnt.mounted(stage, fsOn(devA))
			e.mnt.gone[devA] = true
		}, [2]string{stage, ""}, nil, []string{ReasonNotLive, ReasonDeviceGone}, "not connected"},
		{"connected but no namespace", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			delete(e.init.devices, nqnA)
		}, [2]string{}, nil, []string{ReasonDeviceGone}, nqnA},
		{"stale mounts after a reconnect", func(e *nodeEnv) {
			e.init.connected(nqnA, "/dev/fake-new")
			e.mnt.mounted(stage, fsOn("/dev/fake-old"))
			e.mnt.mounted(podA, fsOn("/dev/fake-old"))
		}, [2]string{stage, podA}, nil, []string{ReasonStaleMount}, podA},
		{"a block publish on the old device", func(e *nodeEnv) {
			e.init.connected(nqnA, "/dev/fake-new")
			e.mnt.mounted(podA, fakeMount{device: "/dev/fake-old"})
		}, [2]string{"", podA}, nil, []string{ReasonStaleMount}, "/dev/fake-old"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			problems, err := e.n.Health(ctx, volA, tc.paths[0], tc.paths[1])
			wantErr(t, err, tc.want, "")
			if err != nil {
				return
			}
			var reasons, messages []string
			for _, p := range problems {
				reasons, messages = append(reasons, p.Reason), append(messages, p.Message)
			}
			if !slices.Equal(reasons, tc.reasons) {
				t.Fatalf("reasons %v, want %v (%v)", reasons, tc.reasons, messages)
			}
			if all := strings.Join(messages, " "); !strings.Contains(all, tc.mentions) {
				t.Fatalf("messages %q do not mention %q", all, tc.mentions)
			}
		})
	}
}

func TestNodeExpandVolume(t *testing.T) {
	const before, after = 1 << 30, 2 << 30
	cases := []struct {
		name         string
		block        bool
		neverGrows   bool
		notConnected bool
		want         error
		wantResize   bool
	}{
		{"filesystem", false, false, false, nil, true},
		{"block grows by itself", true, false, false, nil, false},
		{"the device never reaches the size", false, true, false, context.DeadlineExceeded, false},
		{"not staged", false, false, true, ErrNotStaged, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			path := e.path("mount")
			if err := os.Mkdir(path, 0o750); err != nil {
				t.Fatal(err)
			}
			if !tc.notConnected {
				e.init.connected(nqnA, devA)
			}
			e.mnt.mounted(path, fakeMount{device: devA, fsType: "ext4"})
			e.mnt.sizes[devA] = before
			e.init.onRescan = func(string) {
				if !tc.neverGrows {
					e.mnt.mu.Lock()
					e.mnt.sizes[devA] = after
					e.mnt.mu.Unlock()
				}
			}
			req := ExpandRequest{ID: volA, Path: path, RequiredBytes: after, Block: tc.block}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			size, err := e.n.Expand(ctx, req)
			wantErr(t, err, tc.want, "")
			if err == nil && size != after {
				t.Fatalf("capacity %d, want %d", size, after)
			}
			if got := e.mnt.count("ResizeFilesystem "+devA+" "+path) == 1; got != tc.wantResize {
				t.Fatalf("resized=%v, want %v: %v", got, tc.wantResize, e.mnt.calls)
			}
		})
	}
	t.Run("a path that does not exist", func(t *testing.T) {
		e := newNodeEnv(t)
		_, err := e.n.Expand(context.Background(), ExpandRequest{ID: volA, Path: "some/path"})
		wantErr(t, err, ErrNotOnNode, "")
	})
}

// TestNodeCountsRealConnectsOnly: the connect and disconnect metrics count what happened on the wire, not
// the RPCs.
func TestNodeCountsRealConnectsOnly(t *testing.T) {
	ctx := context.Background()
	e := newNodeEnv(t)
	for range 2 {
		if err := e.n.Stage(ctx, fsStage(t, volA, "", false)); err != nil {
			t.Fatal(err)
		}
	}
	e.init.connectErr = errors.New("connection refused")
	if err := e.n.Stage(ctx, fsStage(t, "pvc-b", "", false)); err == nil {
		t.Fatal("stage with a failing connect succeeded")
	}
	for range 2 {
		if err := e.n.Unstage(ctx, volA, stage); err != nil {
			t.Fatal(err)
		}
	}
	m := e.metrics
	if m.connects != 1 || m.failedConnects != 1 || m.disconnects != 1 {
		t.Errorf("recorded %d connects, %d failed connects, %d disconnects; want 1 of each", m.connects, m.failedConnects, m.disconnects)
	}
}
