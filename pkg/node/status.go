package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

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
func (n *Service) publishedPath(path string) (block bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("%w: %s does not exist", ErrNotOnNode, path)
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0 {
		return true, nil
	}
	mounted, err := n.mounter.IsMountPoint(path)
	if err != nil {
		return false, err
	}
	if !mounted {
		return false, fmt.Errorf("%w: nothing is mounted at %s", ErrNotOnNode, path)
	}
	return false, nil
}

// Usage is what NodeGetVolumeStats reports: the device size of a block volume, or bytes and inodes of a
// filesystem volume.
type Usage struct {
	Block     bool
	SizeBytes int64                 // block volumes
	FS        mount.FilesystemStats // filesystem volumes
}

// Stats reports bytes and inodes (statfs) of a filesystem volume, or the device size of a block one.
func (n *Service) Stats(id, path string) (Usage, error) {
	block, err := n.publishedPath(path)
	if err != nil {
		return Usage{}, err
	}
	if block {
		size, err := n.mounter.DeviceSize(path)
		if err != nil {
			return Usage{}, fmt.Errorf("size of block volume %s at %s: %w", id, path, err)
		}
		return Usage{Block: true, SizeBytes: size}, nil
	}
	st, err := n.mounter.FilesystemStats(path)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of volume %s at %s: %w", id, path, err)
	}
	return Usage{FS: st}, nil
}

// Reasons of the health problems; the CSI spec allows one entry per (status, reason).
const (
	ReasonNotLive    = "NVMeControllerNotLive"
	ReasonDeviceGone = "DeviceGone"
	ReasonStaleMount = "StaleMount"
)

// Problem is one reason a volume is inaccessible from this node, with every finding of that reason.
type Problem struct {
	Reason  string
	Message string
}

// Health checks the volume from this node: the NVMe controller must be live, the NQN must have a
// block device, and every mount among the given paths must sit on that device. A mount on another device
// is stale: it was made before a reconnect gave the namespace a new device, and its I/O goes nowhere.
//
// A volume that is neither connected nor mounted at a given path is not on this node (NotFound).
func (n *Service) Health(ctx context.Context, id, staging, published string) ([]Problem, error) {
	nqn := nvme.VolumeNQN(id)
	state, err := n.initiator.State(ctx, nqn)
	if err != nil {
		return nil, err
	}
	var mounted []string
	for _, p := range []string{staging, published} {
		if p == "" {
			continue
		}
		m, err := n.mounter.IsMountPoint(p)
		if err != nil {
			return nil, err
		}
		if m {
			mounted = append(mounted, p)
		}
	}
	if state == "" && len(mounted) == 0 {
		return nil, fmt.Errorf("%w: volume %s is neither connected nor mounted here", ErrNotOnNode, id)
	}

	var h healthReport
	if state != nvme.StateLive {
		h.add(ReasonNotLive, fmt.Sprintf("NVMe controller of %s is %s", nqn, describeState(state)))
	}
	dev, err := n.currentDevice(ctx, nqn)
	if err != nil {
		return nil, err
	}
	if dev == "" {
		h.add(ReasonDeviceGone, fmt.Sprintf("no block device for %s", nqn))
	}
	for _, p := range mounted {
		md, err := n.mounter.MountedDevice(p)
		switch {
		case errors.Is(err, mount.ErrDeviceGone):
			h.add(ReasonDeviceGone, fmt.Sprintf("%s sits on a device that no longer exists", p))
		case errors.Is(err, mount.ErrNotMounted):
			// Unmounted since it was looked at: nothing to judge.
		case err != nil:
			return nil, err
		case dev != "" && filepath.Clean(md) != filepath.Clean(dev):
			h.add(ReasonStaleMount, fmt.Sprintf("%s is mounted from %s, but %s is now %s; unstage and stage the volume again",
				p, md, nqn, dev))
		}
	}
	if len(h.reasons) > 0 {
		klog.V(2).InfoS("Volume unhealthy on this node", "volumeID", id, "problems", h.messages, "node", n.nodeID)
	}
	return h.problems(), nil
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

func (h *healthReport) problems() []Problem {
	var out []Problem
	for _, r := range h.reasons {
		out = append(out, Problem{Reason: r, Message: strings.Join(h.messages[r], "; ")})
	}
	return out
}

// ExpandRequest is a validated NodeExpandVolume.
type ExpandRequest struct {
	ID            string
	Path          string
	RequiredBytes int64
	Block         bool // from the capability; a path holding a device node says so too
}

// Expand rescans the namespace, waits until the device has the size the controller gave the disk and
// grows the filesystem on it. A block volume has nothing to grow: the pod sees the new size at once.
func (n *Service) Expand(ctx context.Context, e ExpandRequest) (int64, error) {
	nqn := nvme.VolumeNQN(e.ID)
	block, err := n.publishedPath(e.Path)
	if err != nil {
		return 0, err
	}
	block = block || e.Block
	dev, err := n.currentDevice(ctx, nqn)
	if err != nil {
		return 0, err
	}
	if dev == "" {
		return 0, fmt.Errorf("%w: no block device for %s", ErrNotStaged, nqn)
	}
	if err := n.initiator.Rescan(ctx, nqn); err != nil {
		return 0, fmt.Errorf("rescanning volume %s: %w", e.ID, err)
	}
	size, err := n.waitForDeviceSize(ctx, dev, e.RequiredBytes)
	if err != nil {
		return 0, err
	}
	if block {
		klog.InfoS("Block volume has its new size", "volumeID", e.ID, "device", dev, "bytes", size)
		return size, nil
	}
	if err := n.mounter.ResizeFilesystem(ctx, dev, e.Path); err != nil {
		return 0, fmt.Errorf("growing the filesystem of volume %s: %w", e.ID, err)
	}
	klog.InfoS("Expanded volume", "volumeID", e.ID, "device", dev, "path", e.Path, "bytes", size, "node", n.nodeID)
	return size, nil
}

// waitForDeviceSize polls the device size until it reaches want (at once when want is 0).
func (n *Service) waitForDeviceSize(ctx context.Context, dev string, want int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, deviceGrowthTimeout)
	defer cancel()
	tick := time.NewTicker(deviceGrowthPoll)
	defer tick.Stop()
	for {
		size, err := n.mounter.DeviceSize(dev)
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
