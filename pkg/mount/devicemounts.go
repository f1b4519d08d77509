package mount

import (
	"fmt"

	mountutils "k8s.io/mount-utils"
)

// DeviceMountPoints lists, in mount-table order and unescaped, the mount
// points of every mount on device and, when mountPath is set, on the device
// under the mount at mountPath.
//
// Devices are compared by number, which is what the mount table records:
// the path a device was mounted by says nothing (a /dev/disk/by-id link, a
// name reused after a reconnect). The device under mountPath is read from
// the table too, so a staging mount whose device was removed by a reconnect
// still finds the publish binds made from it; those are what an unstage
// must not pull the connection from under. A device that is not a block
// device (gone already) adds nothing to look for; a mount table that
// cannot be read is an error, since the caller acts on the answer.
func (m *Linux) DeviceMountPoints(device, mountPath string) ([]string, error) {
	infos, err := mountutils.ParseMountInfo(m.opts.MountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", m.opts.MountInfoPath, err)
	}
	want := map[uint64]bool{}
	if device != "" {
		if devno, err := m.deviceNumber(device); err == nil {
			want[devno] = true
		}
	}
	if mountPath != "" {
		if info := findMount(infos, mountPointCandidates(mountPath)); info != nil {
			if devno, err := m.sourceDevice(info); err == nil && devno != 0 {
				want[devno] = true
			}
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	var out []string
	for i := range infos {
		// A bind of a device node that was removed cannot be matched: the
		// table keeps only the node's old name.
		if devno, err := m.sourceDevice(&infos[i]); err == nil && want[devno] {
			out = append(out, unescapeMountPath(infos[i].MountPoint))
		}
	}
	return out, nil
}
