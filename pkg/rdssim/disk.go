package rdssim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const defaultNVMePort = 4420

var errNotEnoughSpace = failure("not enough space")
var errAlreadyExists = failure("already have such entry")
var errReadOnly = failure("read-only file system")

// roundToSector rounds a requested size up to whole sectors: the disk never
// gets fewer bytes than asked for.
func roundToSector(n int64) int64 {
	if r := n % sectorSize; r != 0 {
		return n + sectorSize - r
	}
	return n
}

// checkSpace decides whether a file may take size bytes. The simulator counts
// a file disk as if fully allocated: its size must fit in the pool's free
// space plus what the file already occupies. (Whether the real box refuses a
// sparse file larger than the free space is UNVERIFIED.)
func (s *Simulator) checkSpace(x *execCtx, st *state, host string, oldSize, size int64) error {
	if size <= oldSize {
		return nil
	}
	if _, hit := s.takeFault(FaultDiskFull, x.texts...); hit {
		return errNotEnoughSpace
	}
	fits := func(allocated int64) bool {
		return size <= max(st.Pool.Size-allocated, 0)+allocatedFile(host)
	}
	if x.allocatedKnown && fits(x.allocated) {
		return nil
	}
	if !fits(s.allocatedBytes()) { // a refusal always rests on a fresh walk
		return errNotEnoughSpace
	}
	return nil
}

// diskAdd implements /disk add type=file: it creates (or attaches) a sparse
// file on the pool and the disk record that exports it.
func (s *Simulator) diskAdd(x *execCtx, st *statement) error {
	a := st.args
	typ := a["type"]
	if typ == "" && a["file-path"] != "" {
		typ = "file"
	}
	switch {
	case typ == "":
		return failure("type must be specified")
	case typ != "file":
		return failure("the simulator adds only type=file disks")
	case a["file-path"] == "":
		return failure("file-path must be specified")
	}
	clean, rel, err := s.splitPoolPath(a["file-path"])
	if err != nil || rel == "" {
		return failure("file-path must name a file on %s", s.poolName)
	}
	if a["slot"] == "" {
		// The slot is made from the disk's index, which only the commit knows.
		return s.diskAddLocked(x, a, clean, rel)
	}
	unlock := s.slotLocks.lock("disk "+a["slot"], "file "+rel)
	defer unlock()
	s.allocatedOutsideLock(x)
	d := &diskRecord{Slot: a["slot"], FilePath: clean, MountFilesystem: true, Port: defaultNVMePort}
	d.NQN = d.Slot
	applyDiskProps(d, a)
	cur := s.published()
	if err := s.addable(cur, d, rel); err != nil {
		return err
	}
	host := s.hostPathRel(rel)
	oldSize, exists, err := diskFileSize(d, host, a)
	if err != nil {
		return err
	}
	if exists {
		defer s.forgetAllocated() // the file turns from another file into a disk's
	}
	if err := s.checkSpace(x, cur, host, oldSize, d.Size); err != nil {
		return err
	}
	// The file is made outside the state lock: an add of another disk does not wait for it.
	if err := makeFile(host, d.Size); err != nil {
		return err
	}
	if s.fileHook != nil {
		s.fileHook(rel)
	}
	err = s.mutate(func(next *state) (bool, error) {
		if err := s.addable(next, d, rel); err != nil {
			return false, err
		}
		d.Index = next.NextDiskIndex
		if err := s.reconcileExport(nil, d); err != nil {
			return false, err
		}
		next.NextDiskIndex++
		next.Disks = append(next.Disks, d)
		return true, nil
	})
	if errors.Is(err, errAlreadyExists) && !exists {
		// Another disk took the NQN while the file was made: the file was this command's alone.
		_ = os.Remove(host)
	}
	return err
}

// addable says why disk d (its file at rel on the pool) cannot be added to st, or nil.
func (s *Simulator) addable(st *state, d *diskRecord, rel string) error {
	if st.diskBySlot(d.Slot) != nil || d.Slot == st.Pool.Name {
		return errAlreadyExists
	}
	for _, o := range st.Disks {
		if o.FilePath == d.FilePath || (d.Export && o.Export && o.NQN == d.NQN) {
			return errAlreadyExists
		}
	}
	if st.readOnlyAt(rel) != nil {
		return errReadOnly
	}
	return nil
}

