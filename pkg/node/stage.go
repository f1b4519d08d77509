package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// deviceWaitTimeout bounds the wait for the namespace's block device after a connect. It appears within
// milliseconds to a second; a longer wait means something is wrong and the CO should retry the stage.
const deviceWaitTimeout = 30 * time.Second

// StageRequest is a validated NodeStageVolume: what the node needs to connect and mount one volume.
type StageRequest struct {
	ID         string
	Staging    string // the staging target path
	Conn       nvme.ConnectParams
	Block      bool
	FSType     string // "" means the mounter's default (ext4)
	MountFlags []string
	ReadOnly   bool
}

// Stage connects (unless connected), waits for the device and, for a filesystem volume, mounts it at
// the staging path and grows a filesystem that existed before to its device's size (growToDevice). A repeat
// of a finished stage finds the subsystem live and the device mounted there and changes nothing; the mounter
// never probes, formats or checks a device that is already mounted, and only reads its filesystem's size.
//
// When this call made the connection and then failed, it disconnects again (if nothing mounts the device):
// a CO that gives up on a stage that failed for good does not call unstage, and the connection would stay.
func (n *Service) Stage(ctx context.Context, s StageRequest) (err error) {
	nqn := s.Conn.NQN
	// Asking first keeps the connect metrics to real connects; the initiator would skip a live one anyway.
	live, err := n.initiator.IsConnected(ctx, nqn)
	if err != nil {
		return err
	}
	start := time.Now()
	if !live {
		if err := n.initiator.Connect(ctx, s.Conn); err != nil {
			n.recordConnect(err, start)
			return fmt.Errorf("connecting %s at %s:%d: %w", nqn, s.Conn.Address, s.Conn.Port, err)
		}
		defer func() {
			if err != nil {
				n.undoConnect(context.WithoutCancel(ctx), s)
			}
		}()
	}
	waitCtx, cancel := context.WithTimeout(ctx, deviceWaitTimeout)
	defer cancel()
	dev, err := n.initiator.WaitForDevice(waitCtx, nqn)
	if !live {
		// A connect counts as done when its device is there.
		n.recordConnect(err, start)
	}
	if err != nil {
		return fmt.Errorf("volume %s is connected but its block device did not appear: %w", s.ID, err)
	}
	if s.Block {
		klog.InfoS("Staged block volume", "volumeID", s.ID, "device", dev, "node", n.nodeID)
		return nil
	}
	if err := n.checkStageConflict(s, dev); err != nil {
		return err
	}
	formatted, err := n.mounter.FormatAndMount(ctx, dev, s.Staging, s.FSType, s.MountFlags, s.ReadOnly)
	if err != nil {
		return fmt.Errorf("staging volume %s (%s) at %s: %w", s.ID, dev, s.Staging, err)
	}
	if !formatted && !s.ReadOnly {
		if err := n.growToDevice(ctx, s, dev); err != nil {
			return err
		}
	}
	klog.InfoS("Staged volume", "volumeID", s.ID, "device", dev, "stagingPath", s.Staging, "fsType", s.FSType,
		"readOnly", s.ReadOnly, "formatted", formatted, "node", n.nodeID)
	return nil
}

// checkStageConflict refuses to mount the volume at a second staging path (mount.CheckStageConflict).
func (n *Service) checkStageConflict(s StageRequest, dev string) error {
	mounts, err := n.volumeMounts(s.ID, dev, s.Staging)
	if err != nil {
		return err
	}
	return mount.CheckStageConflict(s.ID, s.Staging, mounts)
}

