package driver

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// The node handlers are tested against a fake of the node service that records what it was asked: what
// the handlers own is the validation, the translation of a CSI request into a pkg/node request, the guard
// and the error codes. pkg/node's own tests cover what it does with the request; internal/app's loop tests
// and csi-sanity run both together on real devices.

const (
	rwo   = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	rwop  = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
	rox   = csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
	rwx   = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	volA  = "pvc-a"
	nqnA  = nvme.NQNPrefix + volA
	devA  = "/dev/fake-pvc-a"
	stage = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/a/globalmount"
	podA  = "/var/lib/kubelet/pods/1/volumes/kubernetes.io~csi/pvc-a/mount"
	podB  = "/var/lib/kubelet/pods/2/volumes/kubernetes.io~csi/pvc-a/mount"
)

func stageReq(id string, c *csi.VolumeCapability, vc map[string]string) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: stage, VolumeCapability: c, VolumeContext: vc}
}

func publishReqAt(id, target string, c *csi.VolumeCapability, readOnly bool) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: stage, TargetPath: target,
		VolumeCapability: c, Readonly: readOnly, VolumeContext: nodeVolumeContext(id)}
}

func unstageReq(id string) *csi.NodeUnstageVolumeRequest {
	return &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: stage}
}

func withoutKey(m map[string]string, key string) map[string]string {
	delete(m, key)
	return m
}

// fakeNode records the requests of the node handlers and answers with err (and the results below).
type fakeNode struct {
	mu       sync.Mutex
	calls    []any
	err      error
	usage    node.Usage
	problems []node.Problem
	size     int64
	// block, when set, holds Stage until it is closed.
	block chan struct{}
	// entered is closed when Stage has been entered (with block set).
	entered chan struct{}
}

func (f *fakeNode) record(call any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeNode) recorded() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeNode) Stage(_ context.Context, r node.StageRequest) error {
	if f.block != nil {
		close(f.entered)
		<-f.block
	}
	return f.record(r)
}

type unstageCall struct{ id, staging string }
type unpublishCall struct{ id, target string }
type statsCall struct{ id, path string }
type healthCall struct{ id, staging, published string }

func (f *fakeNode) Unstage(_ context.Context, id, staging string) error {
	return f.record(unstageCall{id, staging})
}
func (f *fakeNode) Publish(_ context.Context, r node.PublishRequest) error { return f.record(r) }
func (f *fakeNode) Unpublish(_ context.Context, id, target string) error {
	return f.record(unpublishCall{id, target})
}
func (f *fakeNode) Stats(id, path string) (node.Usage, error) {
	return f.usage, f.record(statsCall{id, path})
}
func (f *fakeNode) Health(_ context.Context, id, staging, published string) ([]node.Problem, error) {
	return f.problems, f.record(healthCall{id, staging, published})
}
func (f *fakeNode) Expand(_ context.Context, r node.ExpandRequest) (int64, error) {
	return f.size, f.record(r)
}

// nodeEnv is a node-mode driver on the fake node service.
type nodeEnv struct {
	d    *Driver
	node *fakeNode
}

func newNodeEnv(t *testing.T) *nodeEnv {
	t.Helper()
	e := &nodeEnv{node: &fakeNode{}}
	d, err := New(Options{Mode: ModeNode, DriverName: DefaultDriverName, NodeID: "node-a"}, Deps{Node: e.node})
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	return e
}

func nodeFSCap(mode csi.VolumeCapability_AccessMode_Mode, fsType string, flags ...string) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType, MountFlags: flags}}}
}

func nodeBlockCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}
}

// nodeVolumeContext is what CreateVolume puts into a volume's context.
func nodeVolumeContext(id string, extra ...string) map[string]string {
	c := map[string]string{"nvmeAddress": "10.0.1.5", "nvmePort": "4420", "nqn": nvme.NQNPrefix + id, "basePath": "pool/k8s"}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i]] = extra[i+1]
	}
	return c
}

