//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/nodeid"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// otherHostNQN is a second initiator on the storage network: a host the volume was never published to.
const (
	otherHostNQN = "nqn.2014-08.org.nvmexpress:uuid:0be40000-e2e0-4e2e-9000-0000000000ff"
	otherHostID  = "0be40000-e2e0-4e2e-9000-0000000000ff"
)

// TestHostAccessControl is issue 14's proof over the real kernel target: a volume with hostAccessControl
// is exported to nobody until it is published; the node plugin reports its host NQN in its node id; after
// ControllerPublish a second initiator host NQN is refused by the kernel target while the published node
// connects (NodeStage) and moves bytes; after ControllerUnpublish the old node can no longer reconnect.
func TestHostAccessControl(t *testing.T) {
	st := need(t)
	hostNQN, err := nodeid.ReadHostNQN("/etc/nvme/hostnqn")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := rpc()
	info, err := st.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	longID := info.GetNodeId()
	if name, reported, err := nodeid.Parse(longID); err != nil || name != nodeID || reported != hostNQN {
		t.Fatalf("NodeGetInfo node id %q (%v): want %q with the host NQN %q", longID, err, nodeID, hostNQN)
	}

	v := st.createVolume(t, "pvc-e2e-acl", gib, blockCapability(), map[string]string{"hostAccessControl": "true"})
	port := v.context[nvme.VolumeContextPort]
	connect := func(host, hostID string) (string, error) {
		out, err := exec.Command("nvme", "connect", "-t", "tcp", "-a", dataAddress, "-s", port, "-n", v.nqn,
			"--hostnqn="+host, "--hostid="+hostID).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	mustBeRefused := func(when, host, hostID string) {
		t.Helper()
		out, err := connect(host, hostID)
		if err == nil {
			_, _ = exec.Command("nvme", "disconnect", "-n", v.nqn).CombinedOutput()
			t.Fatalf("%s: host %s connected to %s (%s); the kernel target should have refused it", when, host, v.nqn, out)
		}
		if c := controllersOf(t, v.nqn); len(c) != 0 {
			t.Fatalf("%s: a refused connect left controllers %v", when, c)
		}
		t.Logf("%s: host %s refused: %s", when, host, out)
	}
	nodeHostID := readAttr("/etc/nvme/hostid")

	mustBeRefused("created, not published", hostNQN, nodeHostID)

	publish := func() {
		t.Helper()
		ctx, cancel := rpc()
		defer cancel()
		resp, err := st.controller.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: v.id, NodeId: longID, VolumeCapability: v.capability, VolumeContext: v.context})
		if err != nil {
			t.Fatalf("ControllerPublishVolume %s to %s: %v", v.id, longID, err)
		}
		v.publishCtx = resp.GetPublishContext()
	}
	unpublish := func() {
		t.Helper()
		ctx, cancel := rpc()
		defer cancel()
		if _, err := st.controller.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{
			VolumeId: v.id, NodeId: longID}); err != nil {
			t.Fatalf("ControllerUnpublishVolume %s from %s: %v", v.id, longID, err)
		}
	}
	publish()
	mustBeRefused("published to "+nodeID, otherHostNQN, otherHostID)

	// The published node connects: NodeStage runs nvme connect with /etc/nvme/hostnqn.
	took := v.stage(t)
	v.publish(t)
	t.Logf("the published node staged in %.2fs", took.Seconds())
	data := payload(14, 1<<20)
	f, err := os.OpenFile(v.target, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatalf("write through %s: %v", v.target, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A second initiator is still refused while the node is connected.
	mustBeRefused("while "+nodeID+" is connected", otherHostNQN, otherHostID)

	if err := v.unpublish(); err != nil {
		t.Fatal(err)
	}
	if err := v.unstage(); err != nil {
		t.Fatal(err)
	}
	waitForNoController(t, v.nqn, 3*time.Second)
	unpublish()
	start := time.Now()
	mustBeRefused("after ControllerUnpublish", hostNQN, nodeHostID)
	t.Logf("reconnect refused in %s", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 2, 64))

	// Published again, the node gets back in and finds its bytes.
	publish()
	v.stage(t)
	v.publish(t)
	if got := readAt(t, v.target, 0, len(data)); string(got) != string(data) {
		t.Fatalf("after a new publish %s reads sum %s, written %s", v.target, sum(got), sum(data))
	}
	if err := v.unpublish(); err != nil {
		t.Fatal(err)
	}
	if err := v.unstage(); err != nil {
		t.Fatal(err)
	}
	waitForNoController(t, v.nqn, 3*time.Second)
	unpublish()
	v.delete(t)
}
