package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// Growth after a rescan: the kernel applies a new namespace size asynchronously, so expand polls for it.
const (
	deviceGrowthTimeout = 30 * time.Second
	deviceGrowthPoll    = 100 * time.Millisecond
)

// publishedPath stats a volume path and tells whether it is a block volume (a device node bound onto a
// file) or a filesystem volume (a mounted directory). A path that does not exist, or a directory with
// nothing mounted on it, does not hold the volume.
func (d *Driver) publishedPath(path string) (block bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%w: %s does not exist", errNotOnNode, path)
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		return true, nil
	}
	mounted, err := d.mounter.IsMountPoint(path)
	if err != nil {
		return false, err
	}
	if !mounted {
		return false, fmt.Errorf("%w: nothing is mounted at %s", errNotOnNode, path)
	}
	return false, nil
}

// volumeStats reports bytes and inodes (statfs) of a filesystem volume, or the device size of a block one.
func (d *Driver) volumeStats(id, path string) ([]*csi.VolumeUsage, error) {
	block, err := d.publishedPath(path)
	if err != nil {
		return nil, err
	}
	if block {
		size, err := d.mounter.DeviceSize(path)
		if err != nil {
			return nil, fmt.Errorf("size of block volume %s at %s: %w", id, path, err)
		}
		return []*csi.VolumeUsage{{Total: size, Unit: csi.VolumeUsage_BYTES}}, nil
	}
	st, err := d.mounter.FilesystemStats(path)
	if err != nil {
		return nil, fmt.Errorf("usage of volume %s at %s: %w", id, path, err)
	}
	return []*csi.VolumeUsage{
		{Available: st.AvailableBytes, Total: st.TotalBytes, Used: st.UsedBytes, Unit: csi.VolumeUsage_BYTES},
		{Available: st.FreeInodes, Total: st.TotalInodes, Used: st.UsedInodes, Unit: csi.VolumeUsage_INODES},
	}, nil
}

// Reasons of the health entries; the spec allows one entry per (status, reason).
const (
	reasonNotLive    = "NVMeControllerNotLive"
	reasonDeviceGone = "DeviceGone"
	reasonStaleMount = "StaleMount"
)

// volumeHealth checks the volume from this node: the NVMe controller must be live, the NQN must have a
// block device, and every mount among the given paths must sit on that device. A mount on another device
// is stale: it was made before a reconnect gave the namespace a new device, and its I/O goes nowhere.
//
// A volume that is neither connected nor mounted at a given path is not on this node (NotFound).
func (d *Driver) volumeHealth(ctx context.Context, id, staging, published string) (*csi.VolumeHealth, error) {
	nqn := volumeNQN(id)
	state, err := d.initiator.State(ctx, nqn)
	if err != nil {
		return nil, err
	}
	var mounted []string
	for _, p := range []string{staging, published} {
		if p == "" {
			continue
		}
		m, err := d.mounter.IsMountPoint(p)
		if err != nil {
			return nil, err
		}
		if m {
			mounted = append(mounted, p)
		}
	}
	if state == "" && len(mounted) == 0 {
		return nil, fmt.Errorf("%w: volume %s is neither connected nor mounted here", errNotOnNode, id)
	}

	var h healthReport
	if state != nvme.StateLive {
		h.add(reasonNotLive, fmt.Sprintf("NVMe controller of %s is %s", nqn, describeState(state)))
	}
	dev, err := d.currentDevice(ctx, nqn)
	if err != nil {
		return nil, err
	}
	if dev == "" {
		h.add(reasonDeviceGone, fmt.Sprintf("no block device for %s", nqn))
	}
	for _, p := range mounted {
		md, err := d.mounter.MountedDevice(p)
		switch {
		case errors.Is(err, mount.ErrDeviceGone):
			h.add(reasonDeviceGone, fmt.Sprintf("%s sits on a device that no longer exists", p))
		case errors.Is(err, mount.ErrNotMounted):
			// Unmounted since it was looked at: nothing to judge.
		case err != nil:
			return nil, err
		case dev != "" && filepath.Clean(md) != filepath.Clean(dev):
			h.add(reasonStaleMount, fmt.Sprintf("%s is mounted from %s, but %s is now %s; unstage and stage the volume again",
				p, md, nqn, dev))
		}
	}
	if len(h.reasons) > 0 {
		klog.V(2).InfoS("Volume unhealthy on this node", "volumeID", id, "problems", h.messages, "node", d.opts.NodeID)
	}
	return &csi.VolumeHealth{VolumeId: id, HealthStatuses: h.entries()}, nil
}

func describeState(state string) string {
	if state == "" {
		return "not connected"
	}
	return fmt.Sprintf("%q", state)
}

// healthReport gathers problems by reason, in the order found.
type healthReport struct {
	reasons  []string
	messages map[string][]string
}

func (h *healthReport) add(reason, msg string) {
	if h.messages == nil {
		h.messages = map[string][]string{}
	}
	if _, ok := h.messages[reason]; !ok {
		h.reasons = append(h.reasons, reason)
	}
	h.messages[reason] = append(h.messages[reason], msg)
}

func (h *healthReport) entries() []*csi.VolumeHealth_VolumeHealthEntry {
	var out []*csi.VolumeHealth_VolumeHealthEntry
	for _, r := range h.reasons {
		out = append(out, &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: r, Message: strings.Join(h.messages[r], "; "),
		})
	}
	return out
}

// expandRequest is a validated NodeExpandVolume.
type expandRequest struct {
	id, nqn       string
	path          string
	requiredBytes int64
	block         bool // from the capability; a path holding a device node says so too
}

// expandVolume rescans the namespace, waits until the device has the size the controller gave the disk and
// grows the filesystem on it. A block volume has nothing to grow: the pod sees the new size at once.
func (d *Driver) expandVolume(ctx context.Context, e expandRequest) (int64, error) {
	block, err := d.publishedPath(e.path)
	if err != nil {
		return 0, err
	}
	block = block || e.block
	dev, err := d.currentDevice(ctx, e.nqn)
	if err != nil {
		return 0, err
	}
	if dev == "" {
		return 0, fmt.Errorf("%w: no block device for %s", errNotStaged, e.nqn)
	}
	if err := d.initiator.Rescan(ctx, e.nqn); err != nil {
		return 0, fmt.Errorf("rescanning volume %s: %w", e.id, err)
	}
	size, err := d.waitForDeviceSize(ctx, dev, e.requiredBytes)
	if err != nil {
		return 0, err
	}
	if block {
		klog.InfoS("Block volume has its new size", "volumeID", e.id, "device", dev, "bytes", size)
		return size, nil
	}
	if err := d.mounter.ResizeFilesystem(ctx, dev, e.path); err != nil {
		return 0, fmt.Errorf("growing the filesystem of volume %s: %w", e.id, err)
	}
	klog.InfoS("Expanded volume", "volumeID", e.id, "device", dev, "path", e.path, "bytes", size, "node", d.opts.NodeID)
	return size, nil
}

// waitForDeviceSize polls the device size until it reaches want (at once when want is 0).
func (d *Driver) waitForDeviceSize(ctx context.Context, dev string, want int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, deviceGrowthTimeout)
	defer cancel()
	tick := time.NewTicker(deviceGrowthPoll)
	defer tick.Stop()
	for {
		size, err := d.mounter.DeviceSize(dev)
		if err != nil {
			return 0, err
		}
		if size >= want {
			return size, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %s is %d bytes after the rescan, the volume needs %d; "+
				"check that the controller expanded the disk", ctx.Err(), dev, size, want)
		case <-tick.C:
		}
	}
}
