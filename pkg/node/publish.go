package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// PublishRequest is a validated NodePublishVolume.
type PublishRequest struct {
	ID              string
	Staging, Target string
	ReadOnly        bool
	Block           bool
	// SingleWriter: SINGLE_NODE_SINGLE_WRITER, which allows one publish on the node at a time.
	SingleWriter bool
}

// Publish binds the staged filesystem onto the target directory, or the volume's block device onto
// the target file. Repeating it with the same target and options succeeds without a second mount; the same
// target with other options is ErrTargetBusy.
func (n *Service) Publish(ctx context.Context, p PublishRequest) error {
	if p.Block {
		return n.publishBlock(ctx, p)
	}
	// Binding an unmounted staging directory would give the pod an empty directory on the node's root
	// filesystem instead of its volume.
	staged, err := n.mounter.IsMountPoint(p.Staging)
	if err != nil {
		return err
	}
	if !staged {
		return fmt.Errorf("%w: nothing is mounted at the staging path %s; NodeStageVolume must succeed first", ErrNotStaged, p.Staging)
	}
	if p.SingleWriter {
		dev, err := n.currentDevice(ctx, nvme.VolumeNQN(p.ID))
		if err != nil {
			return err
		}
		if err := n.checkSinglePublish(p, dev); err != nil {
			return err
		}
	}
	// No mount flags on the bind: the staging mount has them, and a bind inherits its source mount's
	// per-mount flags (nosuid, noexec, ...), while filesystem options cannot be given to a bind at all.
	if err := n.mounter.BindMount(ctx, p.Staging, p.Target, p.ReadOnly, nil); err != nil {
		return fmt.Errorf("publishing volume %s at %s: %w", p.ID, p.Target, err)
	}
	klog.InfoS("Published volume", "volumeID", p.ID, "target", p.Target, "readOnly", p.ReadOnly, "node", n.nodeID)
	return nil
}

// publishBlock binds the NQN's device, resolved now, onto the target file: a device name remembered from
// the stage may belong to another namespace after a reconnect.
func (n *Service) publishBlock(ctx context.Context, p PublishRequest) error {
	nqn := nvme.VolumeNQN(p.ID)
	dev, err := n.currentDevice(ctx, nqn)
	if err != nil {
		return err
	}
	if dev == "" {
		return fmt.Errorf("%w: no block device for %s; NodeStageVolume must succeed first", ErrNotStaged, nqn)
	}
	if p.SingleWriter {
		if err := n.checkSinglePublish(p, dev); err != nil {
			return err
		}
	}
	if err := n.mounter.PublishBlock(ctx, dev, p.Target, p.ReadOnly); err != nil {
		return fmt.Errorf("publishing block volume %s (%s) at %s: %w", p.ID, dev, p.Target, err)
	}
	klog.InfoS("Published block volume", "volumeID", p.ID, "device", dev, "target", p.Target, "readOnly", p.ReadOnly,
		"node", n.nodeID)
	return nil
}

// checkSinglePublish refuses a SINGLE_NODE_SINGLE_WRITER volume that is already published at another
// target on this node.
func (n *Service) checkSinglePublish(p PublishRequest, dev string) error {
	mounts, err := n.volumeMounts(p.ID, dev, p.Staging)
	if err != nil {
		return err
	}
	if others := otherThan(mounts, p.Staging, p.Target); len(others) > 0 {
		return fmt.Errorf("%w: volume %s has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s",
			ErrInUse, p.ID, strings.Join(others, ", "))
	}
	return nil
}

// currentDevice is the NQN's block device now, or "" when there is none.
func (n *Service) currentDevice(ctx context.Context, nqn string) (string, error) {
	dev, err := n.initiator.Device(ctx, nqn)
	if errors.Is(err, nvme.ErrNoDevice) {
		return "", nil
	}
	return dev, err
}

// Unpublish unmounts and removes the target; a target that is gone or was never mounted is success.
func (n *Service) Unpublish(ctx context.Context, id, target string) error {
	if err := n.mounter.Unmount(ctx, target); err != nil {
		return fmt.Errorf("unpublishing volume %s from %s: %w", id, target, err)
	}
	klog.InfoS("Unpublished volume", "volumeID", id, "target", target, "node", n.nodeID)
	return nil
}
