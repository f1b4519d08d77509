package rdssim

import (
	"errors"
	"os"
	"sort"
	"syscall"
)

// fileRemove implements /file remove: files, and directories only when
// empty. A file is removed even while a disk still uses it (what the real box
// does then is UNVERIFIED); the disk keeps printing its last known size.
func (s *Simulator) fileRemove(st *statement) error {
	return s.mutate(func(next *state) (bool, error) {
		targets, err := resolve(st.items, s.fileItems(next))
		if err != nil {
			return false, err
		}
		// Deepest first, so a find that matches a directory and its content
		// can remove both.
		sort.Slice(targets, func(i, j int) bool { return targets[i].name > targets[j].name })
		for _, it := range targets {
			e := it.ref.(*fileEntry)
			if e.rel == "" {
				return false, failure("%s is the mount point of a disk", e.name)
			}
			if next.readOnlyAt(e.rel) != nil {
				return false, errReadOnly
			}
			if next.subvolume(e.rel) != nil {
				return false, failure("%s is a btrfs subvolume, remove it with /disk btrfs subvolume remove", e.name)
			}
			if err := os.Remove(s.hostPathRel(e.rel)); err != nil {
				switch {
				case errors.Is(err, os.ErrNotExist):
				case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
					return false, failure("directory is not empty")
				default:
					return false, failure("can not remove %s: %v", e.name, osReason(err))
				}
			}
		}
		return false, nil
	})
}

// osReason is the bare reason of an os error ("no such file or directory"),
// without the path the console would not print.
func osReason(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
