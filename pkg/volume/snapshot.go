package volume

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// A snapshot is a read-only btrfs snapshot of a volume's subvolume, kept at
//
//	<dir>-snapshots/<source volume id>/<size in bytes>/<snapshot id>
//
// on the source volume's pool (design §2). The driver keeps no records of its own: the path carries the
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
	// printedName is how the RDS names the snapshot's subvolume in print and find (its leaf or its path).
	printedName string
}

// SubvolumeName is the snapshot's subvolume, relative to the pool filesystem.
func (s *Snapshot) SubvolumeName() string {
	return snapshotName(s.Location, s.SourceVolumeID, s.SizeBytes, s.ID)
}

// dir is the snapshot's directory as /file print names it.
func (s *Snapshot) dir() string { return subvolumeDir(s.Location.Pool, s.SubvolumeName()) }

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

// reads are the two listings that find the filter's snapshots on every pool, in one exec: `/file print`, whose
// paths carry each snapshot's place, source and size whichever way subvolume names print, and the subvolumes
// whose name contains the id (every subvolume without one), which say the directory is a read-only snapshot
// and give its uuid and creation time. RouterOS regexes are unanchored at the end here (a `$` cannot be sent
// safely), so the listings may hold near misses; snapshotsFrom drops them.
func (f SnapshotFilter) reads() ([]rds.Cmd, error) {
	pattern := snapshotsSuffix + "/"
	switch {
	case f.SourceVolumeID != "" && f.ID != "":
		pattern += regexQuote(f.SourceVolumeID) + "/.*/" + regexQuote(f.ID)
	case f.SourceVolumeID != "":
		pattern += regexQuote(f.SourceVolumeID) + "/"
	case f.ID != "":
		pattern += ".*/" + regexQuote(f.ID)
	}
	files, err := rds.PrintFiles(rds.Match("name", pattern))
	if err != nil {
		return nil, err
	}
	var subvolumes rds.Cmd
	if f.ID != "" {
		subvolumes, err = listSubvolumes(f.ID)
	} else {
		subvolumes, err = rds.PrintSubvolumes()
	}
	if err != nil {
		return nil, err
	}
	return []rds.Cmd{files, subvolumes}, nil
}

func (f SnapshotFilter) keep(s *Snapshot) bool {
	return (f.ID == "" || s.ID == f.ID) && (f.SourceVolumeID == "" || s.SourceVolumeID == f.SourceVolumeID)
}

// regexQuote escapes a name checked by rds.ValidName or a path checked by rds.ValidPath for a RouterOS regex:
// of their characters only the dot means something there.
func regexQuote(s string) string { return strings.ReplaceAll(s, ".", `\.`) }

// snapshotAtPath recognises a /file name as the directory of one of this driver's snapshots, named exactly as
// snapshotName names them below a pool's mount point (a decimal size without leading zeros, valid ids). A
// user's directory that merely contains "-snapshots/" is not one.
func snapshotAtPath(name string) (*Snapshot, bool) {
	segs := strings.Split(strings.TrimPrefix(name, "/"), "/")
	n := len(segs)
	if n < 5 {
		return nil, false
	}
	base, ok := strings.CutSuffix(segs[n-4], snapshotsSuffix)
	if !ok || base == "" {
		return nil, false
	}
	dir := strings.Join(append(append([]string{}, segs[1:n-4]...), base), "/")
	loc, err := ParseLocation(segs[0] + "/" + dir)
	if err != nil || loc.Pool != segs[0] {
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
	return &Snapshot{ID: id, SourceVolumeID: source, SizeBytes: size, ReadyToUse: true, Location: loc}, true
}

// snapshotsFrom joins the two listings of reads: a snapshot is a directory at a snapshot's path that is a
// read-only subvolume. The snapshots matching f are returned sorted by id (then by place, should two pools
// hold the same id).
func (m *Manager) snapshotsFrom(files, subvolumes []routeros.Item, f SnapshotFilter) ([]Snapshot, error) {
	fs, err := rds.FilesFrom(files)
	if err != nil {
		return nil, err
	}
	svs, err := rds.SubvolumesFrom(subvolumes)
	if err != nil {
		return nil, err
	}
	out := []Snapshot{}
	seen := map[string]bool{}
	for i := range fs {
		s, ok := snapshotAtPath(fs[i].Name)
		if !ok || !f.keep(s) || seen[s.dir()] {
			continue
		}
		seen[s.dir()] = true
		if sv := m.snapshotSubvolume(svs, s); sv != nil {
			s.CreationTime, s.UUID, s.printedName = sv.CreationTime, sv.UUID, sv.Name
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].dir() < out[j].dir()
	})
	return out, nil
}

// snapshotSubvolume picks the read-only subvolume listed for the snapshot s. Printed by its leaf, the same id
// on two pools is told apart by the filesystem's label, when that pool's label is known; a snapshot that
// cannot be told apart is left out.
func (m *Manager) snapshotSubvolume(svs []rds.Subvolume, s *Snapshot) *rds.Subvolume {
	var found []*rds.Subvolume
	for i := range svs {
		if svs[i].ReadOnly && isPrintedAs(svs[i].Name, s.Location.Pool, s.SubvolumeName()) {
			found = append(found, &svs[i])
		}
	}
	if len(found) > 1 {
		if v, ok := m.pools.Load(s.Location.Pool); ok {
			pi := v.(poolInfo)
			var onThisPool []*rds.Subvolume
			for _, sv := range found {
				if sv.FS == pi.label {
					onThisPool = append(onThisPool, sv)
				}
			}
			found = onThisPool
		}
	}
	if len(found) != 1 {
		if len(found) > 1 {
			klog.V(2).InfoS("several read-only subvolumes fit a snapshot; leaving it out", "snapshot", s.dir(), "count", len(found))
		}
		return nil
	}
	return found[0]
}

// ListSnapshots returns the snapshots matching f on every btrfs pool of the RDS, in one exec. Snapshots of
// volumes in any base path are found, because they are recognised by their paths alone.
func (m *Manager) ListSnapshots(ctx context.Context, f SnapshotFilter) ([]Snapshot, error) {
	if err := f.valid(); err != nil {
		return nil, err
	}
	reads, err := f.reads()
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, reads...)
	if err != nil {
		return nil, err
	}
	return m.snapshotsFrom(out[0], out[1], f)
}

// snapshotIn picks the snapshot of f at loc out of listings made by f.reads; nil when it is not there.
func (m *Manager) snapshotIn(files, subvolumes []routeros.Item, f SnapshotFilter, loc Location) (*Snapshot, error) {
	snaps, err := m.snapshotsFrom(files, subvolumes, f)
	if err != nil {
		return nil, err
	}
	for i := range snaps {
		if snaps[i].Location == loc {
			return &snaps[i], nil
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
