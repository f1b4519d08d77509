package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadPath is returned for a staging or target path the node refuses to mount on or unmount (relative,
// not clean, a symlink, or inside a kernel pseudo-filesystem).
var ErrBadPath = errors.New("path refused")

// pseudoRoots are trees whose entries are the kernel's view of processes and devices: /proc/self/cwd is the
// driver's own working directory, /proc/<pid>/root another process's root. Kubelet never names a path in
// them, and a mount there hides what the node itself reads.
var pseudoRoots = []string{"/proc", "/sys", "/dev"}

// CheckTargetPath decides whether a staging_target_path or target_path from the CO may be mounted on or
// unmounted. Kubelet always sends absolute, clean paths under its own directory; anything else is a
// mistake or an attack, and following it would mount the volume somewhere the CO never asked for:
//   - a relative path resolves against the driver's working directory;
//   - ".." or "." elements, double or trailing slashes: the path is not the one the CO will unmount later;
//   - a symlink at the last element: mount(2) follows it, so a link to /etc would hide /etc (only the last
//     element is checked: a kubelet directory that is itself a symlink, as on some distributions, is fine);
//   - /proc, /sys and /dev: /proc/self/cwd is the driver's own directory.
//
// A path that does not exist yet passes (stage and publish create it; unpublish of a gone path succeeds).
// The error wraps ErrBadPath and names what was wrong.
func CheckTargetPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: the path is empty", ErrBadPath)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%w: %q holds a NUL byte", ErrBadPath, p)
	case !filepath.IsAbs(p):
		return fmt.Errorf("%w: %q is not an absolute path", ErrBadPath, p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("%w: %q is not a clean path (it has '.', '..', a double or a trailing slash; %q is clean)",
			ErrBadPath, p, filepath.Clean(p))
	case p == "/":
		return fmt.Errorf("%w: the root directory cannot be a volume path", ErrBadPath)
	}
	for _, root := range pseudoRoots {
		if p == root || strings.HasPrefix(p, root+"/") {
			return fmt.Errorf("%w: %q is inside %s, which is the kernel's, not a place for volumes", ErrBadPath, p, root)
		}
	}
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%w: %q cannot be inspected: %w", ErrBadPath, p, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		return fmt.Errorf("%w: %q is a symbolic link (to %q); the volume would be mounted over the link's target",
			ErrBadPath, p, target)
	}
	return nil
}
