package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

const (
	volA  = "pvc-a"
	nqnA  = nvme.NQNPrefix + volA
	devA  = "/dev/fake-pvc-a"
	stage = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/a/globalmount"
	podA  = "/var/lib/kubelet/pods/1/volumes/kubernetes.io~csi/pvc-a/mount"
	podB  = "/var/lib/kubelet/pods/2/volumes/kubernetes.io~csi/pvc-a/mount"
)

// fsStage is a filesystem stage of volume id at stage, as pkg/driver builds it from a NodeStageVolume.
func fsStage(t *testing.T, id, fsType string, readOnly bool) StageRequest {
	t.Helper()
	return StageRequest{ID: id, Staging: stage, Conn: connectParams(t, id), FSType: fsType, ReadOnly: readOnly}
}

// blockStage is a raw block stage of volume id.
func blockStage(t *testing.T, id string) StageRequest {
	t.Helper()
	return StageRequest{ID: id, Staging: stage, Conn: connectParams(t, id), Block: true}
}

func connectParams(t *testing.T, id string) nvme.ConnectParams {
	t.Helper()
	c, err := nvme.ParseConnectParams(nodeVolumeContext(id))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fsPublish(id, target string, readOnly, singleWriter bool) PublishRequest {
	return PublishRequest{ID: id, Staging: stage, Target: target, ReadOnly: readOnly, SingleWriter: singleWriter}
}

func blockPublish(id, target string, readOnly, singleWriter bool) PublishRequest {
	return PublishRequest{ID: id, Staging: stage, Target: target, ReadOnly: readOnly, SingleWriter: singleWriter, Block: true}
}

func TestNodeStage(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		req  StageRequest
		// wantMount is the FormatAndMount call, "" for none.
		wantMount string
	}{
		{"filesystem with the default type", fsStage(t, volA, "", false),
			"FormatAndMount " + devA + " " + stage + "  ro=false"},
		{"filesystem with a type", fsStage(t, volA, "xfs", false),
			"FormatAndMount " + devA + " " + stage + " xfs ro=false"},
		{"read-only", fsStage(t, volA, "ext4", true),
			"FormatAndMount " + devA + " " + stage + " ext4 ro=true"},
		{"block stages only the connection", blockStage(t, volA), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			if tc.req.ReadOnly {
				e.mnt.fs[devA] = "ext4" // a read-only volume must already hold data
			}
			for range 3 {
				if err := e.n.Stage(ctx, tc.req); err != nil {
					t.Fatal(err)
				}
			}
			if n := e.init.count("Connect"); n != 1 {
				t.Fatalf("%d connects for three stages, want 1: %v", n, e.init.calls)
			}
			if n := e.init.count("Disconnect"); n != 0 {
				t.Fatalf("a stage disconnected: %v", e.init.calls)
			}
			mounts := slices.DeleteFunc(slices.Clone(e.mnt.calls), func(c string) bool { return !strings.HasPrefix(c, "FormatAndMount") })
			switch {
			case tc.wantMount == "" && len(mounts) > 0:
				t.Fatalf("block stage mounted: %v", mounts)
			case tc.wantMount != "" && (len(mounts) != 3 || mounts[0] != tc.wantMount):
				t.Fatalf("mount calls %q, want three of %q", mounts, tc.wantMount)
			}
			if n := e.mnt.count("mkfs"); n > 1 {
				t.Fatalf("formatted %d times: %v", n, e.mnt.calls)
			}
		})
	}
}

