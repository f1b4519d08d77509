// Package inventory compares what the RDS holds under the driver's base paths with what the cluster's
// PersistentVolumes and VolumeSnapshotContents refer to (`rds-csi orphans`), and turns an existing RDS disk
// into a static PersistentVolume (`rds-csi import`). It owns two small interfaces: RDS, which
// *volume.Manager satisfies, and Cluster, with a Kubernetes implementation (kube.go) and one reading a
// `kubectl get -o json` file (file.go).
//
// What may be deleted is decided by pkg/volume's ownership rules alone: a disk is the driver's only when
// its slot, NQN and file are the driver's (volume.Recognise); a directory without a disk only when it has
// exactly the shape the driver gives a volume (ownership.go). Everything else is listed and never touched.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/rds-csi/rds-csi/pkg/volume"
)

// RDS is what the inventory needs of the RDS: pkg/volume's listings and deletions.
type RDS interface {
	List(ctx context.Context) ([]volume.Volume, error)
	ListSnapshots(ctx context.Context, f volume.SnapshotFilter) ([]volume.Snapshot, error)
	Strays(ctx context.Context, loc volume.Location) ([]volume.Stray, error)
	PoolFS(ctx context.Context, pool string) (string, error)
	Delete(ctx context.Context, id string, loc volume.Location) error
	DeleteLeftover(ctx context.Context, id string, loc volume.Location) error
	DeleteSnapshot(ctx context.Context, id string) error
}

// Ref is a cluster object of the driver and the RDS item it names.
type Ref struct {
	Name      string // the PV's or VolumeSnapshotContent's name
	Handle    string // volumeHandle or snapshotHandle
	SizeBytes int64  // capacity or restoreSize, 0 when not given
	BasePath  string // a PV's volumeAttributes basePath, "" when none
}

// Cluster is what the inventory needs of the cluster: the driver's PVs and VolumeSnapshotContents. A
// cluster that cannot say which snapshot contents exist (no snapshot CRD) returns known=false, and
// snapshots are then neither compared nor deleted.
type Cluster interface {
	PersistentVolumes(ctx context.Context) ([]Ref, error)
	SnapshotContents(ctx context.Context) (refs []Ref, known bool, err error)
}

// Side says where an item is found without its counterpart.
type Side string

const (
	OnlyOnRDS     Side = "rds"
	OnlyInCluster Side = "cluster"
)

// Kind is what an item is.
type Kind string

const (
	KindVolume          Kind = "volume"   // a disk of the driver (with its file and subvolume)
	KindSnapshot        Kind = "snapshot" // a read-only snapshot subvolume of the driver
	KindLeftover        Kind = Kind(volume.StrayLeftover)
	KindFile            Kind = Kind(volume.StrayFile)
	KindForeignDisk     Kind = Kind(volume.StrayForeignDisk)
	KindPV              Kind = "pv"               // a PV whose volume is not on the RDS
	KindSnapshotContent Kind = "snapshot-content" // a VolumeSnapshotContent whose snapshot is not on the RDS
)

// Item is one thing found on one side only.
type Item struct {
	Side      Side   `json:"side"`
	Kind      Kind   `json:"kind"`
	ID        string `json:"id,omitempty"`   // volume or snapshot id, disk slot, or the handle a cluster object names
	Name      string `json:"name,omitempty"` // the cluster object's name
	Path      string `json:"path,omitempty"` // on the RDS
	SizeBytes int64  `json:"sizeBytes"`
	// Deletable is true only for what the driver owns: its volumes, its snapshots, its leftovers.
	Deletable bool   `json:"deletable"`
	Note      string `json:"note,omitempty"`

	loc volume.Location // where a volume or leftover was found
}

// Report is the outcome of one comparison.
type Report struct {
	BasePaths []string `json:"basePaths"`
	// PVs and SnapshotContents count the driver's objects the cluster side listed.
	PVs              int    `json:"pvs"`
	SnapshotContents int    `json:"snapshotContents"`
	Items            []Item `json:"items"`
	// Notes say what could not be compared, and why.
	Notes []string `json:"notes,omitempty"`
}

