package driver

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/nvme"
)

func TestNodeGetVolumeStats(t *testing.T) {
	ctx := context.Background()
	e := newNodeEnv(t)
	mounted, bare := e.path("mounted"), e.path("bare")
	for _, p := range []string{mounted, bare} {
		if err := os.Mkdir(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	e.mnt.mounted(mounted, fakeMount{device: devA, fsType: "ext4"})

	for _, tc := range []struct {
		name, path string
		code       codes.Code
	}{
		{"a path that does not exist", e.path("missing"), codes.NotFound},
		{"a relative path that does not exist", "some/path", codes.NotFound},
		{"a directory with nothing mounted", bare, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA, VolumePath: tc.path})
			wantNodeCode(t, err, tc.code, "")
		})
	}
	t.Run("a mounted filesystem", func(t *testing.T) {
		resp, err := e.d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: volA, VolumePath: mounted})
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
}

func TestNodeGetVolumeHealth(t *testing.T) {
	ctx := context.Background()
	fsOn := func(dev string) fakeMount { return fakeMount{device: dev, fsType: "ext4"} }
	cases := []struct {
		name    string
		setup   func(e *nodeEnv)
		paths   [2]string // staging, publish
		code    codes.Code
		reasons []string
		// mentions is a text every message taken together must hold.
		mentions string
	}{
		{"healthy and published", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsOn(devA))
			e.mnt.mounted(podA, fsOn(devA))
		}, [2]string{stage, podA}, codes.OK, nil, ""},
		{"healthy, asked without paths", func(e *nodeEnv) { e.init.connected(nqnA, devA) }, [2]string{}, codes.OK, nil, ""},
		{"not on this node", func(e *nodeEnv) {}, [2]string{stage, podA}, codes.NotFound, nil, ""},
		{"the controller is reconnecting", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.init.state[nqnA] = nvme.StateConnecting
			e.mnt.mounted(stage, fsOn(devA))
		}, [2]string{stage, ""}, codes.OK, []string{reasonNotLive}, `"connecting"`},
		{"the controller was deleted under the mount", func(e *nodeEnv) {
			e.mnt.mounted(stage, fsOn(devA))
			e.mnt.gone[devA] = true
		}, [2]string{stage, ""}, codes.OK, []string{reasonNotLive, reasonDeviceGone}, "not connected"},
		{"connected but no namespace", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			delete(e.init.devices, nqnA)
		}, [2]string{}, codes.OK, []string{reasonDeviceGone}, nqnA},
		{"stale mounts after a reconnect", func(e *nodeEnv) {
			e.init.connected(nqnA, "/dev/fake-new")
			e.mnt.mounted(stage, fsOn("/dev/fake-old"))
			e.mnt.mounted(podA, fsOn("/dev/fake-old"))
		}, [2]string{stage, podA}, codes.OK, []string{reasonStaleMount}, podA},
		{"a block publish on the old device", func(e *nodeEnv) {
			e.init.connected(nqnA, "/dev/fake-new")
			e.mnt.mounted(podA, fakeMount{device: "/dev/fake-old"})
		}, [2]string{"", podA}, codes.OK, []string{reasonStaleMount}, "/dev/fake-old"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			resp, err := e.d.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: volA,
				StagingTargetPath: tc.paths[0], VolumePublishPath: tc.paths[1]})
			wantNodeCode(t, err, tc.code, "")
			if err != nil {
				return
			}
			h := resp.GetVolumeHealth()
			if h.GetVolumeId() != volA {
				t.Fatalf("health of %q", h.GetVolumeId())
			}
			var reasons, messages []string
			for _, s := range h.GetHealthStatuses() {
				if s.GetStatus() != csi.VolumeHealthErrorType_INACCESSIBLE {
					t.Fatalf("status %s", s.GetStatus())
				}
				reasons, messages = append(reasons, s.GetReason()), append(messages, s.GetMessage())
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
		code         codes.Code
		wantResize   bool
	}{
		{"filesystem", false, false, false, codes.OK, true},
		{"block grows by itself", true, false, false, codes.OK, false},
		{"the device never reaches the size", false, true, false, codes.DeadlineExceeded, false},
		{"not staged", false, false, true, codes.FailedPrecondition, false},
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
			req := &csi.NodeExpandVolumeRequest{VolumeId: volA, VolumePath: path, CapacityRange: &csi.CapacityRange{RequiredBytes: after}}
			if tc.block {
				req.VolumeCapability = nodeBlockCap(rwo)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			resp, err := e.d.NodeExpandVolume(ctx, req)
			wantNodeCode(t, err, tc.code, "")
			if err == nil && resp.GetCapacityBytes() != after {
				t.Fatalf("capacity %d, want %d", resp.GetCapacityBytes(), after)
			}
			if got := e.mnt.count("ResizeFilesystem "+devA+" "+path) == 1; got != tc.wantResize {
				t.Fatalf("resized=%v, want %v: %v", got, tc.wantResize, e.mnt.calls)
			}
		})
	}
	t.Run("a path that does not exist", func(t *testing.T) {
		e := newNodeEnv(t)
		_, err := e.d.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{VolumeId: volA, VolumePath: "some/path"})
		wantNodeCode(t, err, codes.NotFound, "")
	})
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

// TestNodeCountsRealConnectsOnly: the connect and disconnect metrics count what happened on the wire, not
// the RPCs.
func TestNodeCountsRealConnectsOnly(t *testing.T) {
	ctx := context.Background()
	e := newNodeEnv(t)
	for range 2 {
		if _, err := e.d.NodeStageVolume(ctx, stageReq(volA, nodeFSCap(rwo, ""), nodeVolumeContext(volA))); err != nil {
			t.Fatal(err)
		}
	}
	e.init.connectErr = errors.New("connection refused")
	if _, err := e.d.NodeStageVolume(ctx, stageReq("pvc-b", nodeFSCap(rwo, ""), nodeVolumeContext("pvc-b"))); err == nil {
		t.Fatal("stage with a failing connect succeeded")
	}
	for range 2 {
		if _, err := e.d.NodeUnstageVolume(ctx, unstageReq(volA)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{`rds_csi_nvme_connects_total{status="success"}`: 1, `rds_csi_nvme_connects_total{status="failure"}`: 1,
		"rds_csi_nvme_disconnects_total": 1, "rds_csi_nvme_connect_duration_seconds_count": 1}
	got := gatherCounters(t, e)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// gatherCounters flattens the registry's counters and histogram counts into name{labels} → value.
func gatherCounters(t *testing.T, e *nodeEnv) map[string]float64 {
	t.Helper()
	families, err := e.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName() + labelText(m.GetLabel())
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func labelText(labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return ""
	}
	var parts []string
	for _, l := range labels {
		parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