func wantNodeCode(t *testing.T, err error, want codes.Code, contains string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code %s, want %s (err: %v)", got, want, err)
	}
	if contains != "" && !strings.Contains(status.Convert(err).Message(), contains) {
		t.Fatalf("message %q does not mention %q", status.Convert(err).Message(), contains)
	}
}

// TestNodeRefusesBadInput: every malformed request is InvalidArgument and never reaches the node service.
func TestNodeRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	fs := nodeFSCap(rwo, "")
	vc := nodeVolumeContext(volA)
	cases := []struct {
		name, mentions string
		call           func(d *Driver) error
	}{
		{"stage without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq("", fs, vc))
			return err
		}},
		{"stage with an id no RDS disk can have", "not a valid", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq("../etc", fs, vc))
			return err
		}},
		{"stage without staging path", "staging", func(d *Driver) error {
			r := stageReq(volA, fs, vc)
			r.StagingTargetPath = ""
			_, err := d.NodeStageVolume(ctx, r)
			return err
		}},
		{"stage without capability", "capability", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, nil, vc))
			return err
		}},
		{"stage without access type", "access type", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, &csi.VolumeCapability{
				AccessMode: &csi.VolumeCapability_AccessMode{Mode: rwo}}, vc))
			return err
		}},
		{"stage of a filesystem shared by nodes", "block-only", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, nodeFSCap(rwx, ""), vc))
			return err
		}},
		{"stage with an unsupported fsType", "btrfs", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, nodeFSCap(rwo, "btrfs"), vc))
			return err
		}},
		{"stage with an unsupported fsType in the context", "zfs", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, fs, nodeVolumeContext(volA, "fsType", "zfs")))
			return err
		}},
		{"stage without an address", "address", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, fs, withoutKey(nodeVolumeContext(volA), "nvmeAddress")))
			return err
		}},
		{"stage with an address nvme-cli would read as an option", "address", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, fs, nodeVolumeContext(volA, "nvmeAddress", "-n")))
			return err
		}},
		{"stage with a typo'd loss timeout", "ctrlLossTmo", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, fs, nodeVolumeContext(volA, "ctrlLossTmo", "-10")))
			return err
		}},
		{"stage of a foreign NQN (a node booting from NVMe-oF)", "not one of this driver's", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, fs, nodeVolumeContext(volA, "nqn", "nqn.2014-08.org.nvmexpress:boot")))
			return err
		}},
		{"stage under another volume's NQN", "exported as", func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, fs, nodeVolumeContext(volA, "nqn", nvme.NQNPrefix+"pvc-b")))
			return err
		}},
		{"unstage without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{StagingTargetPath: stage})
			return err
		}},
		{"unstage without staging path", "staging", func(d *Driver) error {
			_, err := d.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volA})
			return err
		}},
		{"publish without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodePublishVolume(ctx, publishReqAt("", podA, fs, false))
			return err
		}},
		{"publish without target", "target", func(d *Driver) error {
			_, err := d.NodePublishVolume(ctx, publishReqAt(volA, "", fs, false))
			return err
		}},
		{"publish without capability", "capability", func(d *Driver) error {
			_, err := d.NodePublishVolume(ctx, publishReqAt(volA, podA, nil, false))
			return err
		}},
		{"publish without staging path", "staging", func(d *Driver) error {
			r := publishReqAt(volA, podA, fs, false)
			r.StagingTargetPath = ""
			_, err := d.NodePublishVolume(ctx, r)
			return err
		}},
		{"unpublish without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{TargetPath: podA})
			return err
		}},
		{"unpublish without target", "target", func(d *Driver) error {
			_, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volA})
			return err
		}},
		{"stats without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumePath: podA})
			return err
		}},
		{"stats without path", "path", func(d *Driver) error {
			_, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA})
			return err
		}},
		{"health without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{StagingTargetPath: stage})
			return err
		}},
		{"expand without volume id", "volume id", func(d *Driver) error {
			_, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumePath: podA})
			return err
		}},
		{"expand without path", "path", func(d *Driver) error {
			_, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volA})
			return err
		}},
		{"expand with an unsupported capability", "capability", func(d *Driver) error {
			_, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volA, VolumePath: podA,
				VolumeCapability: nodeFSCap(rwx, "")})
			return err
		}},
		{"expand to a negative size", "negative", func(d *Driver) error {
			_, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volA, VolumePath: podA,
				CapacityRange: &csi.CapacityRange{RequiredBytes: -1}})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			wantNodeCode(t, tc.call(e.d), codes.InvalidArgument, tc.mentions)
			if calls := e.node.recorded(); len(calls) != 0 {
				t.Fatalf("a refused request still reached the node service: %v", calls)
			}
		})
	}
}

