package driver

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	mountutils "k8s.io/mount-utils"
)

// volumeMountLister finds every mount of a volume's device on this host. mount.Mounter has no such query,
// so the node reads the host's mount table itself (hostMounts); the method is unexported so that only the
// test fakes of this package can stand in for the host table.
type volumeMountLister interface {
	// volumeMounts lists the mount points of every mount on device (the NQN's device now, "" if it has
	// none) or on the device under the mount at stagingPath, which differs from device when the staging
	// mount went stale over a reconnect.
	volumeMounts(device, stagingPath string) ([]string, error)
}

func (d *Driver) mountLister() volumeMountLister {
	if l, ok := d.mounter.(volumeMountLister); ok {
		return l
	}
	return hostMounts{mountInfo: "/proc/self/mountinfo", devRoot: "/dev"}
}

// hostMounts reads the mount table of this process's mount namespace, which for the node plugin is the
// host's (it runs with the host's /var/lib/kubelet mounted bidirectionally).
type hostMounts struct {
	mountInfo string
	devRoot   string
	// blockDevice returns a block device node's number; nil means stat(2). Tests give a table instead.
	blockDevice func(path string) (uint64, bool)
}

func (h hostMounts) deviceNumber(path string) (uint64, bool) {
	if h.blockDevice != nil {
		return h.blockDevice(path)
	}
	return blockDevice(path)
}

func (h hostMounts) volumeMounts(device, stagingPath string) ([]string, error) {
	infos, err := mountutils.ParseMountInfo(h.mountInfo)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", h.mountInfo, err)
	}
	want := map[uint64]bool{}
	if device != "" {
		if n, ok := h.deviceNumber(device); ok {
			want[n] = true
		}
	}
	if stagingPath != "" {
		if n, ok := h.deviceOf(mountAt(infos, stagingPath)); ok {
			want[n] = true
		}
	}
	return h.mountsOn(infos, want), nil
}

// mountsOn returns the unescaped mount points of the mounts that sit on one of the wanted devices.
func (h hostMounts) mountsOn(infos []mountutils.MountInfo, want map[uint64]bool) []string {
	if len(want) == 0 {
		return nil
	}
	var out []string
	for i := range infos {
		if n, ok := h.deviceOf(&infos[i]); ok && want[n] {
			out = append(out, unescapeMountPath(infos[i].MountPoint))
		}
	}
	return out
}

// deviceOf is the block device number a mount sits on. A filesystem mount, and every bind of it, shows the
// device's major:minor. A device node bound onto a file (raw block publish) shows devtmpfs with the node's
// name as the mount's root, so the node is looked up; a node that is gone (root ending in //deleted, or no
// such file) cannot be matched and is skipped. Anonymous devices (major 0: tmpfs, proc, ...) never hold a
// volume.
func (h hostMounts) deviceOf(info *mountutils.MountInfo) (uint64, bool) {
	if info == nil {
		return 0, false
	}
	if info.FsType == "devtmpfs" && info.Root != "/" {
		root := unescapeMountPath(info.Root)
		if strings.HasSuffix(root, "//deleted") {
			return 0, false
		}
		return h.deviceNumber(filepath.Join(h.devRoot, root))
	}
	if info.Major == 0 {
		return 0, false
	}
	return unix.Mkdev(uint32(info.Major), uint32(info.Minor)), true
}

// mountAt returns the topmost mount at path (mountinfo lists mounts in the order they were made).
func mountAt(infos []mountutils.MountInfo, path string) *mountutils.MountInfo {
	want := canonicalPath(path)
	var found *mountutils.MountInfo
	for i := range infos {
		if unescapeMountPath(infos[i].MountPoint) == want {
			found = &infos[i]
		}
	}
	return found
}

// blockDevice returns the device number of a block device node.
func blockDevice(path string) (uint64, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, false
	}
	return st.Rdev, true
}

// unescapeMountPath undoes the kernel's octal escapes in mountinfo paths (\040 space, \011 tab, \012
// newline, \134 backslash). A backslash that does not start such an escape stays as it is.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctalDigit(s[i+2]) && isOctalDigit(s[i+3]) {
			b = append(b, (s[i+1]-'0')<<6|(s[i+2]-'0')<<3|(s[i+3]-'0'))
			i += 3
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isOctalDigit(c byte) bool { return c >= '0' && c <= '7' }
