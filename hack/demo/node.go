package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// The node half of the demo: with root, `rds-csi --mode=all --rds-simulator` attaches the simulator's
// backing files as loop devices, so real mkfs, mount and bind mounts run on this machine.

const demoNode = "demo-node"

// nodeDemo holds the paths of one volume's node lifecycle.
type nodeDemo struct {
	*demo
	dir string
}

func (n *nodeDemo) staging(vol string) string { return filepath.Join(n.dir, "staging", vol) }
func (n *nodeDemo) target(vol string) string  { return filepath.Join(n.dir, "target", vol) }

// attach publishes, stages and publishes vol, as kubelet does when a pod starts.
func (n *nodeDemo) attach(vol string) func() (string, error) {
	return func() (string, error) {
		pub, err := n.ctrl.ControllerPublishVolume(n.ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: vol, NodeId: demoNode, VolumeCapability: fsCap()[0]})
		if err != nil {
			return "", fmt.Errorf("ControllerPublishVolume: %w", err)
		}
		vc := map[string]string{"nqn": pub.GetPublishContext()["nqn"], "nvmeAddress": pub.GetPublishContext()["nvmeAddress"],
			"nvmePort": pub.GetPublishContext()["nvmePort"]}
		if err := os.MkdirAll(n.staging(vol), 0o750); err != nil {
			return "", err
		}
		if _, err := n.node.NodeStageVolume(n.ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: n.staging(vol),
			VolumeCapability: fsCap()[0], PublishContext: pub.GetPublishContext(), VolumeContext: vc}); err != nil {
			return "", fmt.Errorf("NodeStageVolume: %w", err)
		}
		if _, err := n.node.NodePublishVolume(n.ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: n.staging(vol),
			TargetPath: n.target(vol), VolumeCapability: fsCap()[0], PublishContext: pub.GetPublishContext(), VolumeContext: vc}); err != nil {
			return "", fmt.Errorf("NodePublishVolume: %w", err)
		}
		st, err := n.node.NodeGetVolumeStats(n.ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: n.target(vol)})
		if err != nil {
			return "", fmt.Errorf("NodeGetVolumeStats: %w", err)
		}
		var total int64
		for _, u := range st.GetUsage() {
			if u.GetUnit() == csi.VolumeUsage_BYTES {
				total = u.GetTotal()
			}
		}
		return fmt.Sprintf("mounted at %s (%s filesystem of %s)", n.target(vol), fsCap()[0].GetMount().GetFsType(), gibs(total)), nil
	}
}

// detach undoes attach, as kubelet does when the pod goes away; the loop device is released.
func (n *nodeDemo) detach(vol string) func() (string, error) {
	return func() (string, error) {
		if _, err := n.node.NodeUnpublishVolume(n.ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: n.target(vol)}); err != nil {
			return "", fmt.Errorf("NodeUnpublishVolume: %w", err)
		}
		if _, err := n.node.NodeUnstageVolume(n.ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol, StagingTargetPath: n.staging(vol)}); err != nil {
			return "", fmt.Errorf("NodeUnstageVolume: %w", err)
		}
		if _, err := n.ctrl.ControllerUnpublishVolume(n.ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: demoNode}); err != nil {
			return "", fmt.Errorf("ControllerUnpublishVolume: %w", err)
		}
		return "unmounted, device released, detached", nil
	}
}

var demoData = []byte("written through a mounted rds-csi volume\n")

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:8]) }

func (n *nodeDemo) write(vol string) func() (string, error) {
	return func() (string, error) {
		p := filepath.Join(n.target(vol), "hello.txt")
		if err := os.WriteFile(p, demoData, 0o644); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s sha256 %s", p, sum(demoData)), nil
	}
}

func (n *nodeDemo) verify(vol string) func() (string, error) {
	return func() (string, error) {
		p := filepath.Join(n.target(vol), "hello.txt")
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if sum(b) != sum(demoData) {
			return "", fmt.Errorf("%s holds %q", p, b)
		}
		return fmt.Sprintf("%s sha256 %s: the data survived", p, sum(b)), nil
	}
}

// fsAtLeast checks that the mounted filesystem of vol has at least min bytes: a restore into a larger volume
// is grown at NodeStage, since Kubernetes sends no NodeExpandVolume for it.
func (n *nodeDemo) fsAtLeast(vol string, minBytes int64) func() (string, error) {
	return func() (string, error) {
		st, err := n.node.NodeGetVolumeStats(n.ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: vol, VolumePath: n.target(vol)})
		if err != nil {
			return "", fmt.Errorf("NodeGetVolumeStats: %w", err)
		}
		for _, u := range st.GetUsage() {
			if u.GetUnit() == csi.VolumeUsage_BYTES {
				if u.GetTotal() < minBytes {
					return "", fmt.Errorf("the filesystem has %s, want at least %s", gibs(u.GetTotal()), gibs(minBytes))
				}
				return fmt.Sprintf("%s filesystem on the %s volume", gibs(u.GetTotal()), gibs(10*gib)), nil
			}
		}
		return "", fmt.Errorf("NodeGetVolumeStats reported no byte usage")
	}
}