// Compare lists, for the base paths locs (and every base path a PV names), what is on the RDS without a PV
// or VolumeSnapshotContent, and the PVs and contents whose volume or snapshot is not on the RDS. It changes
// nothing.
func Compare(ctx context.Context, r RDS, c Cluster, locs []volume.Location) (*Report, error) {
	pvs, err := c.PersistentVolumes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the cluster's PersistentVolumes: %w", err)
	}
	contents, snapsKnown, err := c.SnapshotContents(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the cluster's VolumeSnapshotContents: %w", err)
	}
	locs = withPVBasePaths(locs, pvs)
	rep := &Report{PVs: len(pvs), SnapshotContents: len(contents)}
	inScope := map[volume.Location]bool{}
	for _, l := range locs {
		inScope[l] = true
		rep.BasePaths = append(rep.BasePaths, l.String())
	}
	vols, err := r.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the RDS's volumes: %w", err)
	}
	pvByHandle := map[string]bool{}
	for _, p := range pvs {
		pvByHandle[p.Handle] = true
	}
	onRDS := map[string]bool{}
	for _, v := range vols {
		onRDS[v.ID] = true
		if !pvByHandle[v.ID] && inScope[v.Location] {
			rep.Items = append(rep.Items, Item{Side: OnlyOnRDS, Kind: KindVolume, ID: v.ID, Path: v.FilePath,
				SizeBytes: v.SizeBytes, Deletable: true, Note: "no PV has this volumeHandle", loc: v.Location})
		}
	}
	for _, p := range pvs {
		if !onRDS[p.Handle] {
			rep.Items = append(rep.Items, Item{Side: OnlyInCluster, Kind: KindPV, ID: p.Handle, Name: p.Name,
				SizeBytes: p.SizeBytes, Note: "no volume of this driver with this id on the RDS (never deleted by this tool)"})
		}
	}
	for _, l := range locs {
		strays, err := r.Strays(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("listing base path %s: %w", l, err)
		}
		for _, s := range strays {
			rep.Items = append(rep.Items, Item{Side: OnlyOnRDS, Kind: Kind(s.Kind), ID: s.ID, Path: s.Path,
				SizeBytes: s.SizeBytes, Deletable: s.Owned, Note: s.Reason, loc: l})
		}
	}
	if err := compareSnapshots(ctx, r, rep, locs, inScope, contents, snapsKnown); err != nil {
		return nil, err
	}
	sortItems(rep.Items)
	return rep, nil
}

// compareSnapshots adds the snapshots without a VolumeSnapshotContent and the contents without a snapshot.
// Snapshots are listed only where a base path is on a btrfs pool (no other pool has any).
func compareSnapshots(ctx context.Context, r RDS, rep *Report, locs []volume.Location, inScope map[volume.Location]bool,
	contents []Ref, known bool) error {
	btrfs := false
	for _, l := range locs {
		fs, err := r.PoolFS(ctx, l.Pool)
		if errors.Is(err, volume.ErrNoPool) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("base path %s: %v", l, err))
			continue
		}
		if err != nil {
			return fmt.Errorf("reading pool %s: %w", l.Pool, err)
		}
		btrfs = btrfs || fs == "btrfs"
	}
	if !btrfs && len(contents) == 0 {
		return nil
	}
	if !known {
		rep.Notes = append(rep.Notes, "the cluster says nothing about VolumeSnapshotContents (no snapshot CRD, or a "+
			"--cluster-file without any): snapshots are not compared")
		return nil
	}
	var snaps []volume.Snapshot
	if btrfs {
		var err error
		if snaps, err = r.ListSnapshots(ctx, volume.SnapshotFilter{}); err != nil {
			return fmt.Errorf("listing the RDS's snapshots: %w", err)
		}
	}
	byHandle := map[string]bool{}
	for _, c := range contents {
		byHandle[c.Handle] = true
	}
	onRDS := map[string]bool{}
	for _, s := range snaps {
		onRDS[s.ID] = true
		if !byHandle[s.ID] && inScope[s.Location] {
			rep.Items = append(rep.Items, Item{Side: OnlyOnRDS, Kind: KindSnapshot, ID: s.ID,
				Path: s.Location.Pool + "/" + s.SubvolumeName(), SizeBytes: s.SizeBytes, Deletable: true,
				Note: "snapshot of " + s.SourceVolumeID + "; no VolumeSnapshotContent has this snapshotHandle"})
		}
	}
	for _, c := range contents {
		if !onRDS[c.Handle] {
			rep.Items = append(rep.Items, Item{Side: OnlyInCluster, Kind: KindSnapshotContent, ID: c.Handle, Name: c.Name,
				SizeBytes: c.SizeBytes, Note: "no snapshot of this driver with this id on the RDS (never deleted by this tool)"})
		}
	}
	return nil
}

// withPVBasePaths adds the base paths the driver's PVs name (volumeAttributes basePath) to locs, without
// duplicates, in a stable order: locs first, then the others sorted.
func withPVBasePaths(locs []volume.Location, pvs []Ref) []volume.Location {
	seen := map[volume.Location]bool{}
	var out []volume.Location
	for _, l := range locs {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	var more []volume.Location
	for _, p := range pvs {
		if p.BasePath == "" {
			continue
		}
		l, err := volume.ParseLocation(p.BasePath)
		if err != nil || seen[l] {
			continue
		}
		seen[l] = true
		more = append(more, l)
	}
	sort.Slice(more, func(i, j int) bool { return more[i].String() < more[j].String() })
	return append(out, more...)
}

var kindOrder = map[Kind]int{KindVolume: 0, KindSnapshot: 1, KindLeftover: 2, KindFile: 3, KindForeignDisk: 4, KindPV: 5, KindSnapshotContent: 6}

func sortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Side != b.Side {
			return a.Side == OnlyOnRDS
		}
		if kindOrder[a.Kind] != kindOrder[b.Kind] {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.ID+a.Name < b.ID+b.Name
	})
}
