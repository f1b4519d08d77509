package volume

import (
	"context"
	"errors"
	"fmt"
	"path"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// Source is where a new volume's data comes from: a snapshot (a restore) or another volume (a clone). Exactly
// one field is set.
type Source struct {
	SnapshotID string
	VolumeID   string
}

func (s Source) String() string {
	if s.SnapshotID != "" {
		return "snapshot " + s.SnapshotID
	}
	return "volume " + s.VolumeID
}

func (s Source) valid() error {
	switch {
	case (s.SnapshotID == "") == (s.VolumeID == ""):
		return fmt.Errorf("a volume source names either a snapshot or a volume: %w", rds.ErrInvalid)
	case s.SnapshotID != "":
		if err := rds.ValidName(s.SnapshotID); err != nil {
			return fmt.Errorf("source snapshot id: %w", err)
		}
	default:
		if err := rds.ValidName(s.VolumeID); err != nil {
			return fmt.Errorf("source volume id: %w", err)
		}
	}
	return nil
}

// origin is a source found on the RDS: the subvolume to snapshot and the size of the data it holds.
type origin struct {
	pool      string
	subvolume string
	uuid      string
	sizeBytes int64
}

// restoreState is what the RDS has for a CreateFrom request, read in one exec.
type restoreState struct {
	disk      *rds.Disk      // the new volume's disk, if it exists
	subvolume *rds.Subvolume // the new volume's subvolume, if it exists
	origin    *origin        // nil when the source cannot be used; originErr says why
	originErr error
	listing   []routeros.Item // the subvolumes listed by the new volume's id, for a later delete (known.go)
}

// scriptError marks an error of the mutating script, whose outcome may be unknown, from a refusal decided on
// what was read.
type scriptError struct{ error }

func (e scriptError) Unwrap() error { return e.error }

// CreateFrom makes the volume r from src: a writable btrfs snapshot of the snapshot's (or the source volume's)
// subvolume becomes the new volume's subvolume, its disk.img is added as a disk of the source's size, and the
// disk is grown if r asks for more; one script with the read-back. The new volume shares blocks with its
// source until either is written, and writes to one never show on the other. A request for less than the
// source's size is ErrOutOfRange before anything changes. The same name from the same source returns the
// volume; from another source (or a volume made empty) it is ErrAlreadyExists. A retry after a crash at any
// step finishes the volume; a pool too full for it is left as it was.
//
// It costs two execs: one read (the new volume's disk and subvolume and the source), one script; one, for a
// snapshot this process made, whose restore is sent guarded with the read (snapshot_fast.go).
func (m *Manager) CreateFrom(ctx context.Context, r CreateRequest, src Source) (_ *Volume, err error) {
	defer func() { err = hostAccessError(r, err) }()
	if err := rds.ValidName(r.ID); err != nil {
		return nil, err
	}
	if err := m.checkHostAccess(r.AllowedHosts); err != nil {
		return nil, err
	}
	if err := src.valid(); err != nil {
		return nil, err
	}
	if _, err := RoundSize(r.RequiredBytes, r.LimitBytes); err != nil {
		return nil, err
	}
	pi, err := m.poolInfo(ctx, r.Location.Pool)
	if err != nil {
		return nil, err
	}
	if layoutOf(pi) != LayoutSubvolume {
		fs := pi.fs
		return nil, fmt.Errorf("volume %q from %s: pool %q has filesystem %s; volumes from snapshots or clones "+
			"need a btrfs pool, because the RDS snapshots btrfs subvolumes only: %w", r.ID, src, r.Location.Pool, fsName(fs), ErrUnsupported)
	}
	guard, guarded, err := m.restoreGuard(r, pi, src)
	if err != nil {
		return nil, err
	}
	var cause error
	for attempt := 1; ; attempt++ {
		var steps []rds.Cmd
		if guarded && attempt == 1 {
			steps = []rds.Cmd{guard} // the restore rides on the first read (snapshot_fast.go)
		}
		st, err := m.readRestoreState(ctx, r, pi, src, steps...)
		if err != nil && steps != nil && !errors.Is(err, rds.ErrInvalid) {
			if errors.Is(err, rds.ErrProtocol) && m.guards.Swap(false) {
				klog.InfoS("the RDS refused a guarded restore; from now on a restore reads first", "err", err)
			}
			klog.V(2).InfoS("guarded restore did not finish; reading the RDS", "volumeID", r.ID, "err", err)
			st, err = m.readRestoreState(ctx, r, pi, src)
		}
		if err != nil {
			if cause != nil {
				// The cause is kept as text: the state read's own failure decides what the caller sees.
				return nil, fmt.Errorf("%w (while reading state after: %s)", err, cause.Error())
			}
			return nil, err
		}
		v, err := m.restoreStep(ctx, r, pi, src, st)
		var se scriptError
		if err == nil || !errors.As(err, &se) {
			return v, err
		}
		cause = se.error
		switch {
		case errors.Is(cause, rds.ErrNoSpace):
			// Nothing of this volume was handed out yet: remove what the script made, report the RDS's words.
			if derr := m.Delete(ctx, r.ID, r.Location); derr != nil {
				klog.ErrorS(derr, "could not remove a volume the pool had no room for", "volumeID", r.ID)
			}
			return nil, cause
		case errors.Is(cause, rds.ErrInvalid), attempt == 2:
			return nil, cause
		}
		klog.V(2).InfoS("create from a source did not finish in one script; reading the RDS to converge",
			"volumeID", r.ID, "source", src.String(), "err", cause)
	}
}

// readRestoreState reads the new volume's disk and subvolume and the source, in one exec, after steps.
func (m *Manager) readRestoreState(ctx context.Context, r CreateRequest, pi poolInfo, src Source, steps ...rds.Cmd) (*restoreState, error) {
	newSubvolume := r.Location.SubvolumeName(r.ID)
	reads := make([]rds.Cmd, 0, 4)
	add := func(c rds.Cmd, err error) error {
		reads = append(reads, c)
		return err
	}
	snapshots := SnapshotFilter{ID: src.SnapshotID}
	errs := []error{
		add(rds.PrintDisks(rds.Eq("slot", r.ID))),
		add(listSubvolumes(r.ID)),
	}
	if src.SnapshotID != "" {
		rs, err := snapshots.reads()
		errs = append(errs, err)
		reads = append(reads, rs...)
	} else {
		// The source's subvolume is read for its uuid, by its leaf (the source volume's id).
		errs = append(errs, add(rds.PrintDisks(rds.Eq("slot", src.VolumeID))), add(listSubvolumes(src.VolumeID)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, steps, reads...)
	if err != nil {
		return nil, err
	}
	st := &restoreState{listing: out[1]}
	disks, err := rds.DisksFrom(out[0])
	if err != nil {
		return nil, err
	}
	if len(disks) > 0 {
		st.disk = &disks[0]
	}
	if st.subvolume, err = subvolumeIn(out[1], r.Location.Pool, pi, newSubvolume); err != nil {
		return nil, err
	}
	if src.SnapshotID != "" {
		st.origin, st.originErr = m.snapshotOrigin(out[2], out[3], src.SnapshotID, r.Location.Pool)
		return st, nil
	}
	st.origin, st.originErr = m.volumeOrigin(ctx, out[2], out[3], src.VolumeID)
	return st, nil
}

func (m *Manager) snapshotOrigin(files, subvolumes []routeros.Item, id, pool string) (*origin, error) {
	snaps, err := m.snapshotsFrom(files, subvolumes, SnapshotFilter{ID: id})
	if err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("snapshot %q: %w", id, ErrNotFound)
	}
	s := &snaps[0]
	for i := range snaps {
		if snaps[i].Location.Pool == pool { // the one a restore onto this pool can use
			s = &snaps[i]
			break
		}
	}
	return &origin{pool: s.Location.Pool, subvolume: s.SubvolumeName(), uuid: s.UUID, sizeBytes: s.SizeBytes}, nil
}

// volumeOrigin turns the source volume's disk (and its listed subvolume) into an origin, or says why it
// cannot be cloned.
func (m *Manager) volumeOrigin(ctx context.Context, disk, subvolumes []routeros.Item, id string) (*origin, error) {
	v, err := oneVolume(disk, id)
	if err != nil {
		return nil, err
	}
	if err := m.snapshottable(ctx, v); err != nil {
		return nil, err
	}
	o := &origin{pool: v.Location.Pool, subvolume: v.SubvolumeName(), sizeBytes: v.SizeBytes}
	pi, err := m.poolInfo(ctx, v.Location.Pool)
	if err != nil {
		return nil, err
	}
	sv, err := subvolumeIn(subvolumes, v.Location.Pool, pi, o.subvolume)
	if err != nil {
		return nil, err
	}
	if sv != nil {
		o.uuid = sv.UUID
	}
	return o, nil
}

// restoreStep acts on what was read: returns the finished volume, refuses an incompatible request, or runs the
// script that makes (or finishes) the volume. Errors of that script are scriptErrors.
func (m *Manager) restoreStep(ctx context.Context, r CreateRequest, pi poolInfo, src Source, st *restoreState) (*Volume, error) {
	if st.disk != nil {
		return m.existingFrom(ctx, r, src, st)
	}
	if st.originErr != nil {
		return nil, st.originErr
	}
	o := st.origin
	if o.pool != r.Location.Pool {
		return nil, fmt.Errorf("volume %q from %s: the source is on pool %q and the new volume would be on pool %q; "+
			"btrfs snapshots do not cross filesystems, so use a StorageClass on pool %q: %w",
			r.ID, src, o.pool, r.Location.Pool, o.pool, ErrUnsupported)
	}
	size, err := restoreSize(r, src, o.sizeBytes)
	if err != nil {
		return nil, err
	}
	var steps []rds.Cmd
	add := func(c rds.Cmd, e error) {
		if e != nil && err == nil {
			err = e
		}
		steps = append(steps, c)
	}
	if st.subvolume != nil && !fromSource(st.subvolume, src, o) {
		return nil, fmt.Errorf("volume %q: its subvolume %s exists without a disk and was not made from %s; "+
			"remove it on the RDS if nothing needs it: %w", r.ID, st.subvolume.Name, src, ErrAlreadyExists)
	}
	// The disk takes the file at the size it has; a larger request is a resize after, so the add never asks
	// the RDS to change a file it did not make.
	add(rds.AddFileDisk(rds.FileDiskSpec{Slot: r.ID, FilePath: r.Location.FilePath(r.ID, LayoutSubvolume),
		SizeBytes: o.sizeBytes, NQN: NQN(r.ID), Port: r.Port, AllowedHosts: r.AllowedHosts}))
	if size > o.sizeBytes {
		add(rds.SetDiskSize(r.ID, size))
	}
	if err != nil {
		return nil, err
	}
	if st.subvolume != nil {
		return m.runCreateScript(ctx, r, steps, size)
	}
	read, err := rds.PrintDisks(rds.Eq("slot", r.ID))
	if err != nil {
		return nil, err
	}
	readSV, err := listSubvolumes(r.ID) // its uuid, so that the delete needs no read first (known.go)
	if err != nil {
		return nil, err
	}
	out, err := m.addSnapshot(ctx, pi.label, o.subvolume, r.Location.SubvolumeName(r.ID), false, steps, read, readSV)
	if err != nil {
		return nil, scriptError{err}
	}
	v, err := oneVolume(out[0], r.ID)
	if err != nil {
		return nil, scriptError{err}
	}
	m.rememberListed(v, pi, out[1])
	return m.createdFrom(v, r, size)
}

// existingFrom decides about a volume whose disk exists: it is this request's if it was made from src in the
// requested place; a disk left at the source's size by a create interrupted before its resize is grown.
func (m *Manager) existingFrom(ctx context.Context, r CreateRequest, src Source, st *restoreState) (*Volume, error) {
	v, err := fromDisk(st.disk)
	if err != nil {
		return nil, fmt.Errorf("volume name %q is taken on the RDS: %s: %w", r.ID, err.Error(), ErrAlreadyExists)
	}
	if v.Layout != LayoutSubvolume || v.Location != r.Location || !fromSource(st.subvolume, src, st.origin) {
		return nil, fmt.Errorf("volume %q exists in %s but was not made from %s: %w", r.ID, v.Location, src, ErrAlreadyExists)
	}
	if o := st.origin; o != nil && v.SizeBytes == o.sizeBytes {
		size, err := restoreSize(r, src, o.sizeBytes)
		if err != nil {
			return nil, err
		}
		if size > v.SizeBytes {
			set, err := rds.SetDiskSize(r.ID, size)
			if err != nil {
				return nil, err
			}
			return m.runCreateScript(ctx, r, []rds.Cmd{set}, size)
		}
	}
	if err := compatible(v, r); err != nil {
		return nil, err
	}
	if pi, ok := m.pools.Load(r.Location.Pool); ok {
		m.rememberListed(v, pi.(poolInfo), st.listing)
	}
	return v, nil
}

// runCreateScript runs the steps with the disk's read-back and checks the volume came out as asked.
func (m *Manager) runCreateScript(ctx context.Context, r CreateRequest, steps []rds.Cmd, size int64) (*Volume, error) {
	var v *Volume
	var err error
	if pi, ok := m.pools.Load(r.Location.Pool); ok {
		// Its subvolume is read back too, so that the delete needs no read first (known.go).
		v, err = m.createThenRead(ctx, r.ID, pi.(poolInfo), LayoutSubvolume, steps)
	} else {
		v, err = m.runThenRead(ctx, r.ID, steps...)
	}
	if err != nil {
		return nil, scriptError{err}
	}
	return m.createdFrom(v, r, size)
}

// createdFrom checks the read-back of a volume made from a source.
func (m *Manager) createdFrom(v *Volume, r CreateRequest, size int64) (*Volume, error) {
	if err := checkCreated(v, r, size); err != nil {
		return nil, scriptError{err}
	}
	klog.V(2).InfoS("volume made from a source", "volumeID", r.ID, "bytes", v.SizeBytes, "file", v.FilePath)
	return v, nil
}

// restoreSize is the size of a volume made from a source of srcBytes: the source's size, or more when more is
// required. Less than the source holds is out of range: the data would not fit.
func restoreSize(r CreateRequest, src Source, srcBytes int64) (int64, error) {
	switch {
	case r.RequiredBytes > 0 && r.RequiredBytes < srcBytes:
		return 0, fmt.Errorf("volume %q: %d bytes requested, but %s holds %d bytes; ask for at least that: %w",
			r.ID, r.RequiredBytes, src, srcBytes, ErrOutOfRange)
	case r.LimitBytes > 0 && srcBytes > r.LimitBytes:
		return 0, fmt.Errorf("volume %q: the limit of %d bytes is below the %d bytes %s holds: %w",
			r.ID, r.LimitBytes, srcBytes, src, ErrOutOfRange)
	case r.RequiredBytes <= srcBytes:
		return srcBytes, nil
	}
	return RoundSize(r.RequiredBytes, r.LimitBytes)
}

// fromSource tells whether a subvolume was made from src, by its parent. RouterOS is taken to print the
// parent by name, as `add parent=` takes it, whether as the leaf or as the path (UNVERIFIED on hardware); the
// parent's uuid is also accepted. A source deleted since is still recognised by its leaf, which is its id.
func fromSource(sv *rds.Subvolume, src Source, o *origin) bool {
	if sv == nil || sv.Parent == "" {
		return false
	}
	if o != nil && (isPrintedAs(sv.Parent, o.pool, o.subvolume) || (o.uuid != "" && sv.Parent == o.uuid)) {
		return true
	}
	leaf := path.Base(sv.Parent)
	if src.SnapshotID != "" {
		id, _, _, ok := parseSnapshotLeaf(leaf)
		return leaf == src.SnapshotID || ok && id == src.SnapshotID // the first layout's leaf is the id
	}
	return leaf == src.VolumeID
}
