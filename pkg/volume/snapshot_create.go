package volume

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// CreateSnapshot takes a read-only snapshot of the volume sourceID, named id, or returns the snapshot id if
// it already exists of that volume. The same id of another volume is ErrAlreadyExists; a volume that is not
// in a btrfs subvolume of its own (a flat file, a non-btrfs pool) is ErrUnsupported, saying why.
//
// It costs two execs: one read (the source disk and any snapshot already named id), and one script that adds
// the snapshot and reads it back. The source's size must be known before the snapshot's name can be written;
// for a source this process made or read, it is, and the add is sent guarded with the read: one exec
// (snapshot_fast.go). A snapshot of a disk in use is crash-consistent: btrfs takes it atomically, but
// nothing is frozen on the node.
func (m *Manager) CreateSnapshot(ctx context.Context, id, sourceID string) (*Snapshot, error) {
	if err := rds.ValidName(id); err != nil {
		return nil, fmt.Errorf("snapshot name: %w", err)
	}
	if err := rds.ValidName(sourceID); err != nil {
		return nil, fmt.Errorf("source volume id: %w", err)
	}
	readSource, err := rds.PrintDisks(rds.Eq("slot", sourceID))
	if err != nil {
		return nil, err
	}
	named := SnapshotFilter{ID: id}
	readNamed, err := named.reads()
	if err != nil {
		return nil, err
	}
	first := append([]rds.Cmd{readSource}, readNamed...)
	var out [][]routeros.Item
	if guard, ok := m.snapshotGuard(id, sourceID); ok {
		// The add for a remembered source rides on the first read (snapshot_fast.go).
		if out, err = m.ros.Run(ctx, []rds.Cmd{guard}, first...); err != nil {
			if errors.Is(err, rds.ErrProtocol) && m.guards.Swap(false) {
				klog.InfoS("the RDS refused a guarded snapshot; from now on a snapshot reads its source first", "err", err)
			}
			klog.V(2).InfoS("guarded snapshot did not finish; reading the RDS", "snapshotID", id, "err", err)
			out = nil
		}
	}
	if out == nil {
		if out, err = m.ros.Run(ctx, nil, first...); err != nil {
			return nil, err
		}
	}
	existing, err := m.snapshotsFrom(out[1], out[2], named)
	if err != nil {
		return nil, err
	}
	for i := range existing {
		if existing[i].SourceVolumeID == sourceID {
			m.rememberSnapshot(&existing[i])
			return &existing[i], nil // made now by the guard, by this call's earlier attempt or the same request
		}
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("snapshot name %q is taken by a snapshot of volume %q, not %q: %w",
			id, existing[0].SourceVolumeID, sourceID, ErrAlreadyExists)
	}
	src, err := oneVolume(out[0], sourceID)
	if err != nil {
		return nil, err
	}
	if err := m.snapshottable(ctx, src); err != nil {
		return nil, err
	}
	pi, err := m.poolInfo(ctx, src.Location.Pool)
	if err != nil {
		return nil, err
	}
	leaf, err := snapshotLeaf(id, src.ID, src.SizeBytes)
	if err != nil {
		return nil, err
	}
	if err := containerLeafOK(src.Location); err != nil {
		return nil, err
	}
	if err := m.ensureContainer(ctx, pi.label, src.Location); err != nil {
		return nil, err
	}
	name := SnapshotsContainer(src.Location) + "/" + leaf
	this := SnapshotFilter{ID: id, SourceVolumeID: sourceID}
	reads, err := this.reads()
	if err != nil {
		return nil, err
	}
	out, err = m.addSnapshot(ctx, pi.label, src.SubvolumeName(), name, true, nil, reads...)
	if err != nil {
		// The container may have gone since it was seen (removed by hand): look again next time.
		m.containers.Delete(src.Location.String())
		if errors.Is(err, rds.ErrInvalid) {
			return nil, err
		}
		// The outcome is unknown (a dropped connection) or a concurrent request made it first: what the RDS
		// has now decides.
		klog.V(2).InfoS("snapshot script did not finish; reading the RDS to converge", "snapshotID", id, "volumeID", sourceID, "err", err)
		if s, rerr := m.readSnapshot(ctx, this, src.Location); rerr == nil && s != nil {
			return s, nil
		}
		return nil, err
	}
	s, err := m.snapshotIn(out[0], out[1], this, src.Location)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("snapshot %q of volume %q is not listed read-only after it was made: %w", id, sourceID, ErrIncomplete)
	}
	klog.V(2).InfoS("snapshot taken", "snapshotID", id, "volumeID", sourceID, "subvolume", name, "bytes", s.SizeBytes)
	m.rememberSnapshot(s)
	return s, nil
}

