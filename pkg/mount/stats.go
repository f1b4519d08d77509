package mount

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FilesystemStats reports the usage of the filesystem holding path.
func (m *Linux) FilesystemStats(path string) (FilesystemStats, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return FilesystemStats{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	// Block counts are in fragment-size units; ext4 and xfs use one size.
	unit := s.Frsize
	if unit == 0 {
		unit = s.Bsize
	}
	return FilesystemStats{
		TotalBytes:     int64(s.Blocks) * unit,
		UsedBytes:      int64(s.Blocks-s.Bfree) * unit,
		AvailableBytes: int64(s.Bavail) * unit,
		TotalInodes:    int64(s.Files),
		UsedInodes:     int64(s.Files - s.Ffree),
		FreeInodes:     int64(s.Ffree),
	}, nil
}

// DeviceSize returns the size of a block device in bytes (BLKGETSIZE64).
func (m *Linux) DeviceSize(device string) (int64, error) {
	if _, err := blockDeviceNumber(device); err != nil {
		return 0, err
	}
	fh, err := os.Open(device)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	size, err := blockDeviceSize(fh)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", device, err)
	}
	return size, nil
}
