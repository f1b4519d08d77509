package rdssim

import (
	"io/fs"
	"path/filepath"
	"strconv"
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

// fileItemsWhere lists the files that where can match. A filter pinning the name still walks the pool,
// since an item's number is its place in the walk, but reads the attributes (an lstat) of the matching
// entry only.
func (s *Simulator) fileItemsWhere(st *state, where expr) []item {
	c, ok := equalityOn(where, "name")
	if !ok {
		return s.fileItems(st)
	}
	var items []item
	root := s.poolDir()
	idx := 0
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		name := st.Pool.Name + "/" + rel
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
		return nil
	})
	return items
}

// allocatedOutsideLock walks the pool for its allocated bytes before a command that may allocate takes
// the state lock, so that the walk (thousands of lstats with many volumes) does not hold up commands on
// other disks. The total is as exact as a walk under the lock: new and grown files are sparse and
// allocate nothing, so concurrent commands do not change it; what does (writes through the data path,
// snapshot copies) was never ordered with the console anyway.
func (s *Simulator) allocatedOutsideLock(x *execCtx) {
	x.allocated = s.allocatedBytes()
	x.allocatedKnown = true
}

func idHex(i int) string { return "*" + strconv.FormatInt(int64(i), 16) }
