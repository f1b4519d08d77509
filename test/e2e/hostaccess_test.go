//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/internal/testenv"
	"github.com/rds-csi/rds-csi/pkg/nodeid"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
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
		before := len(controllersOf(t, v.nqn)) // the published node's own, while it is connected
		out, err := connect(host, hostID)
		if err == nil {
			t.Fatalf("%s: host %s connected to %s (%s); the kernel target should have refused it", when, host, v.nqn, out)
		}
		if c := controllersOf(t, v.nqn); len(c) != before {
			t.Fatalf("%s: a refused connect changed the controllers from %d to %v", when, before, c)
		}
		if strings.Contains(out, "already connected") {
			t.Fatalf("%s: nvme-cli refused host %s itself (%s), not the target", when, host, out)
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
	// (A second initiator while the node is connected cannot be tried from this one machine: nvme-cli and the
	// kernel refuse a second connection to a connected subsystem themselves, whatever the target would say.)

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

// TestNVMetAllowedHostsOnTheKernel proves the simulator's mapping of nvme-tcp-server-allow-host-name onto
// the real kernel target, without the driver: with two hosts allowed (a live migration's window) both
// connect and a third is refused; with one left, the other is refused; with none, any host connects; and
// Unexport leaves no host entry behind.
func TestNVMetAllowedHostsOnTheKernel(t *testing.T) {
	if skipReason != "" {
		testenv.Missing(t, skipReason)
	}
	const (
		nqn  = "nqn.2026-01.io.rds-csi.e2e:nvmet-hosts"
		port = 4431
		a    = "nqn.2014-08.org.nvmexpress:uuid:0be40000-e2e0-4e2e-9000-00000000000a"
		b    = "nqn.2014-08.org.nvmexpress:uuid:0be40000-e2e0-4e2e-9000-00000000000b"
	)
	if err := os.MkdirAll(*workDir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(*workDir, "nvmet-hosts.img")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(file)
	if err := os.Truncate(file, 64*mib); err != nil {
		t.Fatal(err)
	}
	exp := rdssim.NewNVMet(nvmetRoot, dataAddress)
	defer func() { _ = exp.Unexport(nqn) }()
	try := func(host string) error {
		id := "0be40000-e2e0-4e2e-9000-0000000000" + host[len(host)-2:]
		out, err := exec.Command("nvme", "connect", "-t", "tcp", "-a", dataAddress, "-s", strconv.Itoa(port), "-n", nqn,
			"--hostnqn="+host, "--hostid="+id).CombinedOutput()
		if err == nil {
			waitForDevice(t, nqn, 20*time.Second)
			nvmeCLI(t, "disconnect", "-n", nqn)
			waitForNoController(t, nqn, 15*time.Second)
			return nil
		}
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	expect := func(hosts []string, admitted, refused []string) {
		t.Helper()
		if err := exp.Export(nqn, port, file, hosts); err != nil {
			t.Fatalf("Export with hosts %v: %v", hosts, err)
		}
		for _, h := range admitted {
			if err := try(h); err != nil {
				t.Fatalf("allowed %v: %s refused: %v", hosts, h, err)
			}
		}
		for _, h := range refused {
			if err := try(h); err == nil {
				t.Fatalf("allowed %v: %s connected", hosts, h)
			} else {
				t.Logf("allowed %v: %s refused: %v", hosts, h, err)
			}
		}
	}
	expect([]string{a, b}, []string{a, b}, []string{otherHostNQN})
	expect([]string{b}, []string{b}, []string{a})
	expect(nil, []string{a, otherHostNQN}, nil)
	expect([]string{a}, []string{a}, []string{b})
	if err := exp.Unexport(nqn); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"subsystems/" + nqn, "hosts/" + a, "hosts/" + b} {
		if _, err := os.Lstat(filepath.Join(nvmetRoot, p)); !os.IsNotExist(err) {
			t.Errorf("after Unexport %s is still in configfs (%v)", p, err)
		}
	}
}