func TestNodeStageFailures(t *testing.T) {
	ctx := context.Background()
	connectFailed := &nvme.CommandError{Argv: []string{"nvme", "connect"}, Output: "Failed to write to /dev/nvme-fabrics: Input/output error"}
	cases := []struct {
		name  string
		setup func(e *nodeEnv)
		want  error // the error the stage's wraps
		// wantDisconnect: the stage undid its own connect.
		wantDisconnect bool
	}{
		{"connect fails", func(e *nodeEnv) { e.init.connectErr = connectFailed }, connectFailed, false},
		{"the kernel is still reconnecting", func(e *nodeEnv) {
			e.init.connectErr = nvme.ErrNotLive
		}, nvme.ErrNotLive, false},
		{"no device appears after the connect", func(e *nodeEnv) { e.init.noDevice = true }, nvme.ErrNoDevice, true},
		{"the device holds another filesystem", func(e *nodeEnv) { e.mnt.fs[devA] = "xfs" }, mount.ErrNotBlank, true},
		{"connected before, the mount fails: the connection stays", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.fs[devA] = "xfs"
		}, mount.ErrNotBlank, false},
		{"the staging path holds another volume", func(e *nodeEnv) {
			e.mnt.mounted(stage, fakeMount{device: "/dev/other", fsType: "ext4"})
		}, mount.ErrTargetBusy, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			wantErr(t, e.n.Stage(ctx, fsStage(t, volA, "ext4", false)), tc.want, "")
			if got := e.init.count("Disconnect") > 0; got != tc.wantDisconnect {
				t.Fatalf("disconnected=%v, want %v: %v", got, tc.wantDisconnect, e.init.calls)
			}
			if e.mnt.count("mkfs") > 0 {
				t.Fatalf("formatted: %v", e.mnt.calls)
			}
		})
	}
}

func TestNodeUnstage(t *testing.T) {
	ctx := context.Background()
	fsA := fakeMount{device: devA, fsType: "ext4"}
	cases := []struct {
		name           string
		setup          func(e *nodeEnv)
		want           error
		mentions       string
		wantUnmount    bool
		wantDisconnect bool
	}{
		{"staged and unpublished", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsA)
		}, nil, "", true, true},
		{"still published: nothing changes", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsA)
			e.mnt.mounted(podA, fsA)
		}, ErrInUse, podA, false, false},
		{"published from a stale staging mount after a reconnect", func(e *nodeEnv) {
			e.init.connected(nqnA, "/dev/fake-new")
			e.mnt.mounted(stage, fakeMount{device: "/dev/fake-old", fsType: "ext4"})
			e.mnt.mounted(podA, fakeMount{device: "/dev/fake-old", fsType: "ext4"})
		}, ErrInUse, podA, false, false},
		{"a block volume still published", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(podA, fakeMount{device: devA})
		}, ErrInUse, podA, false, false},
		{"a block volume staged only", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
		}, nil, "", false, true},
		{"connected but the staging mount is gone already", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
		}, nil, "", false, true},
		{"never staged here", func(e *nodeEnv) {}, nil, "", false, false},
		{"another volume's mounts do not count", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsA)
			e.mnt.mounted(podB, fakeMount{device: "/dev/fake-pvc-b", fsType: "ext4"})
		}, nil, "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			wantErr(t, e.n.Unstage(ctx, volA, stage), tc.want, tc.mentions)
			if got := e.mnt.count("Unmount") > 0; got != tc.wantUnmount {
				t.Fatalf("unmounted=%v, want %v: %v", got, tc.wantUnmount, e.mnt.calls)
			}
			if got := e.init.count("Disconnect") > 0; got != tc.wantDisconnect {
				t.Fatalf("disconnected=%v, want %v: %v", got, tc.wantDisconnect, e.init.calls)
			}
			if tc.want != nil {
				return
			}
			// A repeat finds nothing left to do.
			e.init.calls, e.mnt.calls = nil, nil
			if err := e.n.Unstage(ctx, volA, stage); err != nil {
				t.Fatalf("repeated unstage: %v", err)
			}
			if e.mnt.count("Unmount") > 0 || e.init.count("Disconnect") > 0 {
				t.Fatalf("repeated unstage acted: %v %v", e.mnt.calls, e.init.calls)
			}
		})
	}
}

