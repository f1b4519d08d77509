package driver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/nvme"
)

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

// TestNodeRefusesBadInput: every malformed request is InvalidArgument and touches neither the data path
// nor the mount table.
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
			if len(e.init.calls) != 0 || len(e.mnt.calls) != 0 {
				t.Fatalf("a refused request still ran: initiator %v, mounter %v", e.init.calls, e.mnt.calls)
			}
		})
	}
}

func TestNodeStage(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		cap     *csi.VolumeCapability
		context map[string]string
		// wantMount is the FormatAndMount call, "" for none.
		wantMount string
	}{
		{"filesystem with the default type", nodeFSCap(rwo, ""), nodeVolumeContext(volA),
			"FormatAndMount " + devA + " " + stage + "  ro=false"},
		{"the capability's fsType wins over the StorageClass's", nodeFSCap(rwo, "xfs"), nodeVolumeContext(volA, "fsType", "ext4"),
			"FormatAndMount " + devA + " " + stage + " xfs ro=false"},
		{"the StorageClass's fsType when the capability names none", nodeFSCap(rwo, ""), nodeVolumeContext(volA, "fsType", "xfs"),
			"FormatAndMount " + devA + " " + stage + " xfs ro=false"},
		{"a reader-only mode mounts read-only", nodeFSCap(rox, "ext4"), nodeVolumeContext(volA),
			"FormatAndMount " + devA + " " + stage + " ext4 ro=true"},
		{"block stages only the connection", nodeBlockCap(rwx), nodeVolumeContext(volA), ""},
		{"a context without an NQN gets the volume's", nodeFSCap(rwo, "ext4"), withoutKey(nodeVolumeContext(volA), "nqn"),
			"FormatAndMount " + devA + " " + stage + " ext4 ro=false"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			if readOnlyMode(tc.cap.GetAccessMode().GetMode()) {
				e.mnt.fs[devA] = "ext4" // a read-only volume must already hold data
			}
			for range 3 {
				if _, err := e.d.NodeStageVolume(ctx, stageReq(volA, tc.cap, tc.context)); err != nil {
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
	cases := []struct {
		name  string
		setup func(e *nodeEnv)
		code  codes.Code
		// wantDisconnect: the stage undid its own connect.
		wantDisconnect bool
	}{
		{"connect fails", func(e *nodeEnv) {
			e.init.connectErr = &nvme.CommandError{Argv: []string{"nvme", "connect"}, Output: "Failed to write to /dev/nvme-fabrics: Input/output error"}
		}, codes.Internal, false},
		{"the kernel is still reconnecting", func(e *nodeEnv) {
			e.init.connectErr = nvme.ErrNotLive
		}, codes.Unavailable, false},
		{"no device appears after the connect", func(e *nodeEnv) { e.init.noDevice = true }, codes.Unavailable, true},
		{"the device holds another filesystem", func(e *nodeEnv) { e.mnt.fs[devA] = "xfs" }, codes.FailedPrecondition, true},
		{"connected before, the mount fails: the connection stays", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.fs[devA] = "xfs"
		}, codes.FailedPrecondition, false},
		{"the staging path holds another volume", func(e *nodeEnv) {
			e.mnt.mounted(stage, fakeMount{device: "/dev/other", fsType: "ext4"})
		}, codes.AlreadyExists, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			_, err := e.d.NodeStageVolume(ctx, stageReq(volA, nodeFSCap(rwo, "ext4"), nodeVolumeContext(volA)))
			wantNodeCode(t, err, tc.code, "")
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
		code           codes.Code
		mentions       string
		wantUnmount    bool
		wantDisconnect bool
	}{
		{"staged and unpublished", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsA)
		}, codes.OK, "", true, true},
		{"still published: nothing changes", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsA)
			e.mnt.mounted(podA, fsA)
		}, codes.FailedPrecondition, podA, false, false},
		{"published from a stale staging mount after a reconnect", func(e *nodeEnv) {
			e.init.connected(nqnA, "/dev/fake-new")
			e.mnt.mounted(stage, fakeMount{device: "/dev/fake-old", fsType: "ext4"})
			e.mnt.mounted(podA, fakeMount{device: "/dev/fake-old", fsType: "ext4"})
		}, codes.FailedPrecondition, podA, false, false},
		{"a block volume still published", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(podA, fakeMount{device: devA})
		}, codes.FailedPrecondition, podA, false, false},
		{"a block volume staged only", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
		}, codes.OK, "", false, true},
		{"connected but the staging mount is gone already", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
		}, codes.OK, "", false, true},
		{"never staged here", func(e *nodeEnv) {}, codes.OK, "", false, false},
		{"another volume's mounts do not count", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(stage, fsA)
			e.mnt.mounted(podB, fakeMount{device: "/dev/fake-pvc-b", fsType: "ext4"})
		}, codes.OK, "", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			_, err := e.d.NodeUnstageVolume(ctx, unstageReq(volA))
			wantNodeCode(t, err, tc.code, tc.mentions)
			if got := e.mnt.count("Unmount") > 0; got != tc.wantUnmount {
				t.Fatalf("unmounted=%v, want %v: %v", got, tc.wantUnmount, e.mnt.calls)
			}
			if got := e.init.count("Disconnect") > 0; got != tc.wantDisconnect {
				t.Fatalf("disconnected=%v, want %v: %v", got, tc.wantDisconnect, e.init.calls)
			}
			if tc.code != codes.OK {
				return
			}
			// A repeat finds nothing left to do.
			e.init.calls, e.mnt.calls = nil, nil
			if _, err := e.d.NodeUnstageVolume(ctx, unstageReq(volA)); err != nil {
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
		req      *csi.NodePublishVolumeRequest
		code     codes.Code
		mentions string
		want     string // the mount call made, if any
	}{
		{"filesystem", staged, publishReqAt(volA, podA, nodeFSCap(rwo, ""), false), codes.OK, "",
			"BindMount " + stage + " " + podA + " ro=false"},
		{"read-only", staged, publishReqAt(volA, podA, nodeFSCap(rwo, ""), true), codes.OK, "",
			"BindMount " + stage + " " + podA + " ro=true"},
		{"not staged", func(e *nodeEnv) {}, publishReqAt(volA, podA, nodeFSCap(rwo, ""), false), codes.FailedPrecondition,
			"staging", ""},
		{"a second pod of a single-node-writer volume", func(e *nodeEnv) {
			staged(e)
			e.mnt.mounted(podB, fakeMount{device: devA, fsType: "ext4"})
		}, publishReqAt(volA, podA, nodeFSCap(rwo, ""), false), codes.OK, "", "BindMount " + stage + " " + podA + " ro=false"},
		{"a second pod of a single-writer volume", func(e *nodeEnv) {
			staged(e)
			e.mnt.mounted(podB, fakeMount{device: devA, fsType: "ext4"})
		}, publishReqAt(volA, podA, nodeFSCap(rwop, ""), false), codes.FailedPrecondition, podB, ""},
		{"the target holds the volume read-write, read-only asked", func(e *nodeEnv) {
			staged(e)
			e.mnt.mounted(podA, fakeMount{device: devA, fsType: "ext4"})
		}, publishReqAt(volA, podA, nodeFSCap(rwo, ""), true), codes.AlreadyExists, "", "BindMount " + stage + " " + podA + " ro=true"},
		{"block", func(e *nodeEnv) { e.init.connected(nqnA, devA) }, publishReqAt(volA, podA, nodeBlockCap(rwx), false),
			codes.OK, "", "PublishBlock " + devA + " " + podA + " ro=false"},
		{"block resolves the device now, not at stage time", func(e *nodeEnv) { e.init.connected(nqnA, "/dev/nvme7n1") },
			publishReqAt(volA, podA, nodeBlockCap(rwo), true), codes.OK, "", "PublishBlock /dev/nvme7n1 " + podA + " ro=true"},
		{"block not connected", func(e *nodeEnv) {}, publishReqAt(volA, podA, nodeBlockCap(rwo), false),
			codes.FailedPrecondition, nqnA, ""},
		{"block single-writer published elsewhere", func(e *nodeEnv) {
			e.init.connected(nqnA, devA)
			e.mnt.mounted(podB, fakeMount{device: devA})
		}, publishReqAt(volA, podA, nodeBlockCap(rwop), false), codes.FailedPrecondition, podB, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newNodeEnv(t)
			tc.setup(e)
			_, err := e.d.NodePublishVolume(ctx, tc.req)
			wantNodeCode(t, err, tc.code, tc.mentions)
			made := slices.DeleteFunc(slices.Clone(e.mnt.calls), func(c string) bool {
				return !strings.HasPrefix(c, "BindMount") && !strings.HasPrefix(c, "PublishBlock")
			})
			if (tc.want == "" && len(made) > 0) || (tc.want != "" && (len(made) != 1 || made[0] != tc.want)) {
				t.Fatalf("mount calls %q, want %q", made, tc.want)
			}
			if tc.code != codes.OK {
				return
			}
			// A repeat of the same publish succeeds; with SINGLE_NODE_SINGLE_WRITER too.
			if _, err := e.d.NodePublishVolume(ctx, tc.req); err != nil {
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
		if _, err := e.d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volA, TargetPath: podA}); err != nil {
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