// ensureContainer makes the snapshots container of loc unless /file print lists it (the documented, dialect-
// independent read of a path), once per process and base path. It sits beside loc's directory, whose parent
// exists when loc does, so the add never needs the RDS to make a missing parent. A concurrent request that
// made it first, or a lost answer, is settled by reading it again.
func (m *Manager) ensureContainer(ctx context.Context, label string, loc Location) error {
	if _, ok := m.containers.Load(loc.String()); ok {
		return nil
	}
	container := SnapshotsContainer(loc)
	read, err := rds.PrintFiles(rds.Eq("name", subvolumeDir(loc.Pool, container)))
	if err != nil {
		return err
	}
	out, err := m.ros.Run(ctx, nil, read)
	if err != nil {
		return err
	}
	if len(out[0]) == 0 {
		add, err := rds.AddSubvolume(label, container)
		if err != nil {
			return err
		}
		out, err = m.ros.Run(ctx, []rds.Cmd{add}, read)
		if err != nil {
			again, rerr := m.ros.Run(ctx, nil, read)
			if rerr != nil || len(again[0]) == 0 {
				return fmt.Errorf("the snapshots subvolume %s of base path %s: %w", container, loc, err)
			}
		} else if len(out[0]) == 0 {
			return fmt.Errorf("the snapshots subvolume %s of base path %s is not listed in /file print after it was made: %w",
				container, loc, ErrIncomplete)
		}
		klog.V(2).InfoS("snapshots subvolume made", "basePath", loc.String(), "subvolume", container)
	}
	m.containers.Store(loc.String(), true)
	return nil
}

// readSnapshot reads the snapshot of f at loc; nil when it is not there.
func (m *Manager) readSnapshot(ctx context.Context, f SnapshotFilter, loc Location) (*Snapshot, error) {
	reads, err := f.reads()
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, reads...)
	if err != nil {
		return nil, err
	}
	return m.snapshotIn(out[0], out[1], f, loc)
}

// DeleteSnapshot removes the snapshot id; a snapshot that does not exist is success. Volumes restored from it
// are independent subvolumes and stay as they are. It costs two execs (find it, remove it with its read-back;
// one for a snapshot this process made, snapshot_fast.go),
// and, for a snapshot of the first layout, one more when it was its source's last snapshot of that size, to
// remove the directories left empty.
func (m *Manager) DeleteSnapshot(ctx context.Context, id string) error {
	if err := rds.ValidName(id); err != nil {
		return fmt.Errorf("snapshot id: %w", err)
	}
	if done, err := m.deleteKnownSnapshot(ctx, id); done {
		return err
	}
	snaps, err := m.ListSnapshots(ctx, SnapshotFilter{ID: id})
	if err != nil {
		return err
	}
	for i := range snaps {
		if err := m.removeSnapshot(ctx, &snaps[i]); err != nil {
			return err
		}
	}
	return nil
}

