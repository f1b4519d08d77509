package driver

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Snapshots are btrfs snapshots on the RDS (pkg/volume). The handlers validate, take the guards and call one
// domain function; the RDS is the only record, so these work the same after a restart or a fail-over.

// snapshotMetadataParams are what external-snapshotter --extra-create-metadata adds; accepted and unused. No
// other VolumeSnapshotClass parameter exists: in particular a filesystem freeze cannot be done from the
// controller (it runs on the node that mounts the volume), so snapshots are crash-consistent.
var snapshotMetadataParams = map[string]bool{
	"csi.storage.k8s.io/volumesnapshot/name":        true,
	"csi.storage.k8s.io/volumesnapshot/namespace":   true,
	"csi.storage.k8s.io/volumesnapshotcontent/name": true,
}

// snapshotGuardKey keeps snapshot names apart from volume ids in the one per-name guard.
func snapshotGuardKey(id string) string { return "snapshot:" + id }

// CreateSnapshot takes a read-only snapshot of the source volume; the same name and source return the same
// snapshot, the same name of another source is AlreadyExists.
func (d *Driver) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, invalid("snapshot name is missing")
	}
	if err := rds.ValidName(name); err != nil {
		return nil, invalid("snapshot name %q cannot be used on the RDS: %v", name, err)
	}
	if req.GetSourceVolumeId() == "" {
		return nil, invalid("source volume id is missing")
	}
	source := req.GetSourceVolumeId()
	b, sourceName, err := d.resolve(source, "source volume")
	if err != nil {
		return nil, err
	}
	id := b.id(name) // a snapshot lives on its source's box
	if err := checkSnapshotParams(req.GetParameters()); err != nil {
		return nil, err
	}
	// The source's guard too: an expansion running meanwhile would make the size recorded in the snapshot's
	// name wrong.
	release, err := d.acquireAll(snapshotGuardKey(id), source)
	if err != nil {
		return nil, err
	}
	defer release()
	s, err := b.Volumes.CreateSnapshot(ctx, name, sourceName)
	if err != nil {
		return nil, toStatus(err)
	}
	s.ID, s.SourceVolumeID = b.id(s.ID), b.id(s.SourceVolumeID)
	klog.InfoS("snapshot ready", "snapshotID", s.ID, "volumeID", s.SourceVolumeID, "bytes", s.SizeBytes)
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(s)}, nil
}

// DeleteSnapshot removes the snapshot; one that does not exist is success. Volumes restored from it stay.
func (d *Driver) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	b, name, err := d.resolve(id, "snapshot")
	if err != nil {
		return nil, err
	}
	release, err := d.acquireAll(snapshotGuardKey(id))
	if err != nil {
		return nil, err
	}
	defer release()
	if err := b.Volumes.DeleteSnapshot(ctx, name); err != nil {
		return nil, toStatus(err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots pages through the snapshots on the RDS in id order, optionally only one id or one source
// volume's. The token is the snapshot id to start from, as for ListVolumes.
func (d *Driver) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	start := req.GetStartingToken()
	if err := checkPageRequest(req.GetMaxEntries(), start); err != nil {
		return nil, err
	}
	snaps, err := d.listSnapshots(ctx, req.GetSnapshotId(), req.GetSourceVolumeId())
	if err != nil {
		return nil, err
	}
	snaps, next, err := onePage(snaps, func(s *volume.Snapshot) string { return s.ID }, req.GetMaxEntries(), start, "snapshot")
	if err != nil {
		return nil, err
	}
	resp := &csi.ListSnapshotsResponse{NextToken: next}
	for i := range snaps {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(&snaps[i])})
	}
	return resp, nil
}

