package rdssim

import "sort"

// What tests may read of the simulator's own state, without going through the console (and so without
// trusting the dialect a client speaks).

// SubvolumeInfo is a subvolume as the simulator holds it.
type SubvolumeInfo struct {
	Path     string // below the pool's mount point, e.g. "k8s/pvc-1"
	Parent   string // path of the subvolume it is a snapshot of; "" for a plain subvolume
	ReadOnly bool
}

// Subvolumes lists every subvolume, sorted by path.
func (s *Simulator) Subvolumes() []SubvolumeInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]SubvolumeInfo, 0, len(s.st.Subvolumes))
	for _, sv := range s.st.Subvolumes {
		out = append(out, SubvolumeInfo{Path: sv.Name, Parent: sv.Parent, ReadOnly: sv.ReadOnly})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Slots lists the slots of every file disk, sorted.
func (s *Simulator) Slots() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.st.Disks))
	for _, d := range s.st.Disks {
		out = append(out, d.Slot)
	}
	sort.Strings(out)
	return out
}

// PoolLabel is the label of the pool's filesystem (what fs= takes).
func (s *Simulator) PoolLabel() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Pool.Label
}
