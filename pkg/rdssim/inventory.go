package rdssim

import (
	"io/fs"
	"path/filepath"
	"sort"
)

// Inventory is what the simulated box holds, read from its own state and its pool directory rather
// than through the console, so a test can check what a client left behind without trusting the client's
// own reads (or the console's filters).
type Inventory struct {
	Disks      []string // slots of the file disks
	Subvolumes []string // subvolume paths below the pool ("k8s/pvc-1")
	Files      []string // every file and directory below the pool, as RouterOS names them ("pool/k8s/x.img")
}

// Inventory returns the box's current disks, subvolumes and files, each sorted.
func (s *Simulator) Inventory() (Inventory, error) {
	s.mu.RLock()
	var inv Inventory
	for _, d := range s.st.Disks {
		inv.Disks = append(inv.Disks, d.Slot)
	}
	for _, sv := range s.st.Subvolumes {
		inv.Subvolumes = append(inv.Subvolumes, sv.Name)
	}
	s.mu.RUnlock()
	root := s.poolDir()
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		inv.Files = append(inv.Files, s.poolName+"/"+filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(inv.Disks)
	sort.Strings(inv.Subvolumes)
	sort.Strings(inv.Files)
	return inv, err
}
