package mount

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// filesystemType returns the filesystem blkid finds on device; unlike probe
// it needs a positive answer.
func (m *Linux) filesystemType(ctx context.Context, device string) (string, error) {
	out, err := m.run.Run(ctx, "blkid", "-p", "-s", "TYPE", "-o", "export", device)
	if err != nil {
		return "", fmt.Errorf("finding the filesystem on %s: %w", device, err)
	}
	fsType, _ := parseBlkidExport(out)
	if fsType == "" {
		return "", fmt.Errorf("no filesystem type found on %s: %q", device, out)
	}
	return fsType, nil
}

// growthTarget checks what ResizeFilesystem and NeedsResize work on: a
// block device and, with mountPath set, a mount of that very device (growing
// the wrong filesystem would be silent). It returns the filesystem type:
// the mounted one's from the mount table, else what blkid finds.
func (m *Linux) growthTarget(ctx context.Context, device, mountPath string) (string, error) {
	want, err := blockDeviceNumber(device)
	if err != nil {
		return "", err
	}
	if mountPath == "" {
		return m.filesystemType(ctx, device)
	}
	devno, info, err := m.mountedDeviceNumber(mountPath)
	if err != nil {
		return "", err
	}
	if devno != want {
		return "", fmt.Errorf("%s is not a mount of %s (it is device %d:%d)", mountPath, device, unix.Major(devno), unix.Minor(devno))
	}
	return info.FsType, nil
}

// ResizeFilesystem grows the filesystem on device to the device's size. The
// caller rescans the device first, so the device already has its new size.
//
// With mountPath set, it must be a mount of device; ext4 then grows online
// and xfs through xfs_growfs on the mount. With mountPath "", resize2fs
// works on the device alone (offline when it is not mounted); xfs cannot
// grow unmounted.
func (m *Linux) ResizeFilesystem(ctx context.Context, device, mountPath string) error {
	fsType, err := m.growthTarget(ctx, device, mountPath)
	if err != nil {
		return err
	}
	start := time.Now()
	switch fsType {
	case "ext2", "ext3", FSTypeExt4:
		if _, err := m.run.RunTimeout(ctx, m.opts.LongTimeout, "resize2fs", device); err != nil {
			return err
		}
	case FSTypeXFS:
		if mountPath == "" {
			return fmt.Errorf("%w: xfs on %s can only grow while mounted", ErrUnsupported, device)
		}
		if _, err := m.run.RunTimeout(ctx, m.opts.LongTimeout, "xfs_growfs", "-d", mountPath); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: growing %s filesystems (on %s)", ErrUnsupported, fsType, device)
	}
	klog.InfoS("Grew filesystem", "device", device, "mountPath", mountPath, "fsType", fsType, "duration", time.Since(start))
	return nil
}

// NeedsResize reports whether growing the filesystem on device would make
// it larger: whether the device has room past the filesystem's end beyond
// what resize2fs or xfs_growfs would leave unused (a last group too short
// for its own bookkeeping, which mkfs leaves out as well). So a fresh
// filesystem, or one grown before, reads as not needing it, and a caller
// that checks at every mount runs no growth tool for nothing.
//
// ext is read from the superblock (dumpe2fs -h), xfs from the mounted
// filesystem (xfs_io statfs, the kernel's geometry, so mountPath is
// required). Only reads are made, so it is safe on a mounted device.
func (m *Linux) NeedsResize(ctx context.Context, device, mountPath string) (bool, error) {
	fsType, err := m.growthTarget(ctx, device, mountPath)
	if err != nil {
		return false, err
	}
	var geom fsGeometry
	switch fsType {
	case "ext2", "ext3", FSTypeExt4:
		out, err := m.run.Run(ctx, "dumpe2fs", "-h", device)
		if err != nil {
			return false, fmt.Errorf("reading the size of the filesystem on %s: %w", device, err)
		}
		if geom, err = parseDumpe2fs(out); err != nil {
			return false, fmt.Errorf("%s: %w", device, err)
		}
	case FSTypeXFS:
		if mountPath == "" {
			return false, fmt.Errorf("%w: the size of xfs on %s can only be read while mounted", ErrUnsupported, device)
		}
		out, err := m.run.Run(ctx, "xfs_io", "-r", "-c", "statfs", mountPath)
		if err != nil {
			return false, fmt.Errorf("reading the size of the filesystem at %s: %w", mountPath, err)
		}
		if geom, err = parseXFSStatfs(out); err != nil {
			return false, fmt.Errorf("%s: %w", mountPath, err)
		}
	default:
		return false, fmt.Errorf("%w: growing %s filesystems (on %s)", ErrUnsupported, fsType, device)
	}
	size, err := m.DeviceSize(device)
	if err != nil {
		return false, err
	}
	pageBlocks := int64(1)
	if fsType != FSTypeXFS {
		pageBlocks = max(1, int64(os.Getpagesize())/geom.blockSize)
	}
	grown := geom.grownBlocks(size, pageBlocks)
	klog.V(4).InfoS("Filesystem size", "device", device, "fsType", fsType, "deviceBytes", size,
		"filesystemBytes", geom.blocks*geom.blockSize, "grownBytes", grown*geom.blockSize)
	return grown > geom.blocks, nil
}
