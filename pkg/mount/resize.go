package mount

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// filesystemType returns the filesystem blkid finds on device; unlike probe
// it needs a positive answer.
func (m *Linux) filesystemType(ctx context.Context, device string) (string, error) {
	out, err := m.run.do(ctx, m.opts.Timeout, "blkid", "-p", "-s", "TYPE", "-o", "export", device)
	if err != nil {
		return "", fmt.Errorf("finding the filesystem on %s: %w", device, err)
	}
	fsType, _ := parseBlkidExport(out)
	if fsType == "" {
		return "", fmt.Errorf("no filesystem type found on %s: %q", device, out)
	}
	return fsType, nil
}

// ResizeFilesystem grows the filesystem on device to the device's size. The
// caller rescans the device first, so the device already has its new size.
//
// With mountPath set, it must be a mount of device (growing the wrong
// filesystem would be silent); ext4 then grows online and xfs through
// xfs_growfs on the mount. With mountPath "", resize2fs works on the device
// alone (offline when it is not mounted); xfs cannot grow unmounted.
func (m *Linux) ResizeFilesystem(ctx context.Context, device, mountPath string) error {
	want, err := blockDeviceNumber(device)
	if err != nil {
		return err
	}
	if mountPath != "" {
		devno, _, err := m.mountedDeviceNumber(mountPath)
		if err != nil {
			return err
		}
		if devno != want {
			return fmt.Errorf("%s is not a mount of %s (it is device %d:%d)", mountPath, device, unix.Major(devno), unix.Minor(devno))
		}
	}
	fsType, err := m.filesystemType(ctx, device)
	if err != nil {
		return err
	}
	start := time.Now()
	switch fsType {
	case "ext2", "ext3", FSTypeExt4:
		if _, err := m.run.do(ctx, m.opts.LongTimeout, "resize2fs", device); err != nil {
			return err
		}
	case FSTypeXFS:
		if mountPath == "" {
			return fmt.Errorf("%w: xfs on %s can only grow while mounted", ErrUnsupported, device)
		}
		if _, err := m.run.do(ctx, m.opts.LongTimeout, "xfs_growfs", "-d", mountPath); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: growing %s filesystems (on %s)", ErrUnsupported, fsType, device)
	}
	klog.InfoS("Grew filesystem", "device", device, "mountPath", mountPath, "fsType", fsType, "duration", time.Since(start))
	return nil
}
