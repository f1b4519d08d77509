package volume

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// A snapshot is a read-only btrfs snapshot of a volume's subvolume, kept at
//
//	<dir>-snapshots/<source volume id>/<size in bytes>/<snapshot id>
//
// on the source volume's pool (docs/architecture.md §2). The driver keeps no records of its own: the path carries the
// source and its exact size at snapshot time (RouterOS prints file sizes rounded, "10.0GiB", so the size could
// not be read back exactly otherwise), and the RDS's creation-time is the snapshot's. The snapshots live beside
// the volumes' directory, not inside it, so that a volume's subvolume never holds another subvolume (btrfs
// would then refuse to remove it) and deleting a volume leaves its snapshots usable.
const snapshotsSuffix = "-snapshots"

// Snapshot is a snapshot as the RDS has it.
type Snapshot struct {
	ID             string
	SourceVolumeID string
	// SizeBytes is the source volume's size when the snapshot was taken: the smallest volume it restores to.
	SizeBytes    int64
	CreationTime time.Time
	// ReadyToUse is true once the RDS lists the snapshot read-only; btrfs snapshots are complete when made.
	ReadyToUse bool
	// Location is the source volume's base path; the snapshot lives in its pool.
	Location Location
	UUID     string
}

// SubvolumeName is the snapshot's subvolume, relative to the pool filesystem.
func (s *Snapshot) SubvolumeName() string {
	return snapshotName(s.Location, s.SourceVolumeID, s.SizeBytes, s.ID)
}

func snapshotName(loc Location, sourceID string, size int64, id string) string {
	return loc.Dir + snapshotsSuffix + "/" + sourceID + "/" + strconv.FormatInt(size, 10) + "/" + id
}

// SnapshotFilter selects snapshots by id, by source volume, both or neither (every snapshot).
type SnapshotFilter struct {
	ID             string
	SourceVolumeID string
}

func (f SnapshotFilter) valid() error {
	if f.ID != "" {
		if err := rds.ValidName(f.ID); err != nil {
			return fmt.Errorf("snapshot id: %w", err)
		}
	}
	if f.SourceVolumeID != "" {
		if err := rds.ValidName(f.SourceVolumeID); err != nil {
			return fmt.Errorf("source volume id: %w", err)
		}
	}
	return nil
}

// read is the one listing that finds the filter's snapshots on every pool. RouterOS regexes are unanchored at
// the end here (a `$` cannot be sent safely), so the listing may hold near misses; keep drops them.
func (f SnapshotFilter) read() (rds.Cmd, error) {
	pattern := snapshotsSuffix + "/"
	switch {
	case f.SourceVolumeID != "" && f.ID != "":
		pattern += regexQuote(f.SourceVolumeID) + "/.*/" + regexQuote(f.ID)
	case f.SourceVolumeID != "":
		pattern += regexQuote(f.SourceVolumeID) + "/"
	case f.ID != "":
		pattern += ".*/" + regexQuote(f.ID)
	}
	return rds.PrintSubvolumes(rds.Match("name", pattern))
}

func (f SnapshotFilter) keep(s *Snapshot) bool {
	return (f.ID == "" || s.ID == f.ID) && (f.SourceVolumeID == "" || s.SourceVolumeID == f.SourceVolumeID)
}

// regexQuote escapes a name checked by rds.ValidName or a path checked by rds.ValidPath for a RouterOS regex:
// of their characters only the dot means something there.
func regexQuote(s string) string { return strings.ReplaceAll(s, ".", `\.`) }

