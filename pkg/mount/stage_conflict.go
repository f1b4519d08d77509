package mount

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrStagedElsewhere is returned when a filesystem volume is already mounted on this node at paths other than the staging
// path asked for.
var ErrStagedElsewhere = errors.New("volume is already staged at another path")

// CheckStageConflict decides whether a filesystem volume may be staged at staging, given mounts, every mount
// point of the volume's device now (Mounter.DeviceMountPoints with the staging path). A second staging mount
// of one device is refused: two mounts of one filesystem at two staging paths leave the node unable to
// unstage either (each unstage sees the other as a live user of the device) and need a human. A repeated
// stage at a path that already mounts the device is no conflict, whatever else is mounted from it (its
// publishes). The error wraps ErrStagedElsewhere and names where the volume is mounted.
func CheckStageConflict(volumeID, staging string, mounts []string) error {
	if len(mounts) == 0 {
		return nil
	}
	want := realPath(staging)
	for _, m := range mounts {
		if realPath(m) == want {
			return nil
		}
	}
	return fmt.Errorf("%w: volume %s is mounted at %s on this node; unstage it there before staging it at %s",
		ErrStagedElsewhere, volumeID, strings.Join(mounts, ", "), staging)
}

// realPath is p as the kernel prints mount points: absolute, clean, symlinks resolved where p exists.
func realPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