// diskFileSize sets d.Size from file-size= (or the existing file's size) and reports the file's size
// before (-1 when there is no file).
func diskFileSize(d *diskRecord, host string, a map[string]string) (oldSize int64, exists bool, err error) {
	info, serr := os.Stat(host)
	exists = serr == nil
	oldSize = -1
	if exists {
		if !info.Mode().IsRegular() {
			return 0, true, failure("file-path is not a regular file")
		}
		oldSize = info.Size()
	}
	switch {
	case a["file-size"] != "":
		n, _ := parseFileSize(a["file-size"])
		d.Size = roundToSector(n)
	case exists:
		d.Size = oldSize
	default:
		return 0, exists, failure("file-size must be specified")
	}
	return oldSize, exists, nil
}

// diskAddLocked adds a disk with no slot given, all of it under the state lock.
func (s *Simulator) diskAddLocked(x *execCtx, a map[string]string, clean, rel string) error {
	s.allocatedOutsideLock(x)
	return s.mutate(func(next *state) (bool, error) {
		d := &diskRecord{Index: next.NextDiskIndex, Slot: "file" + strconv.Itoa(next.NextDiskIndex), FilePath: clean,
			MountFilesystem: true, Port: defaultNVMePort}
		d.NQN = d.Slot
		applyDiskProps(d, a)
		if err := s.addable(next, d, rel); err != nil {
			return false, err
		}
		host := s.hostPathRel(rel)
		oldSize, exists, err := diskFileSize(d, host, a)
		if err != nil {
			return false, err
		}
		if exists {
			defer s.forgetAllocated()
		}
		if err := s.checkSpace(x, next, host, oldSize, d.Size); err != nil {
			return false, err
		}
		if err := makeFile(host, d.Size); err != nil {
			return false, err
		}
		if err := s.reconcileExport(nil, d); err != nil {
			return false, err
		}
		next.NextDiskIndex++
		next.Disks = append(next.Disks, d)
		return true, nil
	})
}

// applyDiskProps copies the settable properties given on the command line.
func applyDiskProps(d *diskRecord, a map[string]string) {
	for k, v := range a {
		switch k {
		case "nvme-tcp-export":
			d.Export, _ = parseBool(v)
		case "nvme-tcp-server-port":
			d.Port, _ = strconv.Atoi(v)
		case "nvme-tcp-server-nqn":
			d.NQN = v
		case "nvme-tcp-server-allow-host-name":
			d.AllowHost = v
		case "mount-filesystem":
			d.MountFilesystem, _ = parseBool(v)
		case "mount-read-only":
			d.MountReadOnly, _ = parseBool(v)
		}
	}
}

// makeFile creates missing parent directories and a sparse file of size
// bytes; an existing file keeps its data and only changes size.
func makeFile(host string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return failure("can not create directory: %v", osReason(err))
	}
	f, err := os.OpenFile(host, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return failure("can not create file: %v", osReason(err))
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return failure("can not set file size: %v", osReason(err))
	}
	return nil
}

// diskSet implements /disk set: resize the file, change export settings.
func (s *Simulator) diskSet(x *execCtx, st *statement) error {
	if _, ok := st.args["file-size"]; ok {
		s.allocatedOutsideLock(x)
	}
	return s.mutate(func(next *state) (bool, error) {
		targets, err := resolve(st.items, s.diskItemsWhere(next, findExpr(st.items)))
		if err != nil {
			return false, err
		}
		changed := false
		for _, it := range targets {
			d, ok := it.ref.(*diskRecord)
			if !ok {
				return changed, failure("the pool disk can not be changed")
			}
			old := *d
			applyDiskProps(d, st.args)
			if d.Export {
				for _, o := range next.Disks {
					if o != d && o.Export && o.NQN == d.NQN {
						*d = old
						return changed, errAlreadyExists
					}
				}
			}
			if v, ok := st.args["file-size"]; ok {
				if err := s.resizeDisk(x, next, d, v); err != nil {
					*d = old
					return changed, err
				}
			}
			if err := s.reconcileExport(&old, d); err != nil {
				*d = old
				return changed, err
			}
			changed = true
		}
		return changed, nil
	})
}