// snapshotFrom recognises a subvolume as one of this driver's snapshots: read-only, on a named pool, and named
// exactly as snapshotName names them (a decimal size without leading zeros, valid ids). A user's subvolume
// that merely contains "-snapshots/" is not one.
func snapshotFrom(sv *rds.Subvolume) (*Snapshot, bool) {
	segs := strings.Split(sv.Name, "/")
	n := len(segs)
	if n < 4 || !sv.ReadOnly || rds.ValidName(sv.FS) != nil {
		return nil, false
	}
	dir, ok := strings.CutSuffix(strings.Join(segs[:n-3], "/"), snapshotsSuffix)
	if !ok || dir == "" {
		return nil, false
	}
	loc, err := ParseLocation(sv.FS + "/" + dir)
	if err != nil || loc.Pool != sv.FS {
		return nil, false
	}
	source, sizeText, id := segs[n-3], segs[n-2], segs[n-1]
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size <= 0 || strconv.FormatInt(size, 10) != sizeText {
		return nil, false
	}
	if rds.ValidName(source) != nil || rds.ValidName(id) != nil {
		return nil, false
	}
	return &Snapshot{ID: id, SourceVolumeID: source, SizeBytes: size, CreationTime: sv.CreationTime, ReadyToUse: true,
		Location: loc, UUID: sv.UUID}, true
}

// snapshotsFrom keeps the listed subvolumes that are this driver's snapshots and match f, sorted by id (then
// by place, should two pools hold the same id).
func snapshotsFrom(items []routeros.Item, f SnapshotFilter) ([]Snapshot, error) {
	svs, err := rds.SubvolumesFrom(items)
	if err != nil {
		return nil, err
	}
	out := []Snapshot{}
	for i := range svs {
		if s, ok := snapshotFrom(&svs[i]); ok && f.keep(s) {
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].SubvolumeName() < out[j].SubvolumeName()
	})
	return out, nil
}

// ListSnapshots returns the snapshots matching f on every btrfs pool of the RDS, in one exec. Snapshots of
// volumes in any base path are found, because they are recognised by their names alone.
func (m *Manager) ListSnapshots(ctx context.Context, f SnapshotFilter) ([]Snapshot, error) {
	if err := f.valid(); err != nil {
		return nil, err
	}
	read, err := f.read()
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, read)
	if err != nil {
		return nil, err
	}
	return snapshotsFrom(out[0], f)
}

// readSnapshot reads the snapshot subvolume name on pool; nil when it is not there (or not a snapshot of ours).
func (m *Manager) readSnapshot(ctx context.Context, pool, name string) (*Snapshot, error) {
	read, err := rds.PrintSubvolumes(rds.Eq("fs", pool), rds.Eq("name", name))
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, read)
	if err != nil {
		return nil, err
	}
	return snapshotAt(out[0], name)
}

// snapshotAt picks the snapshot called name out of a listing.
func snapshotAt(items []routeros.Item, name string) (*Snapshot, error) {
	svs, err := rds.SubvolumesFrom(items)
	if err != nil {
		return nil, err
	}
	for i := range svs {
		if svs[i].Name != name {
			continue
		}
		if s, ok := snapshotFrom(&svs[i]); ok {
			return s, nil
		}
	}
	return nil, nil
}

// snapshottable says why a volume cannot be the source of a snapshot or clone, or nil when it can.
func (m *Manager) snapshottable(ctx context.Context, v *Volume) error {
	if v.Layout == LayoutSubvolume {
		return nil
	}
	fs, err := m.PoolFS(ctx, v.Location.Pool)
	if err != nil {
		return err
	}
	if fs != "btrfs" {
		return fmt.Errorf("volume %q is on pool %q, whose filesystem is %s: snapshots and clones need a btrfs pool, "+
			"because the RDS snapshots btrfs subvolumes only: %w", v.ID, v.Location.Pool, fsName(fs), ErrUnsupported)
	}
	return fmt.Errorf("volume %q is a flat file %s (the older driver's layout), not a btrfs subvolume of its own, "+
		"so it cannot be snapshotted or cloned; copy its data into a new volume of this driver to get one that can: %w",
		v.ID, v.FilePath, ErrUnsupported)
}

func fsName(fs string) string {
	if fs == "" {
		return "not reported by the RDS"
	}
	return fs
}