// removeSnapshot removes the snapshot's subvolume by the name the RDS printed for it, and proves it gone by
// its directory leaving /file print (the snapshots' base directory is the control that the filter works).
func (m *Manager) removeSnapshot(ctx context.Context, s *Snapshot) error {
	remove, err := rds.RemoveSubvolume("", s.printedName)
	if err != nil {
		return err
	}
	// Should the find above match nothing, this refuses to remove a subvolume (or read-only) directory, loudly.
	removeDir, err := rds.RemoveFile(s.dir())
	if err != nil {
		return err
	}
	readGone, err := rds.PrintFiles(rds.Eq("name", s.dir()))
	if err != nil {
		return err
	}
	// The control: the directory holding the snapshot must be listed for its absence to prove anything.
	base := s.Location.Pool + "/" + SnapshotsContainer(s.Location)
	if s.legacy {
		base = s.Location.Pool + "/" + s.Location.Dir + snapshotsSuffix
	}
	readBase, err := rds.PrintFiles(rds.Eq("name", base))
	if err != nil {
		return err
	}
	reads := []rds.Cmd{readGone, readBase}
	if s.legacy {
		readSiblings, err := rds.PrintFiles(rds.Match("name", "^"+regexQuote(s.sourceDir()+"/")))
		if err != nil {
			return err
		}
		reads = append(reads, readSiblings)
	}
	out, err := m.ros.Run(ctx, []rds.Cmd{remove, removeDir}, reads...)
	if err != nil {
		if errors.Is(err, rds.ErrInvalid) {
			return err
		}
		again, rerr := m.readSnapshot(ctx, SnapshotFilter{ID: s.ID, SourceVolumeID: s.SourceVolumeID}, s.Location)
		if rerr != nil || again != nil {
			return err
		}
		return nil // gone after all: the answer was lost, not the removal
	}
	if err := checkControl(out[1], base); err != nil {
		return fmt.Errorf("snapshot %q: %w", s.ID, err)
	}
	if len(out[0]) > 0 {
		return fmt.Errorf("snapshot %q: %s is still there after removing it: %w", s.ID, s.dir(), ErrIncomplete)
	}
	klog.V(2).InfoS("snapshot deleted", "snapshotID", s.ID, "volumeID", s.SourceVolumeID, "subvolume", s.dir())
	if s.legacy {
		m.removeEmptyDirs(ctx, s, out[2])
	}
	return nil
}

// sourceDir is the directory of the first layout holding every snapshot of the snapshot's source volume, as
// /file print names it. The container of the current layout is kept: it is the base path's, like <dir>.
func (s *Snapshot) sourceDir() string {
	return s.Location.Pool + "/" + s.Location.Dir + snapshotsSuffix + "/" + s.SourceVolumeID
}

// removeEmptyDirs removes the <size> and <source> directories a snapshot leaves behind when nothing else is
// in them (listed is what /file print shows under <source>/ after the removal), so that deleted volumes
// leave no trace. This is tidying: a failure (a snapshot made meanwhile by another request, an RDS that does
// not remove directories) is logged and ignored.
func (m *Manager) removeEmptyDirs(ctx context.Context, s *Snapshot, listed []routeros.Item) {
	files, err := rds.FilesFrom(listed)
	if err != nil {
		return
	}
	sizeDir := fmt.Sprintf("%s/%d", s.sourceDir(), s.SizeBytes)
	inSize, inSource := 0, 0
	for _, f := range files {
		switch {
		case f.Name == sizeDir:
		case strings.HasPrefix(f.Name, sizeDir+"/"):
			inSize++
		case strings.HasPrefix(f.Name, s.sourceDir()+"/"):
			inSource++
		}
	}
	if inSize > 0 {
		return // the <size> directory still holds something
	}
	dirs := []string{sizeDir}
	if inSource == 0 {
		dirs = append(dirs, s.sourceDir())
	}
	var steps []rds.Cmd
	for _, d := range dirs {
		c, err := rds.RemoveFile(d)
		if err != nil {
			return
		}
		steps = append(steps, c)
	}
	if _, err := m.ros.Run(ctx, steps); err != nil {
		klog.V(2).InfoS("could not remove the empty directories of a deleted snapshot", "snapshotID", s.ID, "dirs", dirs, "err", err)
	}
}