func TestNodePublish(t *testing.T) {
	ctx := context.Background()
	staged := func(e *nodeEnv) {
		e.init.connected(nqnA, devA)
		e.mnt.mounted(stage, fakeMount{device: devA, fsType: "ext4"})
	}
	cases := []struct {
		name     string
		setup    func(e *nodeEnv)
		req      PublishRequest
		want     error
		mentions string
		made     string // the mount call made, if any
	}{
		{"filesystem", staged, fsPublish(volA, podA, false, false), nil, "",
			"BindMount " + stage + " " + podA + " ro=false"},
		{"read-only", staged, fsPublish(volA, podA, true, false), nil, "",
			"BindMount " + stage + " " + podA + " ro=true"},
		{"not staged", func(e *nodeEnv) {}, fsPublish(volA, podA, false, false), ErrNotStaged, "staging", ""},
		{"a second pod of a single-node-writer volume", func(e *nodeEnv) {
			staged(e)
			e.mnt.mounted(podB, fakeMount{device: devA, fsType: "ext4"})
		}, fsPublish(volA, podA, false, false), nil, "", "BindMount " + stage + " " + podA + " ro=false"},
		{"a second pod of a single-writer volume", func(e *nodeEnv) {
			staged(e)
			e.mnt.mounted(podB, fakeMount{device: devA, fsType: "ext4"})
		}, fsPublish(volA, podA, false, true), ErrInUse, podB, ""},
		{"the target holds the volume read-write, read-only asked", func(e *nodeEnv) {
			staged(e)
			e.mnt.mounted(podA, fakeMount{device: devA, fsType: "ext4"})
		}, fsPublish(volA, podA, true, false), mount.ErrTargetBusy, "", "BindMount " + stage + " " + podA + " ro=true"},
		{"block", func(e *nodeEnv) { e.init.connected(nqnA, devA) }, blockPublish(volA, podA, false, false),
			nil, "", "PublishBlock " + devA + " " + podA + " ro=false"},
		{"block resolves the device now, not at stage time", func(e *nodeEnv) { e.init.connected(nqnA, "/dev/nvme7n1") },
			blockPublish(volA, podA, true, false), nil, "", "PublishBlock /dev/nvme7n1 " + podA + " ro=true"},
		{"block not connected", func(e *nodeEnv) {}, blockPublish(volA, podA, false, false), ErrNotStaged, nqnA, ""},
		{"block single-writer published elsewhere", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(podB, fakeMount{device: devA})
		}, blockPublish(volA, podA, false, true), ErrInUse, podB, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			wantErr(t, e.n.Publish(ctx, tc.req), tc.want, tc.mentions)
			made := slices.DeleteFunc(slices.Clone(e.mnt.calls), func(c string) bool {
				return !strings.HasPrefix(c, "BindMount") && !strings.HasPrefix(c, "PublishBlock")
			})
			if (tc.made == "" && len(made) > 0) || (tc.made != "" && (len(made) != 1 || made[0] != tc.made)) {
				t.Fatalf("mount calls %q, want %q", made, tc.made)
			}
			if tc.want != nil {
				return
			}
			// A repeat of the same publish succeeds; with SINGLE_NODE_SINGLE_WRITER too.
			if err := e.n.Publish(ctx, tc.req); err != nil {
				t.Fatalf("repeated publish: %v", err)
			}
		})
	}
}

func TestNodeUnpublish(t *testing.T) {
	ctx := context.Background()
	e := newNodeEnv(t)
	e.mnt.mounted(podA, fakeMount{device: devA, fsType: "ext4"})
	for i := range 2 {
		if err := e.n.Unpublish(ctx, volA, podA); err != nil {
			t.Fatalf("unpublish %d: %v", i, err)
		}
	}
	if ok, _ := e.mnt.IsMountPoint(podA); ok {
		t.Fatal("target still mounted")
	}
	if e.init.count("Disconnect") > 0 {
		t.Fatal("unpublish disconnected")
	}
}

func TestNewNeedsBothDependencies(t *testing.T) {
	if _, err := New(nil, newFakeMounter(), Options{}); err == nil {
		t.Error("New without an initiator succeeded")
	}
	if _, err := New(newFakeInitiator(), nil, Options{}); err == nil {
		t.Error("New without a mounter succeeded")
	}
}

// wantErr checks that err wraps want (nil: no error) and its text mentions contains.
func wantErr(t *testing.T, err, want error, contains string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error %v, want one wrapping %v", err, want)
	case err != nil && !strings.Contains(err.Error(), contains):
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}