// TestNodeStageRequests: what the node service is asked to stage, from the capability and the volume
// context the controller wrote.
func TestNodeStageRequests(t *testing.T) {
	ctx := context.Background()
	conn := func(vc map[string]string) nvme.ConnectParams {
		c, err := nvme.ParseConnectParams(vc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := conn(nodeVolumeContext(volA))
	cases := []struct {
		name string
		cap  *csi.VolumeCapability
		vc   map[string]string
		want node.StageRequest
	}{
		{"filesystem with the default type", nodeFSCap(rwo, ""), nodeVolumeContext(volA),
			node.StageRequest{ID: volA, Staging: stage, Conn: base}},
		{"the capability's fsType wins over the StorageClass's", nodeFSCap(rwo, "xfs"), nodeVolumeContext(volA, "fsType", "ext4"),
			node.StageRequest{ID: volA, Staging: stage, Conn: base, FSType: "xfs"}},
		{"the StorageClass's fsType when the capability names none", nodeFSCap(rwo, ""), nodeVolumeContext(volA, "fsType", "xfs"),
			node.StageRequest{ID: volA, Staging: stage, Conn: base, FSType: "xfs"}},
		{"a reader-only mode mounts read-only", nodeFSCap(rox, "ext4"), nodeVolumeContext(volA),
			node.StageRequest{ID: volA, Staging: stage, Conn: base, FSType: "ext4", ReadOnly: true}},
		{"mount flags go to the staging mount", nodeFSCap(rwo, "ext4", "noatime"), nodeVolumeContext(volA),
			node.StageRequest{ID: volA, Staging: stage, Conn: base, FSType: "ext4", MountFlags: []string{"noatime"}}},
		{"block stages only the connection", nodeBlockCap(rwx), nodeVolumeContext(volA),
			node.StageRequest{ID: volA, Staging: stage, Conn: base, Block: true}},
		{"a context without an NQN gets the volume's", nodeFSCap(rwo, "ext4"), withoutKey(nodeVolumeContext(volA), "nqn"),
			node.StageRequest{ID: volA, Staging: stage, Conn: base, FSType: "ext4"}},
		{"the connection tunables of the StorageClass", nodeFSCap(rwo, ""), nodeVolumeContext(volA, "ctrlLossTmo", "-1", "nvmePort", "4421"),
			node.StageRequest{ID: volA, Staging: stage, Conn: conn(nodeVolumeContext(volA, "ctrlLossTmo", "-1", "nvmePort", "4421"))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			if _, err := e.d.NodeStageVolume(ctx, stageReq(volA, tc.cap, tc.vc)); err != nil {
				t.Fatal(err)
			}
			if got := e.node.recorded(); len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("node asked %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestNodeRequests: what the other node handlers ask the node service, and how they answer with its
// results.
func TestNodeRequests(t *testing.T) {
	ctx := context.Background()
	t.Run("publish", func(t *testing.T) {
		for _, tc := range []struct {
			req  *csi.NodePublishVolumeRequest
			want node.PublishRequest
		}{
			{publishReqAt(volA, podA, nodeFSCap(rwo, ""), false), node.PublishRequest{ID: volA, Staging: stage, Target: podA}},
			{publishReqAt(volA, podA, nodeFSCap(rwop, ""), true), node.PublishRequest{ID: volA, Staging: stage, Target: podA,
				ReadOnly: true, SingleWriter: true}},
			{publishReqAt(volA, podA, nodeBlockCap(rwx), false), node.PublishRequest{ID: volA, Staging: stage, Target: podA, Block: true}},
		} {
			e := newNodeEnv(t)
			if _, err := e.d.NodePublishVolume(ctx, tc.req); err != nil {
				t.Fatal(err)
			}
			if got := e.node.recorded(); len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("node asked %+v, want %+v", got, tc.want)
			}
		}
	})
	t.Run("unstage and unpublish", func(t *testing.T) {
		e := newNodeEnv(t)
		if _, err := e.d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volA, TargetPath: podA}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.NodeUnstageVolume(ctx, unstageReq(volA)); err != nil {
			t.Fatal(err)
		}
		want := []any{unpublishCall{volA, podA}, unstageCall{volA, stage}}
		if got := e.node.recorded(); !reflect.DeepEqual(got, want) {
			t.Fatalf("node asked %+v, want %+v", got, want)
		}
	})
	t.Run("expand", func(t *testing.T) {
		e := newNodeEnv(t)
		e.node.size = 2 << 30
		resp, err := e.d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volA, VolumePath: podA,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 30}, VolumeCapability: nodeBlockCap(rwo)})
		if err != nil {
			t.Fatal(err)
		}
		want := node.ExpandRequest{ID: volA, Path: podA, RequiredBytes: 2 << 30, Block: true}
		if got := e.node.recorded(); len(got) != 1 || got[0] != want || resp.GetCapacityBytes() != 2<<30 {
			t.Fatalf("node asked %+v, answered %v; want %+v", got, resp, want)
		}
	})
	t.Run("stats of a filesystem", func(t *testing.T) {
		e := newNodeEnv(t)
		e.node.usage = node.Usage{FS: mount.FilesystemStats{TotalBytes: 1000, UsedBytes: 300, AvailableBytes: 600,
			TotalInodes: 64, UsedInodes: 11, FreeInodes: 53}}
		resp, err := e.d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA, VolumePath: podA})
		if err != nil {
			t.Fatal(err)
		}
		want := []*csi.VolumeUsage{
			{Available: 600, Total: 1000, Used: 300, Unit: csi.VolumeUsage_BYTES},
			{Available: 53, Total: 64, Used: 11, Unit: csi.VolumeUsage_INODES},
		}
		if got := resp.GetUsage(); len(got) != 2 || got[0].String() != want[0].String() || got[1].String() != want[1].String() {
			t.Fatalf("usage %v, want %v", got, want)
		}
	})
	t.Run("stats of a block volume", func(t *testing.T) {
		e := newNodeEnv(t)
		e.node.usage = node.Usage{Block: true, SizeBytes: 1 << 30}
		resp, err := e.d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA, VolumePath: podA})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetUsage(); len(got) != 1 || got[0].GetTotal() != 1<<30 || got[0].GetUnit() != csi.VolumeUsage_BYTES {
			t.Fatalf("usage %v, want one entry of 1 GiB", got)
		}
	})
	t.Run("health", func(t *testing.T) {
		e := newNodeEnv(t)
		e.node.problems = []node.Problem{{Reason: node.ReasonStaleMount, Message: "stale"}}
		resp, err := e.d.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: volA, StagingTargetPath: stage,
			VolumePublishPath: podA})
		if err != nil {
			t.Fatal(err)
		}
		h := resp.GetVolumeHealth()
		if h.GetVolumeId() != volA || len(h.GetHealthStatuses()) != 1 {
			t.Fatalf("health %v", h)
		}
		if s := h.GetHealthStatuses()[0]; s.GetStatus() != csi.VolumeHealthErrorType_INACCESSIBLE ||
			s.GetReason() != node.ReasonStaleMount || s.GetMessage() != "stale" {
			t.Fatalf("entry %v", s)
		}
		if got := e.node.recorded(); !reflect.DeepEqual(got, []any{healthCall{volA, stage, podA}}) {
			t.Fatalf("node asked %+v", got)
		}
	})
}

