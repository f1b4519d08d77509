// Package mount puts RDS volumes to use on a node: it formats a device only
// when it is provably blank, mounts it with the volume capability's
// filesystem and flags, bind-mounts staging paths and raw block devices into
// pods, grows filesystems (and tells when one is smaller than its device),
// reports usage, tells which device a mount really sits on so the node can
// spot stale mounts, and lists every mount of a device.
//
// It builds on k8s.io/mount-utils (mountinfo parsing, mount argument
// construction), but runs every external command itself, under a context
// timeout, through an exec seam.
package mount

import (
	"context"
	"errors"
	"time"

	utilexec "k8s.io/utils/exec"

	"github.com/rds-csi/rds-csi/pkg/hostcmd"
)

// Mounter is what the node service needs from the host's mount table and
// filesystem tools. Every mutating method is idempotent.
type Mounter interface {
	// FormatAndMount mounts device at target (a directory, created if
	// missing) as fsType ("ext4", "xfs"; "" means ext4) with mountFlags.
	// A device is formatted only if it is provably blank; a device that
	// is already mounted at target is left alone (no probe, no fsck).
	// formatted tells whether this call made the filesystem: only a
	// filesystem that existed before can be smaller than its device.
	FormatAndMount(ctx context.Context, device, target, fsType string, mountFlags []string, readOnly bool) (formatted bool, err error)
	// BindMount bind-mounts the directory source onto target.
	BindMount(ctx context.Context, source, target string, readOnly bool, mountFlags []string) error
	// PublishBlock creates targetFile and binds the device node onto it.
	PublishBlock(ctx context.Context, device, targetFile string, readOnly bool) error
	// Unmount unmounts target (all stacked mounts) and removes it. A
	// missing or unmounted target is success.
	Unmount(ctx context.Context, target string) error
	// IsMountPoint reports whether path is a mount point (false for a
	// missing path).
	IsMountPoint(path string) (bool, error)
	// MountedDevice returns the /dev path of the block device under the
	// mount at path, for filesystem mounts and bound device nodes alike.
	MountedDevice(path string) (string, error)
	// DeviceMountPoints lists the mount points of every mount on device
	// (a /dev path; "" for none): filesystem mounts of it, bind mounts of
	// those, and the device node bound onto a file. With mountPath set,
	// the mounts on the device under the mount at mountPath count too; it
	// differs from device when that mount outlived a reconnect that gave
	// the volume a new device.
	DeviceMountPoints(device, mountPath string) ([]string, error)
	// NeedsResize reports whether the filesystem on device, mounted at
	// mountPath, is smaller than the device by enough that
	// ResizeFilesystem would grow it.
	NeedsResize(ctx context.Context, device, mountPath string) (bool, error)
	// ResizeFilesystem grows the filesystem on device to fill it: ext4
	// with resize2fs (online if mounted), xfs with xfs_growfs on
	// mountPath (xfs can only grow mounted).
	ResizeFilesystem(ctx context.Context, device, mountPath string) error
	// FilesystemStats reports capacity and inode usage of the filesystem
	// holding path.
	FilesystemStats(path string) (FilesystemStats, error)
	// DeviceSize returns the size of a block device in bytes.
	DeviceSize(device string) (int64, error)
}

// Errors callers distinguish with errors.Is.
var (
	// ErrNotBlank: the device holds something other than what was asked
	// for (another filesystem, a partition table, unrecognised data); it
	// is never formatted.
	ErrNotBlank = errors.New("device is not blank")
	// ErrUncertain: whether the device is blank could not be established
	// (probe failed, device missing or unreadable); it is never formatted.
	ErrUncertain = errors.New("cannot tell whether the device is blank")
	// ErrTargetBusy: something other than the requested source is mounted
	// at the target, or with other options.
	ErrTargetBusy = errors.New("target already has a different mount")
	// ErrNotMounted: the path is not a mount point.
	ErrNotMounted = errors.New("not a mount point")
	// ErrDeviceGone: the mount sits on a block device that no longer
	// exists (an NVMe namespace removed under a live mount).
	ErrDeviceGone = errors.New("mounted block device no longer exists")
	// ErrUnsupported: a filesystem type or mount flag this driver does not
	// handle.
	ErrUnsupported = errors.New("unsupported")
)

// Filesystem types the driver formats and mounts.
const (
	FSTypeExt4 = "ext4"
	FSTypeXFS  = "xfs"
	// DefaultFSType is used when the volume capability names none.
	DefaultFSType = FSTypeExt4
)

// FilesystemStats is the usage of one filesystem, in bytes and inodes.
type FilesystemStats struct {
	TotalBytes     int64
	UsedBytes      int64
	AvailableBytes int64 // to unprivileged users (reserved blocks excluded)
	TotalInodes    int64
	UsedInodes     int64
	FreeInodes     int64
}

// Options configures Linux. Zero fields take the defaults shown.
type Options struct {
	// Exec runs mount, umount, blkid, mkfs and resize tools.
	Exec utilexec.Interface
	// Timeout bounds quick commands (blkid, mount, umount). Default 1 min.
	Timeout time.Duration
	// LongTimeout bounds mkfs and filesystem growth, which scale with the
	// volume size (mkfs also discards the whole device). Default 10 min.
	LongTimeout   time.Duration
	MountInfoPath string // "/proc/self/mountinfo"
	SysfsRoot     string // "/sys"
	DevRoot       string // "/dev"
}

// Linux is the Mounter for a Linux node.
type Linux struct {
	opts Options
	run  hostcmd.Runner
	// deviceNumber returns the number of a block device node. It is
	// blockDeviceNumber; the mount-table tests give a table instead, as
	// they name devices this machine does not have.
	deviceNumber func(path string) (uint64, error)
}

var _ Mounter = (*Linux)(nil)

// NewLinux returns the Linux Mounter.
func NewLinux(opts Options) *Linux {
	if opts.Exec == nil {
		opts.Exec = utilexec.New()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.LongTimeout <= 0 {
		opts.LongTimeout = 10 * time.Minute
	}
	if opts.MountInfoPath == "" {
		opts.MountInfoPath = "/proc/self/mountinfo"
	}
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/sys"
	}
	if opts.DevRoot == "" {
		opts.DevRoot = "/dev"
	}
	return &Linux{opts: opts, run: hostcmd.Runner{Exec: opts.Exec, Timeout: opts.Timeout}, deviceNumber: blockDeviceNumber}
}
