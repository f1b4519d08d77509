package rdssim

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Listing every disk (a stat per file, a walk of the pool for the pool's free space) or every file (a walk
// of the pool) for each command made one `/disk print where slot=...` cost 28 ms with 1,000 volumes. The
// driver's commands name one item by an equality on its key property, so the lists below build only the
// items such a filter can match; the filter itself still runs on them, so the result is the same.

// equalityOn returns the condition prop=VALUE that every item matching e must satisfy, if e is such a
// condition or a conjunction holding one.
func equalityOn(e expr, prop string) (condition, bool) {
	switch x := e.(type) {
	case condition:
		if x.prop == prop && x.op == "=" {
			return x, true
		}
	case conjunction:
		if c, ok := equalityOn(x.l, prop); ok {
			return c, true
		}
		return equalityOn(x.r, prop)
	}
	return condition{}, false
}

// findExpr is the filter of a [find ...] reference, or nil for names and indices.
func findExpr(ref *itemRef) expr {
	if ref == nil || !ref.isFind {
		return nil
	}
	return ref.find
}

// diskItemsWhere lists the disks that where can match (all of them for a filter that does not pin the
// slot), in index order. The pool's free space, a walk of the pool, is only computed when the pool item
// is listed.
func (s *Simulator) diskItemsWhere(st *state, where expr) []item {
	c, ok := equalityOn(where, "slot")
	if !ok {
		return s.diskItems(st)
	}
	var items []item
	if c.equal(st.Pool.Name) {
		items = append(items, s.poolItem(st, s.freeBytes(st.Pool.Size)))
	}
	for _, d := range st.Disks {
		if c.equal(d.Slot) {
			items = append(items, s.diskItem(d))
		}
	}
	return items
}

// fileItemsWhere lists the files that where can match. For a filter pinning the name, a name that is not
// on the pool lists nothing without a walk; otherwise the pool is walked in order up to that entry (an
// item's number is its place in the walk) and only its attributes are read. A find (numbered false) needs
// no numbers and reads the one entry.
func (s *Simulator) fileItemsWhere(st *state, where expr, numbered bool) []item {
	c, ok := equalityOn(where, "name")
	if !ok {
		return s.fileItems(st)
	}
	host, ok := s.fileHost(st, c.value)
	if !ok {
		return nil
	}
	info, err := os.Lstat(host)
	if err != nil {
		return nil
	}
	if !numbered {
		name, rel := poolFileName(st, s.relOf(host))
		if !c.equal(name) {
			return nil
		}
		return []item{fileItem(name, rel, info.IsDir(), info, -1)}
	}
	var items []item
	root := s.poolDir()
	idx := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil
		}
		name, rel := poolFileName(st, filepath.ToSlash(rel))
		i := idx
		idx++
		if !c.equal(name) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		items = append(items, fileItem(name, rel, d.IsDir(), info, i))
		return filepath.SkipAll // names are unique: nothing after it can match
	})
	return items
}

// fileHost is where the file RouterOS names name ("pool/a/b", "/pool/a/b", or the mount point itself)
// lives on the host; false for a name outside the pool.
func (s *Simulator) fileHost(st *state, name string) (string, bool) {
	name = strings.TrimPrefix(name, "/")
	if name == st.Pool.Name {
		return s.poolDir(), true
	}
	rel, ok := strings.CutPrefix(name, st.Pool.Name+"/")
	if !ok || rel == "" || path.Clean(rel) != rel || strings.HasPrefix(rel, "../") || rel == ".." {
		return "", false
	}
	return s.hostPathRel(rel), true
}

// relOf is host's path below the pool's root, "." for the root.
func (s *Simulator) relOf(host string) string {
	rel, err := filepath.Rel(s.poolDir(), host)
	if err != nil {
		return "."
	}
	return filepath.ToSlash(rel)
}

// allocatedOutsideLock measures the pool's allocated bytes for a command that may allocate, before it
// takes the state lock, so that the measuring does not hold up commands on other disks.
//
// A walk of the pool (an open and a read per directory, an lstat per file) took 47% of the simulator's
// time with 1,000 volumes, once per create. So the walk's result is kept, split in two: the disks' own
// files, which the data path writes into at any time, are lstat'ed afresh for every check; every other
// file (snapshot copies, files without a disk) changes only through the simulator's own commands, and
// those that change it (forgetAllocated) make the next check walk again. A check that finds no room
// walks anyway (checkSpace), so "not enough space" is exact.
func (s *Simulator) allocatedOutsideLock(x *execCtx) {
	s.mu.RLock()
	st := s.st
	s.mu.RUnlock()
	x.allocated = s.allocatedFast(st)
	x.allocatedKnown = true
}

// allocCache is the allocation of the pool's files that are no disk's, as of the last walk.
type allocCache struct {
	mu     sync.Mutex
	gen    uint64 // bumped by forgetAllocated
	valid  bool
	others int64
}

func (s *Simulator) allocatedFast(st *state) int64 {
	diskFiles := make(map[string]bool, len(st.Disks))
	for _, d := range st.Disks {
		if _, rel, err := s.splitPoolPath(d.FilePath); err == nil {
			diskFiles[s.hostPathRel(rel)] = true
		}
	}
	s.alloc.mu.Lock()
	valid, others, gen := s.alloc.valid, s.alloc.others, s.alloc.gen
	s.alloc.mu.Unlock()
	if !valid {
		others = 0
		_ = filepath.WalkDir(s.poolDir(), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !diskFiles[p] {
				others += allocatedOf(d)
			}
			return nil
		})
		s.alloc.mu.Lock()
		if s.alloc.gen == gen { // nothing changed the other files while walking
			s.alloc.valid, s.alloc.others = true, others
		}
		s.alloc.mu.Unlock()
	}
	total := others
	for host := range diskFiles {
		total += allocatedFile(host)
	}
	return total
}

// forgetAllocated makes the next space check walk the pool: a command changed which files exist or
// which of them are disks' (a snapshot copied files, a file, subvolume or disk was removed, a disk
// took an existing file).
func (s *Simulator) forgetAllocated() {
	s.alloc.mu.Lock()
	s.alloc.gen++
	s.alloc.valid = false
	s.alloc.mu.Unlock()
}

func idHex(i int) string { return "*" + strconv.FormatInt(int64(i), 16) }