// TestNodeErrorsMapToCodes: every handler answers the node service's errors with the code of errors.go.
func TestNodeErrorsMapToCodes(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(d *Driver) error{
		"stage": func(d *Driver) error {
			_, err := d.NodeStageVolume(ctx, stageReq(volA, nodeFSCap(rwo, ""), nodeVolumeContext(volA)))
			return err
		},
		"unstage": func(d *Driver) error { _, err := d.NodeUnstageVolume(ctx, unstageReq(volA)); return err },
		"publish": func(d *Driver) error {
			_, err := d.NodePublishVolume(ctx, publishReqAt(volA, podA, nodeFSCap(rwo, ""), false))
			return err
		},
		"unpublish": func(d *Driver) error {
			_, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volA, TargetPath: podA})
			return err
		},
		"stats": func(d *Driver) error {
			_, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA, VolumePath: podA})
			return err
		},
		"health": func(d *Driver) error {
			_, err := d.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: volA})
			return err
		},
		"expand": func(d *Driver) error {
			_, err := d.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: volA, VolumePath: podA})
			return err
		},
	}
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("volume %s: %w", volA, node.ErrInUse), codes.FailedPrecondition},
		{fmt.Errorf("volume %s: %w", volA, node.ErrNotStaged), codes.FailedPrecondition},
		{fmt.Errorf("volume %s: %w", volA, node.ErrNotOnNode), codes.NotFound},
		{fmt.Errorf("connecting: %w", nvme.ErrNotLive), codes.Unavailable},
		{fmt.Errorf("staging: %w", mount.ErrTargetBusy), codes.AlreadyExists},
		{errors.New("resize2fs: exit status 1"), codes.Internal},
	} {
		for name, call := range calls {
			e := newNodeEnv(t)
			e.node.err = tc.err
			err := call(e.d)
			if status.Code(err) != tc.code || status.Convert(err).Message() != tc.err.Error() {
				t.Errorf("%s answering %q: %v, want %s with the error's text", name, tc.err, err, tc.code)
			}
		}
	}
}

