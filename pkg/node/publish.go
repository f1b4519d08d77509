package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// publishRequest is a validated NodePublishVolume.
type publishRequest struct {
	id, nqn         string
	staging, target string
	readOnly        bool
	block           bool
	// singleWriter: SINGLE_NODE_SINGLE_WRITER, which allows one publish on the node at a time.
	singleWriter bool
}

// publishVolume binds the staged filesystem onto the target directory, or the volume's block device onto
// the target file. Repeating it with the same target and options succeeds without a second mount; the same
// target with other options is ErrTargetBusy.
func (d *Driver) publishVolume(ctx context.Context, p publishRequest) error {
	if p.block {
		return d.publishBlock(ctx, p)
	}
	// Binding an unmounted staging directory would give the pod an empty directory on the node's root
	// filesystem instead of its volume.
	staged, err := d.mounter.IsMountPoint(p.staging)
	if err != nil {
		return err
	}
	if !staged {
		return fmt.Errorf("%w: nothing is mounted at the staging path %s; NodeStageVolume must succeed first", errNotStaged, p.staging)
	}
	if p.singleWriter {
		dev, err := d.currentDevice(ctx, p.nqn)
		if err != nil {
			return err
		}
		if err := d.checkSinglePublish(p, dev); err != nil {
			return err
		}
	}
	// No mount flags on the bind: the staging mount has them, and a bind inherits its source mount's
	// per-mount flags (nosuid, noexec, ...), while filesystem options cannot be given to a bind at all.
	if err := d.mounter.BindMount(ctx, p.staging, p.target, p.readOnly, nil); err != nil {
		return fmt.Errorf("publishing volume %s at %s: %w", p.id, p.target, err)
	}
	klog.InfoS("Published volume", "volumeID", p.id, "target", p.target, "readOnly", p.readOnly, "node", d.opts.NodeID)
	return nil
}

// publishBlock binds the NQN's device, resolved now, onto the target file: a device name remembered from
// the stage may belong to another namespace after a reconnect.
func (d *Driver) publishBlock(ctx context.Context, p publishRequest) error {
	dev, err := d.currentDevice(ctx, p.nqn)
	if err != nil {
		return err
	}
	if dev == "" {
		return fmt.Errorf("%w: no block device for %s; NodeStageVolume must succeed first", errNotStaged, p.nqn)
	}
	if p.singleWriter {
		if err := d.checkSinglePublish(p, dev); err != nil {
			return err
		}
	}
	if err := d.mounter.PublishBlock(ctx, dev, p.target, p.readOnly); err != nil {
		return fmt.Errorf("publishing block volume %s (%s) at %s: %w", p.id, dev, p.target, err)
	}
	klog.InfoS("Published block volume", "volumeID", p.id, "device", dev, "target", p.target, "readOnly", p.readOnly,
		"node", d.opts.NodeID)
	return nil
}

// checkSinglePublish refuses a SINGLE_NODE_SINGLE_WRITER volume that is already published at another
// target on this node.
func (d *Driver) checkSinglePublish(p publishRequest, dev string) error {
	mounts, err := d.volumeMounts(p.id, dev, p.staging)
	if err != nil {
		return err
	}
	if others := otherThan(mounts, p.staging, p.target); len(others) > 0 {
		return fmt.Errorf("%w: volume %s has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s",
			errInUse, p.id, strings.Join(others, ", "))
	}
	return nil
}

// currentDevice is the NQN's block device now, or "" when there is none.
func (d *Driver) currentDevice(ctx context.Context, nqn string) (string, error) {
	dev, err := d.initiator.Device(ctx, nqn)
	if errors.Is(err, nvme.ErrNoDevice) {
		return "", nil
	}
	return dev, err
}

// unpublishVolume unmounts and removes the target; a target that is gone or was never mounted is success.
func (d *Driver) unpublishVolume(ctx context.Context, id, target string) error {
	if err := d.mounter.Unmount(ctx, target); err != nil {
		return fmt.Errorf("unpublishing volume %s from %s: %w", id, target, err)
	}
	klog.InfoS("Unpublished volume", "volumeID", id, "target", target, "node", d.opts.NodeID)
	return nil
}
