package driver

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// deviceWaitTimeout bounds the wait for the namespace's block device after a connect. It appears within
// milliseconds to a second; a longer wait means something is wrong and the CO should retry the stage.
const deviceWaitTimeout = 30 * time.Second

// stageRequest is a validated NodeStageVolume.
type stageRequest struct {
	id         string
	staging    string
	conn       nvme.ConnectParams
	block      bool
	fsType     string // "" means the mounter's default (ext4)
	mountFlags []string
	readOnly   bool
}

// parseStageRequest reads what the controller put into the volume context. The NQN must be the one this
// driver derives from the volume id: unstage has no volume context and finds the subsystem by the id alone,
// so a volume staged under any other NQN could never be disconnected. A context without an NQN (a PV
// written by hand, or by a driver that did not record it) gets that one.
func parseStageRequest(id string, req *csi.NodeStageVolumeRequest) (stageRequest, error) {
	vc := req.GetVolumeContext()
	if _, ok := vc[nvme.VolumeContextNQN]; !ok {
		vc = maps.Clone(vc)
		if vc == nil {
			vc = map[string]string{}
		}
		vc[nvme.VolumeContextNQN] = volumeNQN(id)
	}
	conn, err := nvme.ParseConnectParams(vc)
	if err != nil {
		return stageRequest{}, invalid("volume context: %v", err)
	}
	if conn.NQN != volumeNQN(id) {
		return stageRequest{}, invalid("volume context names NQN %q, but volume %s is exported as %q", conn.NQN, id, volumeNQN(id))
	}
	c := req.GetVolumeCapability()
	s := stageRequest{id: id, staging: req.GetStagingTargetPath(), conn: conn, block: c.GetBlock() != nil,
		readOnly: readOnlyMode(c.GetAccessMode().GetMode())}
	if m := c.GetMount(); m != nil {
		s.mountFlags = m.GetMountFlags()
		s.fsType = m.GetFsType()
		if s.fsType == "" {
			s.fsType = vc[paramFSType]
		}
		if s.fsType != "" && !supportedFSTypes[s.fsType] {
			return stageRequest{}, invalid("volume context %s=%q is not supported (use ext4 or xfs)", paramFSType, s.fsType)
		}
	}
	return s, nil
}

// readOnlyMode reports whether an access mode only reads: such a volume is mounted read-only at the staging
// path, so no pod on the node can write through any of its publishes.
func readOnlyMode(m csi.VolumeCapability_AccessMode_Mode) bool {
	return m == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY || m == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
}

// stageVolume connects (unless connected), waits for the device and, for a filesystem volume, mounts it at
// the staging path and grows a filesystem that existed before to its device's size (growToDevice). A repeat
// of a finished stage finds the subsystem live and the device mounted there and changes nothing; the mounter
// never probes, formats or checks a device that is already mounted, and only reads its filesystem's size.
//
// When this call made the connection and then failed, it disconnects again (if nothing mounts the device):
// a CO that gives up on a stage that failed for good does not call unstage, and the connection would stay.
func (d *Driver) stageVolume(ctx context.Context, s stageRequest) (err error) {
	nqn := s.conn.NQN
	// Asking first keeps the connect metrics to real connects; the initiator would skip a live one anyway.
	live, err := d.initiator.IsConnected(ctx, nqn)
	if err != nil {
		return err
	}
	start := time.Now()
	if !live {
		if err := d.initiator.Connect(ctx, s.conn); err != nil {
			d.recordConnect(err, start)
			return fmt.Errorf("connecting %s at %s:%d: %w", nqn, s.conn.Address, s.conn.Port, err)
		}
		defer func() {
			if err != nil {
				d.undoConnect(context.WithoutCancel(ctx), s)
			}
		}()
	}
	waitCtx, cancel := context.WithTimeout(ctx, deviceWaitTimeout)
	defer cancel()
	dev, err := d.initiator.WaitForDevice(waitCtx, nqn)
	if !live {
		// A connect counts as done when its device is there.
		d.recordConnect(err, start)
	}
	if err != nil {
		return fmt.Errorf("volume %s is connected but its block device did not appear: %w", s.id, err)
	}
	if s.block {
		klog.InfoS("Staged block volume", "volumeID", s.id, "device", dev, "node", d.opts.NodeID)
		return nil
	}
	if err := d.checkStageConflict(s, dev); err != nil {
		return err
	}
	formatted, err := d.mounter.FormatAndMount(ctx, dev, s.staging, s.fsType, s.mountFlags, s.readOnly)
	if err != nil {
		return fmt.Errorf("staging volume %s (%s) at %s: %w", s.id, dev, s.staging, err)
	}
	if !formatted && !s.readOnly {
		if err := d.growToDevice(ctx, s, dev); err != nil {
			return err
		}
	}
	klog.InfoS("Staged volume", "volumeID", s.id, "device", dev, "stagingPath", s.staging, "fsType", s.fsType,
		"readOnly", s.readOnly, "formatted", formatted, "node", d.opts.NodeID)
	return nil
}

