package rdssim

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// errNotBtrfs is what subvolume commands answer on an xfs pool. The real text
// is UNVERIFIED; this one says what is wrong.
var errNotBtrfs = failure("not a btrfs filesystem")

// errNoParent is what subvolume add answers under SubvolumeAddParents=refuse when the directory that would
// hold the new subvolume does not exist. The real text is UNVERIFIED (btrfs itself says "No such file or
// directory").
var errNoParent = failure("parent directory does not exist")

// subvolumeAdd implements /disk btrfs subvolume add: an empty subvolume, or a
// snapshot of parent= (read-only with read-only=yes) whose files are really
// copied: reflinked where the host filesystem can, else copied sparsely.
func (s *Simulator) subvolumeAdd(x *execCtx, st *statement) error {
	a := st.args
	if a["parent"] != "" {
		defer s.forgetAllocated() // a snapshot copies files
	}
	switch {
	case a["fs"] == "":
		return failure("fs must be specified")
	case a["name"] == "":
		return failure("name must be specified")
	}
	readOnly, _ := parseBool(a["read-only"])
	keys := []string{}
	if rel, err := s.subvolumeName(a["name"]); err == nil {
		keys = append(keys, "file "+rel)
	}
	if a["parent"] != "" {
		// The parent's files are copied outside the state lock: a command on the parent waits for the copy.
		if src, err := s.parentOf(s.published(), a["parent"]); err == nil {
			keys = append(keys, "file "+src.Name)
		}
	}
	unlock := s.slotLocks.lock(keys...)
	defer unlock()
	cur := s.published()
	rel, host, err := s.subvolumeAddable(x, cur, a)
	if err != nil {
		return err
	}
	sv := &subvolumeRecord{Name: rel, FS: cur.Pool.Name, ReadOnly: readOnly, UUID: newUUID(), Created: time.Now()}
	// The directory, or the snapshot's copy, is made outside the state lock: commands on other disks and
	// subvolumes do not wait for it.
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return failure("can not create directory: %v", osReason(err))
	}
	if a["parent"] == "" {
		if err := os.Mkdir(host, 0o755); err != nil {
			return failure("can not create subvolume: %v", osReason(err))
		}
	} else if err := s.snapshot(cur, a["parent"], sv, host); err != nil {
		return err
	}
	if s.fileHook != nil {
		s.fileHook(rel)
	}
	err = s.mutate(func(next *state) (bool, error) {
		if next.subvolume(rel) != nil {
			return false, errAlreadyExists
		}
		if next.readOnlyAt(rel) != nil {
			return false, errReadOnly
		}
		sv.Index, sv.ID = next.NextSubvolIndex, next.NextSubvolID
		next.NextSubvolIndex++
		next.NextSubvolID++
		next.Subvolumes = append(next.Subvolumes, sv)
		return true, nil
	})
	if err != nil {
		_ = os.RemoveAll(host)
	}
	return err
}

// subvolumeAddable checks a subvolume add against st and returns the subvolume's path below the pool and
// on the host.
func (s *Simulator) subvolumeAddable(x *execCtx, st *state, a map[string]string) (rel, host string, err error) {
	// fs= is the filesystem's label, not the mount point (manual, "Btrfs": "the Btrfs disk label
	// found under /disk/btrfs/filesystem print").
	if a["fs"] != st.Pool.Label {
		return "", "", noMatchingValue("fs")
	}
	if st.Pool.FS != "btrfs" {
		return "", "", errNotBtrfs
	}
	if rel, err = s.subvolumeName(a["name"]); err != nil {
		return "", "", err
	}
	if st.subvolume(rel) != nil {
		return "", "", errAlreadyExists
	}
	host = s.hostPathRel(rel)
	if _, err := os.Lstat(host); err == nil {
		return "", "", errAlreadyExists
	}
	if st.readOnlyAt(rel) != nil {
		return "", "", errReadOnly
	}
	if _, hit := s.takeFault(FaultDiskFull, x.texts...); hit {
		return "", "", errNotEnoughSpace
	}
	// Whether the real box makes missing parent directories is UNVERIFIED: Config.SubvolumeAddParents.
	if s.cfg.SubvolumeAddParents == ParentsRefuse {
		if fi, err := os.Stat(filepath.Dir(host)); err != nil || !fi.IsDir() {
			return "", "", errNoParent
		}
	}
	return rel, host, nil
}

