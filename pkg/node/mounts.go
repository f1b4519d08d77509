package node

import (
	"fmt"
	"path/filepath"
)

// volumeMounts lists where a volume is mounted on this node: every mount on dev (the NQN's device now, ""
// if it has none) and on the device under the mount at staging, which differs from dev when the staging
// mount outlived a reconnect. The mount table is read by pkg/mount (mount.Mounter.DeviceMountPoints), which
// knows how binds of a filesystem and device nodes bound for raw block show there.
func (n *Service) volumeMounts(id, dev, staging string) ([]string, error) {
	mounts, err := n.mounter.DeviceMountPoints(dev, staging)
	if err != nil {
		return nil, fmt.Errorf("listing the mounts of volume %s: %w", id, err)
	}
	return mounts, nil
}

// otherThan returns the mount points that are none of paths. Paths are compared cleaned and with symlinks
// resolved, as the kernel prints mount points.
func otherThan(mounts []string, paths ...string) []string {
	skip := map[string]bool{}
	for _, p := range paths {
		if p != "" {
			skip[canonicalPath(p)] = true
		}
	}
	var out []string
	for _, m := range mounts {
		if !skip[canonicalPath(m)] {
			out = append(out, m)
		}
	}
	return out
}

func canonicalPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return filepath.Clean(p)
}