// TestNodeOperationsOnAVolumeAreSerialised: while one operation on a volume runs, another on the same
// volume is Aborted (the CO retries), one on another volume runs, and the reads are not held up.
func TestNodeOperationsOnAVolumeAreSerialised(t *testing.T) {
	ctx := context.Background()
	e := newNodeEnv(t)
	e.node.block, e.node.entered = make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := e.d.NodeStageVolume(ctx, stageReq(volA, nodeFSCap(rwo, ""), nodeVolumeContext(volA)))
		done <- err
	}()
	<-e.node.entered
	_, err := e.d.NodePublishVolume(ctx, publishReqAt(volA, podA, nodeFSCap(rwo, ""), false))
	wantNodeCode(t, err, codes.Aborted, "")
	if _, err := e.d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-b", TargetPath: podB}); err != nil {
		t.Fatalf("another volume waited for the first: %v", err)
	}
	if _, err := e.d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA, VolumePath: podA}); err != nil {
		t.Fatalf("stats waited for the stage: %v", err)
	}
	close(e.node.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.NodePublishVolume(ctx, publishReqAt(volA, podA, nodeFSCap(rwo, ""), false)); err != nil {
		t.Fatalf("publish after the stage: %v", err)
	}
}

func TestNodeInfoAndCapabilities(t *testing.T) {
	e := newNodeEnv(t)
	info, err := e.d.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "node-a" || info.GetAccessibleTopology() != nil {
		t.Fatalf("NodeGetInfo: %v, %v", info, err)
	}
	resp, err := e.d.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []csi.NodeServiceCapability_RPC_Type
	for _, c := range resp.GetCapabilities() {
		got = append(got, c.GetRpc().GetType())
	}
	want := []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME, csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME, csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("capabilities %v, want %v", got, want)
	}
}