func (s *Simulator) resizeDisk(x *execCtx, next *state, d *diskRecord, v string) error {
	_, rel, err := s.splitPoolPath(d.FilePath)
	if err != nil {
		return failure("file-path is not on %s", s.poolName)
	}
	if next.readOnlyAt(rel) != nil {
		return errReadOnly
	}
	host := s.hostPathRel(rel)
	info, err := os.Stat(host)
	if err != nil {
		return failure("file %s does not exist", d.FilePath)
	}
	n, _ := parseFileSize(v)
	size := roundToSector(n)
	if err := s.checkSpace(x, next, host, info.Size(), size); err != nil {
		return err
	}
	if err := os.Truncate(host, size); err != nil {
		return failure("can not set file size: %v", osReason(err))
	}
	d.Size = size
	return nil
}

// diskRemove implements /disk remove: the disk goes, its file stays.
func (s *Simulator) diskRemove(st *statement) error {
	defer s.forgetAllocated() // its file is a disk's no more
	return s.mutate(func(next *state) (bool, error) {
		targets, err := resolve(st.items, s.diskItemsWhere(next, findExpr(st.items)))
		if err != nil {
			return false, err
		}
		changed := false
		for _, it := range targets {
			d, ok := it.ref.(*diskRecord)
			if !ok {
				return changed, failure("the pool disk can not be removed")
			}
			if err := s.reconcileExport(d, nil); err != nil {
				return changed, err
			}
			for i, o := range next.Disks {
				if o == d {
					next.Disks = append(next.Disks[:i], next.Disks[i+1:]...)
					break
				}
			}
			changed = true
		}
		return changed, nil
	})
}

// monitorTraffic implements /disk monitor-traffic ID once. Without "once" it
// keeps printing a sample every second until the client goes away, as the
// console does.
func (s *Simulator) monitorTraffic(x *execCtx, st *statement) (string, error) {
	targets, err := resolve(st.items, s.diskItemsWhere(s.published(), findExpr(st.items)))
	if err != nil {
		return "", err
	}
	if len(targets) == 0 {
		return "", errNoSuchItem
	}
	sample := formatMonitor(trafficSample())
	if st.words["once"] {
		return sample, nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := x.emit(sample + crlf); err != nil {
			return "", nil
		}
		select {
		case <-x.ctx.Done():
			return "", nil
		case <-tick.C:
		}
	}
}

// reconcileExport tells the Exporter about a disk that appeared (old nil),
// went away (cur nil) or changed.
func (s *Simulator) reconcileExport(old, cur *diskRecord) error {
	e := s.cfg.Exporter
	if e == nil {
		return nil
	}
	if old != nil && old.Export && (cur == nil || !cur.Export || cur.NQN != old.NQN) {
		if err := e.Unexport(old.NQN); err != nil {
			return failure("nvme-tcp unexport failed: %v", err)
		}
	}
	if cur != nil && cur.Export && (old == nil || *old != *cur) {
		host, err := s.HostPath(cur.FilePath)
		if err != nil {
			return failure("nvme-tcp export failed: %v", err)
		}
		if err := e.Export(cur.NQN, cur.Port, host, s.cfg.AllowHostName.hosts(cur.AllowHost)); err != nil {
			return failure("nvme-tcp export failed: %v", err)
		}
	}
	return nil
}

func (s *Simulator) exportAll() error {
	if s.cfg.Exporter == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, d := range s.st.Disks {
		if err := s.reconcileExport(nil, d); err != nil {
			return fmt.Errorf("export %s: %s", d.Slot, consoleText(err))
		}
	}
	return nil
}

func (s *Simulator) unexportAll() error {
	if s.cfg.Exporter == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var first error
	for _, d := range s.st.Disks {
		if d.Export {
			if err := s.cfg.Exporter.Unexport(d.NQN); err != nil && first == nil {
				first = fmt.Errorf("unexport %s: %w", d.Slot, err)
			}
		}
	}
	return first
}