// checkStageConflict refuses to mount the volume at a second staging path (mount.CheckStageConflict).
func (d *Driver) checkStageConflict(s stageRequest, dev string) error {
	mounts, err := d.volumeMounts(s.id, dev, s.staging)
	if err != nil {
		return err
	}
	return mount.CheckStageConflict(s.id, s.staging, mounts)
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
func (d *Driver) growToDevice(ctx context.Context, s stageRequest, dev string) error {
	need, err := d.mounter.NeedsResize(ctx, dev, s.staging)
	if err != nil {
		return fmt.Errorf("volume %s is mounted at %s, but comparing its filesystem with its device %s failed: %w",
			s.id, s.staging, dev, err)
	}
	if !need {
		return nil
	}
	klog.InfoS("Filesystem is smaller than its device (a restore or clone into a larger volume); growing it",
		"volumeID", s.id, "device", dev, "stagingPath", s.staging, "node", d.opts.NodeID)
	if err := d.mounter.ResizeFilesystem(ctx, dev, s.staging); err != nil {
		return fmt.Errorf("volume %s is mounted at %s, but growing its filesystem to the size of %s failed "+
			"(the next NodeStageVolume tries again): %w", s.id, s.staging, dev, err)
	}
	return nil
}

func (d *Driver) recordConnect(err error, start time.Time) {
	if d.metrics != nil {
		d.metrics.RecordNVMeConnect(err, time.Since(start))
	}
}

// undoConnect disconnects what a failed stage connected, unless something mounts the device after all.
// Only the new device counts: whatever the staging path held before this connect sits on another one.
// Its own failure is only logged: the stage's error is the one the CO must see.
func (d *Driver) undoConnect(ctx context.Context, s stageRequest) {
	dev, err := d.currentDevice(ctx, s.conn.NQN)
	if err != nil {
		klog.ErrorS(err, "Leaving the volume connected after a failed stage", "volumeID", s.id)
		return
	}
	mounts, err := d.volumeMounts(s.id, dev, "")
	if err != nil || len(mounts) > 0 {
		klog.ErrorS(err, "Leaving the volume connected after a failed stage", "volumeID", s.id, "mounts", mounts)
		return
	}
	if err := d.disconnect(ctx, s.conn.NQN); err != nil {
		klog.ErrorS(err, "Disconnecting after a failed stage", "volumeID", s.id)
	}
}

// unstageVolume unmounts the staging path and disconnects the subsystem.
//
// It refuses (errInUse) while anything other than the staging mount still sits on the volume's device, a
// publish target most likely: disconnecting under a live mount would turn the pod's I/O into errors, and
// reporting success without disconnecting would let the CO detach and attach the volume to another node
// while this one still has its filesystem mounted. Refusing keeps the CO retrying until the mounts are gone.
// The staging mount is left alone then too, so the volume stays in one consistent state.
func (d *Driver) unstageVolume(ctx context.Context, id, staging string) error {
	nqn := volumeNQN(id)
	dev, err := d.currentDevice(ctx, nqn)
	if err != nil {
		return err
	}
	mounts, err := d.volumeMounts(id, dev, staging)
	if err != nil {
		return err
	}
	if others := otherThan(mounts, staging); len(others) > 0 {
		return fmt.Errorf("%w: volume %s is still mounted at %s; unpublish it there before unstaging",
			errInUse, id, strings.Join(others, ", "))
	}
	mounted, err := d.mounter.IsMountPoint(staging)
	if err != nil {
		return err
	}
	if mounted {
		if err := d.mounter.Unmount(ctx, staging); err != nil {
			return fmt.Errorf("unmounting the staging path of volume %s: %w", id, err)
		}
	}
	if err := d.disconnect(ctx, nqn); err != nil {
		return err
	}
	klog.InfoS("Unstaged volume", "volumeID", id, "stagingPath", staging, "node", d.opts.NodeID)
	return nil
}

// disconnect disconnects the NQN if a controller for it exists. The NQN always carries this driver's
// prefix (volumeNQN), and the initiator refuses any other anyway.
func (d *Driver) disconnect(ctx context.Context, nqn string) error {
	state, err := d.initiator.State(ctx, nqn)
	if err != nil {
		return err
	}
	if state == "" {
		return nil
	}
	if err := d.initiator.Disconnect(ctx, nqn); err != nil {
		return fmt.Errorf("disconnecting %s: %w", nqn, err)
	}
	if d.metrics != nil {
		d.metrics.RecordNVMeDisconnect()
	}
	return nil
}
