package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
	mountutils "k8s.io/mount-utils"
)

// mountAt returns the topmost mount whose mount point is path, or nil.
//
// It reads /proc/self/mountinfo instead of comparing st_dev with the parent
// directory: that comparison misses bind mounts within one filesystem and
// stats a possibly dead mount, which can block or fail with EIO.
func (m *Linux) mountAt(path string) (*mountutils.MountInfo, error) {
	infos, err := mountutils.ParseMountInfo(m.opts.MountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", m.opts.MountInfoPath, err)
	}
	return findMount(infos, mountPointCandidates(path)), nil
}

// mountPointCandidates is path as the kernel may print it: cleaned and
// absolute, and with symlinks resolved (the kernel prints the real path).
func mountPointCandidates(path string) []string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	out := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		out = append(out, real)
	}
	return out
}

// findMount returns the last (topmost, since mountinfo lists mounts in the
// order they were made) entry mounted at one of the candidate paths.
func findMount(infos []mountutils.MountInfo, candidates []string) *mountutils.MountInfo {
	var found *mountutils.MountInfo
	for i := range infos {
		if slices.Contains(candidates, unescapeMountPath(infos[i].MountPoint)) {
			found = &infos[i]
		}
	}
	return found
}

// unescapeMountPath undoes the kernel's escaping of mountinfo paths: space,
// tab, newline and backslash print as \040, \011, \012 and \134. Anything
// else after a backslash is kept as it is.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		// \ooo with a first digit of 0-3 is one byte; anything else is
		// not an escape the kernel makes and stays literal.
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b = append(b, (s[i+1]-'0')<<6|(s[i+2]-'0')<<3|(s[i+3]-'0'))
			i += 3
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

func isReadOnly(info *mountutils.MountInfo) bool {
	return slices.Contains(info.MountOptions, "ro")
}

// IsMountPoint reports whether path is a mount point. A missing path is not.
func (m *Linux) IsMountPoint(path string) (bool, error) {
	info, err := m.mountAt(path)
	return info != nil, err
}

// mountedDeviceNumber returns the device number under the mount at path:
// for a bound device node (raw block publish) the node's rdev, otherwise
// what the mount table says (sourceDevice).
func (m *Linux) mountedDeviceNumber(path string) (uint64, *mountutils.MountInfo, error) {
	info, err := m.mountAt(path)
	if err != nil {
		return 0, nil, err
	}
	if info == nil {
		return 0, nil, fmt.Errorf("%s: %w", path, ErrNotMounted)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return st.Rdev, info, nil
	}
	devno, err := m.sourceDevice(info)
	if err != nil {
		return 0, info, fmt.Errorf("%s %w", path, err)
	}
	return devno, info, nil
}

// sourceDevice returns the number of the block device a mount sits on, from
// the mount table alone: the mount point is never stat'ed, since a mount of
// a dead device can block or fail with EIO. A filesystem mount and every
// bind of it show the device's major:minor. A device node bound onto a file
// (raw block publish) shows as a devtmpfs mount whose root names the node,
// which is looked up in DevRoot; a node that is gone is ErrDeviceGone. A
// mount on no block device (tmpfs, proc: major 0) gives 0.
func (m *Linux) sourceDevice(info *mountutils.MountInfo) (uint64, error) {
	if info.FsType == "devtmpfs" && info.Root != "/" {
		root := unescapeMountPath(info.Root)
		if strings.HasSuffix(root, deletedRootSuffix) {
			return 0, fmt.Errorf("is bound to %s, which was removed: %w", strings.TrimSuffix(root, deletedRootSuffix), ErrDeviceGone)
		}
		devno, err := m.deviceNumber(filepath.Join(m.opts.DevRoot, root))
		if err != nil {
			return 0, fmt.Errorf("is bound to %s: %s: %w", root, err.Error(), ErrDeviceGone)
		}
		return devno, nil
	}
	if info.Major <= 0 || info.Minor < 0 {
		return 0, nil
	}
	return unix.Mkdev(uint32(info.Major), uint32(info.Minor)), nil
}

// deletedRootSuffix is how mountinfo marks a bind whose source was unlinked.
const deletedRootSuffix = "//deleted"

// MountedDevice resolves the block device under the mount at path through
// /sys/dev/block/MAJ:MIN, which names the device the kernel really has
// mounted, whatever path it was mounted by.
func (m *Linux) MountedDevice(path string) (string, error) {
	devno, info, err := m.mountedDeviceNumber(path)
	if err != nil {
		return "", err
	}
	major, minor := unix.Major(devno), unix.Minor(devno)
	if major == 0 {
		return "", fmt.Errorf("%s is a %s mount of %s, not backed by a block device", path, info.FsType, info.Source)
	}
	link := filepath.Join(m.opts.SysfsRoot, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	target, err := os.Readlink(link)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is mounted from device %d:%d (%s): %w", path, major, minor, info.Source, ErrDeviceGone)
	}
	if err != nil {
		return "", err
	}
	dev := filepath.Join(m.opts.DevRoot, filepath.Base(target))
	if _, err := os.Stat(dev); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s is mounted from %s, which has no device node: %w", path, dev, ErrDeviceGone)
	}
	return dev, nil
}

// blockDeviceNumber returns the device number of a block device node.
func blockDeviceNumber(device string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: device, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s is not a block device", device)
	}
	return st.Rdev, nil
}