// createVolumeFromSource is CreateVolume with a content source: a restore of a snapshot or a clone of a
// volume. The name and capabilities are checked by CreateVolume.
func (d *Driver) createVolumeFromSource(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	var src volume.Source
	var keys []string
	var srcBox *box
	var srcID string
	switch cs := req.GetVolumeContentSource(); {
	case cs.GetSnapshot() != nil:
		srcID = cs.GetSnapshot().GetSnapshotId()
		b, name, err := d.resolve(srcID, "source snapshot")
		if err != nil {
			return nil, err
		}
		srcBox, src.SnapshotID = b, name
		keys = append(keys, snapshotGuardKey(srcID))
	case cs.GetVolume() != nil:
		srcID = cs.GetVolume().GetVolumeId()
		b, name, err := d.resolve(srcID, "source volume")
		if err != nil {
			return nil, err
		}
		srcBox, src.VolumeID = b, name
		keys = append(keys, srcID)
	default:
		return nil, invalid("the volume content source names neither a snapshot nor a volume")
	}
	p, err := d.parseParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	if srcBox != p.box {
		return nil, d.crossBoxSource(ctx, srcBox, src, srcID, p.box)
	}
	id := p.box.id(req.GetName())
	// The source is guarded too: it must not be deleted or grown while it is being copied.
	release, err := d.acquireAll(append([]string{id}, keys...)...)
	if err != nil {
		return nil, err
	}
	defer release()
	v, err := p.box.Volumes.CreateFrom(ctx, volume.CreateRequest{
		ID: req.GetName(), RequiredBytes: req.GetCapacityRange().GetRequiredBytes(), LimitBytes: req.GetCapacityRange().GetLimitBytes(),
		Location: p.location, Port: p.nvmePort, AllowedHosts: p.allowedAtCreate(),
	}, src)
	if err != nil {
		return nil, toStatus(err)
	}
	klog.InfoS("volume ready", "volumeID", id, "box", p.box.Name, "bytes", v.SizeBytes, "file", v.FilePath, "source", src.String())
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId: id, CapacityBytes: v.SizeBytes, VolumeContext: p.volumeContext(v), ContentSource: req.GetVolumeContentSource(),
	}}, nil
}

// acquireAll takes the guard of every key, or none: Aborted when one is busy.
func (d *Driver) acquireAll(keys ...string) (func(), error) {
	var releases []func()
	releaseAll := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	for _, k := range keys {
		release, err := d.guard.acquire(k)
		if err != nil {
			releaseAll()
			return nil, toStatus(err)
		}
		releases = append(releases, release)
	}
	return releaseAll, nil
}

func checkSnapshotParams(params map[string]string) error {
	var unknown []string
	for k := range params {
		if !snapshotMetadataParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return invalid("unknown VolumeSnapshotClass parameters: %s (this driver takes none; snapshots are crash-consistent, "+
			"a filesystem freeze is not possible from the controller)", strings.Join(unknown, ", "))
	}
	return nil
}

func csiSnapshot(s *volume.Snapshot) *csi.Snapshot {
	out := &csi.Snapshot{SnapshotId: s.ID, SourceVolumeId: s.SourceVolumeID, SizeBytes: s.SizeBytes, ReadyToUse: s.ReadyToUse}
	if !s.CreationTime.IsZero() {
		out.CreationTime = timestamppb.New(s.CreationTime)
	}
	return out
}

// crossBoxSource is the answer to a restore or clone whose source is on another box than the StorageClass's:
// NotFound when the source does not exist there either (as for any missing source), else InvalidArgument,
// since btrfs snapshots do not cross boxes. Only this refusal pays the exec that reads the source.
func (d *Driver) crossBoxSource(ctx context.Context, srcBox *box, src volume.Source, srcID string, want *box) error {
	var err error
	if src.SnapshotID != "" {
		var snaps []volume.Snapshot
		if snaps, err = srcBox.Volumes.ListSnapshots(ctx, volume.SnapshotFilter{ID: src.SnapshotID}); err == nil && len(snaps) == 0 {
			err = fmt.Errorf("source snapshot %s does not exist: %w", srcID, volume.ErrNotFound)
		}
	} else {
		_, err = srcBox.Volumes.Get(ctx, src.VolumeID)
	}
	if err != nil {
		return toStatus(err)
	}
	return invalid("the source %s is on box %s, but the StorageClass puts the volume on box %s: a restore or clone "+
		"stays on its source's box (use a StorageClass with %s=%s)", srcID, srcBox.Name, want.Name, paramBox, srcBox.Name)
}