// subvolumeName checks a name relative to the pool ("k8s/pvc-1").
func (s *Simulator) subvolumeName(name string) (string, error) {
	_, rel, err := s.splitPoolPath(s.poolName + "/" + strings.TrimPrefix(name, "/"))
	if err != nil || rel == "" {
		return "", failure("invalid subvolume name")
	}
	return rel, nil
}

// parentOf finds the subvolume parent= names: by its leaf (the manual's form, parent=Documents) or by its
// path below the pool, as Config.SubvolumeParent says. A leaf that several subvolumes share is refused
// (what the real box does then is UNVERIFIED).
func (s *Simulator) parentOf(next *state, parent string) (*subvolumeRecord, error) {
	if s.cfg.SubvolumeParent == NamePath {
		prel, err := s.subvolumeName(parent)
		if err != nil {
			return nil, err
		}
		if src := next.subvolume(prel); src != nil {
			return src, nil
		}
		return nil, errNoSuchItem
	}
	var found *subvolumeRecord
	for _, sv := range next.Subvolumes {
		if path.Base(sv.Name) != parent {
			continue
		}
		if found != nil {
			return nil, failure("ambiguous value of parent, more than one valid value matches")
		}
		found = sv
	}
	if found == nil {
		return nil, errNoSuchItem
	}
	return found, nil
}

func (s *Simulator) snapshot(next *state, parent string, sv *subvolumeRecord, host string) error {
	src, err := s.parentOf(next, parent)
	if err != nil {
		return err
	}
	prel := src.Name
	srcHost := s.hostPathRel(prel)
	if need := treeAllocated(srcHost); need > s.freeBytes(next.Pool.Size) {
		return errNotEnoughSpace
	}
	// Like btrfs, a snapshot does not descend into nested subvolumes: they
	// show up as empty directories.
	nested := func(rel string) bool { return next.subvolume(prel+"/"+rel) != nil }
	if err := copyTree(srcHost, host, nested); err != nil {
		_ = os.RemoveAll(host)
		return failure("snapshot failed: %v", osReason(err))
	}
	sv.Parent, sv.ParentUUID = src.Name, src.UUID
	return nil
}

// subvolumeRemove implements /disk btrfs subvolume remove: the subvolume's
// directory tree goes. It refuses while a disk still uses a file inside or a
// nested subvolume exists (both UNVERIFIED on hardware; btrfs itself refuses
// the second).
func (s *Simulator) subvolumeRemove(st *statement) error {
	defer s.forgetAllocated()
	return s.mutate(func(next *state) (bool, error) {
		targets, err := resolve(st.items, s.subvolumeItems(next))
		if err != nil {
			return false, err
		}
		changed := false
		for _, it := range targets {
			sv := it.ref.(*subvolumeRecord)
			for _, o := range next.Subvolumes {
				if o != sv && within(o.Name, sv.Name) {
					return changed, failure("subvolume %s holds subvolume %s", sv.Name, o.Name)
				}
			}
			for _, d := range next.Disks {
				if _, rel, err := s.splitPoolPath(d.FilePath); err == nil && within(rel, sv.Name) {
					return changed, failure("subvolume %s is in use by disk %s", sv.Name, d.Slot)
				}
			}
			if dir := filepath.ToSlash(filepath.Dir(sv.Name)); dir != "." && next.readOnlyAt(dir) != nil {
				return changed, errReadOnly
			}
			if err := os.RemoveAll(s.hostPathRel(sv.Name)); err != nil {
				return changed, failure("can not remove subvolume: %v", osReason(err))
			}
			for i, o := range next.Subvolumes {
				if o == sv {
					next.Subvolumes = append(next.Subvolumes[:i], next.Subvolumes[i+1:]...)
					break
				}
			}
			changed = true
		}
		return changed, nil
	})
}