// growToDevice grows the staged filesystem when its device is larger. A volume restored from a snapshot or
// cloned into a larger size gets a larger disk holding the source's filesystem, and the CO sends no
// NodeExpandVolume for that (it expands only what it resized itself), so the stage is the one place to do
// it. The check only reads, so a repeated stage of a volume that needs nothing stays without effect.
//
// A failed growth fails the stage with the mount left in place: the CO retries the stage, which finds the
// mount, checks again and retries the growth. Succeeding without it would hand the pod a volume smaller
// than the one it asked for, with nothing left to ever grow it. A read-only stage is not grown (the caller
// skips it): its filesystem cannot be written.
func (n *Service) growToDevice(ctx context.Context, s StageRequest, dev string) error {
	need, err := n.mounter.NeedsResize(ctx, dev, s.Staging)
	if err != nil {
		return fmt.Errorf("volume %s is mounted at %s, but comparing its filesystem with its device %s failed: %w",
			s.ID, s.Staging, dev, err)
	}
	if !need {
		return nil
	}
	klog.InfoS("Filesystem is smaller than its device (a restore or clone into a larger volume); growing it",
		"volumeID", s.ID, "device", dev, "stagingPath", s.Staging, "node", n.nodeID)
	if err := n.mounter.ResizeFilesystem(ctx, dev, s.Staging); err != nil {
		return fmt.Errorf("volume %s is mounted at %s, but growing its filesystem to the size of %s failed "+
			"(the next NodeStageVolume tries again): %w", s.ID, s.Staging, dev, err)
	}
	return nil
}

func (n *Service) recordConnect(err error, start time.Time) {
	if n.metrics != nil {
		n.metrics.RecordNVMeConnect(err, time.Since(start))
	}
}

// undoConnect disconnects what a failed stage connected, unless something mounts the device after all.
// Only the new device counts: whatever the staging path held before this connect sits on another one.
// Its own failure is only logged: the stage's error is the one the CO must see.
func (n *Service) undoConnect(ctx context.Context, s StageRequest) {
	dev, err := n.currentDevice(ctx, s.Conn.NQN)
	if err != nil {
		klog.ErrorS(err, "Leaving the volume connected after a failed stage", "volumeID", s.ID)
		return
	}
	mounts, err := n.volumeMounts(s.ID, dev, "")
	if err != nil || len(mounts) > 0 {
		klog.ErrorS(err, "Leaving the volume connected after a failed stage", "volumeID", s.ID, "mounts", mounts)
		return
	}
	if err := n.disconnect(ctx, s.Conn.NQN); err != nil {
		klog.ErrorS(err, "Disconnecting after a failed stage", "volumeID", s.ID)
	}
}

// Unstage unmounts the staging path and disconnects the subsystem.
//
// It refuses (ErrInUse) while anything other than the staging mount still sits on the volume's device, a
// publish target most likely: disconnecting under a live mount would turn the pod's I/O into errors, and
// reporting success without disconnecting would let the CO detach and attach the volume to another node
// while this one still has its filesystem mounted. Refusing keeps the CO retrying until the mounts are gone.
// The staging mount is left alone then too, so the volume stays in one consistent state.
func (n *Service) Unstage(ctx context.Context, id, staging string) error {
	nqn := nvme.VolumeNQN(id)
	dev, err := n.currentDevice(ctx, nqn)
	if err != nil {
		return err
	}
	mounts, err := n.volumeMounts(id, dev, staging)
	if err != nil {
		return err
	}
	if others := otherThan(mounts, staging); len(others) > 0 {
		return fmt.Errorf("%w: volume %s is still mounted at %s; unpublish it there before unstaging",
			ErrInUse, id, strings.Join(others, ", "))
	}
	mounted, err := n.mounter.IsMountPoint(staging)
	if err != nil {
		return err
	}
	if mounted {
		if err := n.mounter.Unmount(ctx, staging); err != nil {
			return fmt.Errorf("unmounting the staging path of volume %s: %w", id, err)
		}
	}
	if err := n.disconnect(ctx, nqn); err != nil {
		return err
	}
	klog.InfoS("Unstaged volume", "volumeID", id, "stagingPath", staging, "node", n.nodeID)
	return nil
}

// disconnect disconnects the NQN if a controller for it exists. The NQN always carries this driver's
// prefix (volumeNQN), and the initiator refuses any other anyway.
func (n *Service) disconnect(ctx context.Context, nqn string) error {
	state, err := n.initiator.State(ctx, nqn)
	if err != nil {
		return err
	}
	if state == "" {
		return nil
	}
	if err := n.initiator.Disconnect(ctx, nqn); err != nil {
		return fmt.Errorf("disconnecting %s: %w", nqn, err)
	}
	if n.metrics != nil {
		n.metrics.RecordNVMeDisconnect()
	}
	return nil
}
