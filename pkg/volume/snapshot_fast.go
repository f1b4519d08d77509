package volume

import (
	"context"
	"errors"
	"strconv"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// A snapshot, a restore and a snapshot's delete used to read first (the source's size, which the snapshot's
// name carries; the snapshot's path; the path to remove), then act: two round trips. For what this process
// made or read, the Manager knows those already, so each sends its mutation inside a guard (create_guard.go)
// that checks on the RDS what was remembered, in the same exec as the read the slow path starts with:
//
//   - snapshot: the source disk is there with its NQN and the remembered size, and no file path holds the
//     snapshot's id; then the read-only snapshot is added in the base path's snapshots container.
//   - restore: nothing holds the new volume's name (as a create) and the snapshot's directory is there; then
//     the writable snapshot, its disk, and the growth a larger request needs.
//   - delete of a snapshot this process made: its removal and read-back, as the slow path's second exec.
//
// Whatever the guard declines, or a remembered thing that is not what the RDS has, goes on as before from
// the read that came back with it: what the RDS answers always decides.

// snapshotGuard is CreateSnapshot's guarded add for a remembered source, or false.
func (m *Manager) snapshotGuard(id, sourceID string) (rds.Cmd, bool) {
	if !m.guardsOn() {
		return rds.Cmd{}, false
	}
	kv, ok := m.known.Load(sourceID)
	if !ok {
		return rds.Cmd{}, false
	}
	k := kv.(knownVolume)
	form := m.parentForm.Load()
	if k.layout != LayoutSubvolume || k.size <= 0 || form == parentUnknown || containerLeafOK(k.loc) != nil {
		return rds.Cmd{}, false
	}
	if _, ok := m.containers.Load(k.loc.String()); !ok {
		return rds.Cmd{}, false
	}
	pv, ok := m.pools.Load(k.loc.Pool)
	if !ok {
		return rds.Cmd{}, false
	}
	leaf, err := snapshotLeaf(id, sourceID, k.size)
	if err != nil {
		return rds.Cmd{}, false
	}
	add, err := rds.AddSnapshot(pv.(poolInfo).label, parentArg(k.loc.SubvolumeName(sourceID), form),
		SnapshotsContainer(k.loc)+"/"+leaf, true)
	if err != nil {
		return rds.Cmd{}, false
	}
	guard, err := rds.Unless([]rds.Absence{
		rds.OneDisk(rds.All(rds.Eq("slot", sourceID), rds.Eq("nvme-tcp-server-nqn", NQN(sourceID)),
			rds.Eq("size", strconv.FormatInt(k.size, 10)))),
		rds.NoFile(rds.Match("name", regexQuote(id))),
	}, add)
	if err != nil {
		return rds.Cmd{}, false
	}
	return guard, true
}

// rememberSnapshot keeps what a delete of snapshot s needs.
func (m *Manager) rememberSnapshot(s *Snapshot) {
	if s != nil && !s.legacy && s.printedName != "" {
		m.snapshots.Store(s.ID, *s)
	}
}

// deleteKnownSnapshot removes a snapshot this process made in one exec. done is false when it is not
// remembered or the RDS did not confirm the removal (the caller reads and removes it as before).
func (m *Manager) deleteKnownSnapshot(ctx context.Context, id string) (done bool, err error) {
	sv, ok := m.snapshots.LoadAndDelete(id)
	if !ok {
		return false, nil
	}
	s := sv.(Snapshot)
	switch err := m.removeSnapshot(ctx, &s); {
	case err == nil:
		return true, nil
	case errors.Is(err, rds.ErrUnavailable):
		return true, err // the outcome is unknown; the retry reads
	default:
		klog.V(2).InfoS("removal of a remembered snapshot did not confirm; reading it", "snapshotID", id, "err", err)
		return false, nil
	}
}

// restoreGuard is CreateFrom's guarded restore from a snapshot this process made, or false.
func (m *Manager) restoreGuard(r CreateRequest, pi poolInfo, src Source) (rds.Cmd, bool, error) {
	if src.SnapshotID == "" || !m.guardsOn() {
		return rds.Cmd{}, false, nil
	}
	sv, ok := m.snapshots.Load(src.SnapshotID)
	form := m.parentForm.Load()
	if !ok || form == parentUnknown {
		return rds.Cmd{}, false, nil
	}
	s := sv.(Snapshot)
	if s.Location.Pool != r.Location.Pool {
		return rds.Cmd{}, false, nil // refused by the slow path, with its reasons
	}
	size, err := restoreSize(r, src, s.SizeBytes)
	if err != nil {
		return rds.Cmd{}, false, err // before anything changes, as the slow path
	}
	steps := make([]rds.Cmd, 0, 3)
	add := func(c rds.Cmd, e error) {
		if e != nil && err == nil {
			err = e
		}
		steps = append(steps, c)
	}
	add(rds.AddSnapshot(pi.label, parentArg(s.SubvolumeName(), form), r.Location.SubvolumeName(r.ID), false))
	add(rds.AddFileDisk(rds.FileDiskSpec{Slot: r.ID, FilePath: r.Location.FilePath(r.ID, LayoutSubvolume),
		SizeBytes: s.SizeBytes, NQN: NQN(r.ID), Port: r.Port, AllowedHosts: r.AllowedHosts}))
	if size > s.SizeBytes {
		add(rds.SetDiskSize(r.ID, size))
	}
	if err != nil {
		return rds.Cmd{}, false, err
	}
	guard, err := rds.Unless([]rds.Absence{
		rds.NoDisk(rds.Eq("slot", r.ID)),
		rds.NoSubvolume(rds.Match("name", regexQuote(r.ID))),
		rds.NoFile(rds.Eq("name", subvolumeDir(r.Location.Pool, r.Location.SubvolumeName(r.ID)))),
		rds.OneFile(rds.Eq("name", subvolumeDir(s.Location.Pool, s.SubvolumeName()))),
	}, steps...)
	if err != nil {
		return rds.Cmd{}, false, err
	}
	return guard, true, nil
}
