package volume

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// CreateSnapshot takes a read-only snapshot of the volume sourceID, named id, or returns the snapshot id if
// it already exists of that volume. The same id of another volume is ErrAlreadyExists; a volume that is not
// in a btrfs subvolume of its own (a flat file, a non-btrfs pool) is ErrUnsupported, saying why.
//
// It costs two execs: one read (the source disk and any snapshot already named id), and one script that adds
// the snapshot and reads it back. The source's size must be known before the snapshot's name can be written,
// so the two cannot be one. A snapshot of a disk in use is crash-consistent: btrfs takes it atomically, but
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
	readNamed, err := named.read()
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, readSource, readNamed)
	if err != nil {
		return nil, err
	}
	existing, err := snapshotsFrom(out[1], named)
	if err != nil {
		return nil, err
	}
	for i := range existing {
		if existing[i].SourceVolumeID == sourceID {
			return &existing[i], nil // made before: by this call's earlier attempt or the same request
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
	name := snapshotName(src.Location, src.ID, src.SizeBytes, id)
	add, err := rds.AddSnapshot(src.Location.Pool, src.SubvolumeName(), name, true)
	if err != nil {
		return nil, err
	}
	read, err := rds.PrintSubvolumes(rds.Eq("fs", src.Location.Pool), rds.Eq("name", name))
	if err != nil {
		return nil, err
	}
	out, err = m.ros.Run(ctx, []rds.Cmd{add}, read)
	if err != nil {
		if errors.Is(err, rds.ErrInvalid) {
			return nil, err
		}
		// The outcome is unknown (a dropped connection) or a concurrent request made it first: what the RDS
		// has now decides.
		klog.V(2).InfoS("snapshot script did not finish; reading the RDS to converge", "snapshotID", id, "volumeID", sourceID, "err", err)
		s, rerr := m.readSnapshot(ctx, src.Location.Pool, name)
		if rerr == nil && s != nil {
			return s, nil
		}
		return nil, err
	}
	s, err := snapshotAt(out[0], name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("snapshot %q of volume %q is not listed read-only after it was made: %w", id, sourceID, ErrIncomplete)
	}
	klog.V(2).InfoS("snapshot taken", "snapshotID", id, "volumeID", sourceID, "subvolume", name, "bytes", s.SizeBytes)
	return s, nil
}

// DeleteSnapshot removes the snapshot id; a snapshot that does not exist is success. Volumes restored from it
// are independent subvolumes and stay as they are. It costs two execs (find it, remove it with its read-back),
// and one more when it was its source's last snapshot of that size, to remove the directories left empty.
func (m *Manager) DeleteSnapshot(ctx context.Context, id string) error {
	if err := rds.ValidName(id); err != nil {
		return fmt.Errorf("snapshot id: %w", err)
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

func (m *Manager) removeSnapshot(ctx context.Context, s *Snapshot) error {
	pool, name := s.Location.Pool, s.SubvolumeName()
	remove, err := rds.RemoveSubvolume(pool, name)
	if err != nil {
		return err
	}
	readGone, err := rds.PrintSubvolumes(rds.Eq("fs", pool), rds.Eq("name", name))
	if err != nil {
		return err
	}
	readSiblings, err := rds.PrintSubvolumes(rds.Eq("fs", pool), rds.Match("name", "^"+regexQuote(s.sourceDir()+"/")))
	if err != nil {
		return err
	}
	out, err := m.ros.Run(ctx, []rds.Cmd{remove}, readGone, readSiblings)
	if err != nil {
		if errors.Is(err, rds.ErrInvalid) {
			return err
		}
		again, rerr := m.readSnapshot(ctx, pool, name)
		if rerr != nil || again != nil {
			return err
		}
		return nil // gone after all: the answer was lost, not the removal
	}
	if len(out[0]) > 0 {
		return fmt.Errorf("snapshot %q: %s is still there after removing it: %w", s.ID, name, ErrIncomplete)
	}
	klog.V(2).InfoS("snapshot deleted", "snapshotID", s.ID, "volumeID", s.SourceVolumeID, "subvolume", name)
	siblings, err := snapshotsFrom(out[1], SnapshotFilter{SourceVolumeID: s.SourceVolumeID})
	if err != nil {
		return nil // only the tidying of empty directories depends on this listing
	}
	m.removeEmptyDirs(ctx, s, siblings)
	return nil
}

// sourceDir is the directory holding every snapshot of the snapshot's source volume, relative to the pool.
func (s *Snapshot) sourceDir() string {
	return s.Location.Dir + snapshotsSuffix + "/" + s.SourceVolumeID
}

// removeEmptyDirs removes the <size> and <source> directories a snapshot leaves behind when no other snapshot
// of the same source sits in them, so that deleted volumes leave no trace. This is tidying: a failure (a
// snapshot made meanwhile by another request, an RDS that does not remove directories) is logged and ignored.
func (m *Manager) removeEmptyDirs(ctx context.Context, s *Snapshot, siblings []Snapshot) {
	others := 0
	for i := range siblings {
		if siblings[i].ID == s.ID || siblings[i].Location != s.Location {
			continue
		}
		if siblings[i].SizeBytes == s.SizeBytes {
			return // the <size> directory still holds a snapshot
		}
		others++
	}
	dirs := []string{fmt.Sprintf("%s/%d", s.sourceDir(), s.SizeBytes)}
	if others == 0 {
		dirs = append(dirs, s.sourceDir())
	}
	var steps []rds.Cmd
	for _, d := range dirs {
		c, err := rds.RemoveFile(s.Location.Pool + "/" + d)
		if err != nil {
			return
		}
		steps = append(steps, c)
	}
	if _, err := m.ros.Run(ctx, steps); err != nil {
		klog.V(2).InfoS("could not remove the empty directories of a deleted snapshot", "snapshotID", s.ID, "dirs", dirs, "err", err)
	}
}
