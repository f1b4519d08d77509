// Package volume is the volume domain of the driver: how a CSI volume maps onto RDS disks, files and btrfs
// subvolumes (docs/architecture.md §2), and the create/delete/expand flows that converge after a crash at any step. It
// speaks to the RDS only through the RouterOS interface, and spends one SSH exec per operation on the
// normal path: the mutations and their read-back run as one RouterOS script.
package volume

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// RouterOS is what this package needs from the RDS: run mutations and reads as one script.
type RouterOS interface {
	Run(ctx context.Context, steps []rds.Cmd, reads ...rds.Cmd) ([][]routeros.Item, error)
}

// Manager creates, grows, reads and deletes volumes on one RDS.
type Manager struct {
	ros   RouterOS
	pools sync.Map // mount point -> poolInfo; a pool's filesystem and label do not change under a running driver
	// parentForm is what `subvolume add parent=` takes on this RDS (parentLeaf or parentPath), once known.
	parentForm atomic.Int32
	walks      walks // paged listings in progress (list_walk.go)
	// known remembers where this process's volumes live, so that Delete needs no read first (known.go).
	known sync.Map // volume id -> knownVolume
	// containers are the base paths whose snapshots container this process saw on the RDS (snapshot_layout.go).
	containers sync.Map
	// noHostAccess: the RDS does not know nvme-tcp-server-allow-host-name (hostaccess.go).
	noHostAccess atomic.Bool
	// guards: the start-up check found that this RDS runs `:if` guards and stops scripts at a failed command,
	// and no guard was refused since, so a create, snapshot or restore is sent guarded (create_guard.go).
	guards atomic.Bool
	// snapshots remembers the snapshots this process made, so that a restore or delete of one needs no read
	// first (snapshot_fast.go).
	snapshots sync.Map // snapshot id -> Snapshot
}

// NewManager returns a Manager that talks to the RDS through ros.
func NewManager(ros RouterOS) *Manager { return &Manager{ros: ros} }

// CreateRequest is a volume to create.
type CreateRequest struct {
	ID            string
	RequiredBytes int64
	LimitBytes    int64
	Location      Location
	Port          int
	// AllowedHosts, when not empty, restrict the new volume's export from the start (hostaccess.go):
	// NoHost for a volume under host access control that no node holds yet.
	AllowedHosts []string
}

// Create makes the volume, or returns it if it already exists compatibly. On the normal path it costs one
// exec (plus one, once per pool and process, to learn the pool's filesystem): on a btrfs pool a guard adds
// the subvolume and the disk only while nothing holds the name, and the same script reads the result back
// (create_guard.go). Where the name is held by what an interrupted create or delete left, or the RDS runs no
// guards, the name's state is read first (checkName), then one script makes the volume.
func (m *Manager) Create(ctx context.Context, r CreateRequest) (_ *Volume, err error) {
	defer func() { err = hostAccessError(r, err) }()
	if err := rds.ValidName(r.ID); err != nil {
		return nil, err
	}
	if err := m.checkHostAccess(r.AllowedHosts); err != nil {
		return nil, err
	}
	size, err := RoundSize(r.RequiredBytes, r.LimitBytes)
	if err != nil {
		return nil, err
	}
	pi, err := m.poolInfo(ctx, r.Location.Pool)
	if err != nil {
		return nil, err
	}
	layout := layoutOf(pi)
	if layout == LayoutSubvolume {
		if v, done, err := m.addGuarded(ctx, r, pi, size); done {
			return v, err
		}
		if v, done, err := m.checkName(ctx, r, pi); done {
			return v, err
		}
	}
	v, err := m.add(ctx, r, pi, size, layout, true)
	if err == nil || errors.Is(err, rds.ErrInvalid) {
		return v, err
	}
	klog.V(2).InfoS("create did not finish in one script; reading the RDS to converge", "volumeID", r.ID, "err", err)
	return m.converge(ctx, r, pi, size, layout, err)
}

// add runs the creating script: the subvolume (if wanted), the exported disk, and the disk's read-back.
func (m *Manager) add(ctx context.Context, r CreateRequest, pi poolInfo, size int64, layout Layout, withSubvolume bool) (*Volume, error) {
	var steps []rds.Cmd
	if layout == LayoutSubvolume && withSubvolume {
		c, err := rds.AddSubvolume(pi.label, r.Location.SubvolumeName(r.ID))
		if err != nil {
			return nil, err
		}
		steps = append(steps, c)
	}
	add, err := rds.AddFileDisk(rds.FileDiskSpec{
		Slot: r.ID, FilePath: r.Location.FilePath(r.ID, layout), SizeBytes: size, NQN: NQN(r.ID), Port: r.Port,
		AllowedHosts: r.AllowedHosts,
	})
	if err != nil {
		return nil, err
	}
	steps = append(steps, add)
	v, err := m.createThenRead(ctx, r.ID, pi, layout, steps)
	if err != nil {
		return nil, err
	}
	return v, checkCreated(v, r, size)
}

// converge reads what a failed or repeated create left on the RDS and finishes it, returns the existing
// volume, or cleans up what it made.
func (m *Manager) converge(ctx context.Context, r CreateRequest, pi poolInfo, size int64, layout Layout, cause error) (*Volume, error) {
	st, err := m.readState(ctx, r.ID, r.Location, pi)
	if err != nil {
		return nil, fmt.Errorf("%w (while reading state after: %s)", err, cause.Error())
	}
	if st.disk != nil {
		v, err := fromDisk(st.disk)
		if err != nil {
			m.dropAddedSubvolume(ctx, r, layout, st)
			return nil, fmt.Errorf("volume name %q is taken on the RDS: %s: %w", r.ID, err.Error(), ErrAlreadyExists)
		}
		if err := compatible(v, r); err != nil {
			if v.Location != r.Location {
				m.dropAddedSubvolume(ctx, r, layout, st)
			}
			return nil, err
		}
		return v, nil
	}
	if st.subvolumeErr != nil {
		return nil, fmt.Errorf("%w (while reading state after: %s)", st.subvolumeErr, cause.Error())
	}
	if errors.Is(cause, rds.ErrNoSpace) {
		// The disk was refused; remove the empty subvolume the same script may have made, so nothing is
		// left behind, and report the RDS's own words.
		if layout == LayoutSubvolume && (st.subvolume != nil || st.dir) {
			if err := m.removeLeftovers(ctx, r.ID, r.Location, layout, st.subvolume); err != nil {
				klog.ErrorS(err, "could not remove the subvolume of a refused create", "volumeID", r.ID)
			}
		}
		return nil, cause
	}
	return m.add(ctx, r, pi, size, layout, st.subvolume == nil)
}

// checkName reads, before anything is added, what the RDS already has under the volume's name. The RDS may
// print and match subvolume names by their leaf only (routeros.md §1.4), and the leaf is the volume id: a
// second subvolume of the same id in another base path could then never be told apart from the first, so
// neither could be removed (a delete of the real volume would be refused for good). So a create never adds
// one while the id is taken:
//   - a disk with the id exists (this volume, repeated; the same name in another base path; another tool's
//     disk): the answer is decided from it, and nothing is added (done);
//   - no disk, but a subvolume or directory with the id somewhere (what an interrupted create or delete
//     left): it is removed first, if it has the driver's shape (else ErrNotOwned, done), and the create
//     goes on.
func (m *Manager) checkName(ctx context.Context, r CreateRequest, pi poolInfo) (*Volume, bool, error) {
	st, err := m.readState(ctx, r.ID, r.Location, pi)
	if err != nil {
		return nil, true, err
	}
	if st.disk != nil {
		v, err := existing(st.disk, r)
		return v, true, err
	}
	if st.subvolume != nil || st.subvolumeErr != nil || st.dir || st.leafElsewhere {
		if err := m.deleteLeftoversAnywhere(ctx, r.ID); err != nil {
			return nil, true, fmt.Errorf("volume name %q: what the RDS holds under it cannot be cleared for a new volume: %w", r.ID, err)
		}
	}
	return nil, false, nil
}

// existing decides a create whose name the RDS already has as a disk: the volume, if it is this one.
func existing(d *rds.Disk, r CreateRequest) (*Volume, error) {
	v, err := fromDisk(d)
	if err != nil {
		return nil, fmt.Errorf("volume name %q is taken on the RDS: %s: %w", r.ID, err.Error(), ErrAlreadyExists)
	}
	if err := compatible(v, r); err != nil {
		return nil, err
	}
	return v, nil
}

// dropAddedSubvolume removes the subvolume a create just added in r.Location before `/disk add` found the name
// taken by a disk elsewhere (another base path, another tool's disk): the create answers AlreadyExists and
// must leave nothing. Only a subvolume of exactly the driver's shape is removed (ownership.go); its own
// failure is logged, the AlreadyExists is what the CO must see.
func (m *Manager) dropAddedSubvolume(ctx context.Context, r CreateRequest, layout Layout, st state) {
	if layout != LayoutSubvolume || (st.subvolume == nil && !st.dir) {
		return
	}
	err := func() error {
		reads, err := leftoverReads(r.ID)
		if err != nil {
			return err
		}
		out, err := m.ros.Run(ctx, nil, reads...)
		if err != nil {
			return err
		}
		files, err := rds.FilesFrom(out[0])
		if err != nil {
			return err
		}
		disks, err := rds.DisksFrom(out[1])
		if err != nil {
			return err
		}
		if err := checkOwnShape(files, disks, subvolumeDir(r.Location.Pool, r.Location.SubvolumeName(r.ID))); err != nil {
			return err
		}
		return m.removeLeftovers(ctx, r.ID, r.Location, layout, st.subvolume)
	}()
	if err != nil {
		klog.ErrorS(err, "could not remove the subvolume of a create whose name is taken", "volumeID", r.ID,
			"location", r.Location.String())
	}
}

type state struct {
	disk      *rds.Disk
	subvolume *rds.Subvolume // the volume's subvolume, as listed
	// subvolumeErr says why the subvolume cannot be told apart from another with the same printed name; it
	// matters only when there is no disk to decide by.
	subvolumeErr error
	dir          bool // its directory is in /file print (a subvolume, or a leftover directory)
	// leafElsewhere: a subvolume whose printed path ends in the id is listed outside the volume's own place
	// (an RDS that prints paths tells it apart; one that prints leaves lists it as subvolume). What the driver
	// left there without a disk would otherwise outlive this volume's delete.
	leafElsewhere bool
}

// readState reads the disk for id and, on a btrfs pool, its subvolume and the subvolume's directory, in one exec.
func (m *Manager) readState(ctx context.Context, id string, loc Location, pi poolInfo) (state, error) {
	reads, err := stateReads(id, loc, pi)
	if err != nil {
		return state{}, err
	}
	out, err := m.ros.Run(ctx, nil, reads...)
	if err != nil {
		return state{}, err
	}
	return stateFrom(out, loc, pi, id)
}

// stateReads are the reads of readState: the disk for id and, on a btrfs pool, its subvolume and the
// subvolume's directory.
func stateReads(id string, loc Location, pi poolInfo) ([]rds.Cmd, error) {
	reads := make([]rds.Cmd, 0, 3)
	add := func(c rds.Cmd, err error) error {
		reads = append(reads, c)
		return err
	}
	errs := []error{add(rds.PrintDisks(rds.Eq("slot", id)))}
	if layoutOf(pi) == LayoutSubvolume {
		errs = append(errs, add(listSubvolumes(id)), add(rds.PrintFiles(rds.Eq("name", subvolumeDir(loc.Pool, loc.SubvolumeName(id))))))
	}
	return reads, errors.Join(errs...)
}

// stateFrom reads a state out of the answers to stateReads.
func stateFrom(out [][]routeros.Item, loc Location, pi poolInfo, id string) (state, error) {
	var st state
	disks, err := rds.DisksFrom(out[0])
	if err != nil {
		return state{}, err
	}
	if len(disks) > 0 {
		st.disk = &disks[0]
	}
	if len(out) > 1 {
		st.subvolume, st.subvolumeErr = subvolumeIn(out[1], loc.Pool, pi, loc.SubvolumeName(id))
		st.dir = len(out[2]) > 0
		st.leafElsewhere = leafListedElsewhere(out[1], loc.Pool, pi, loc.SubvolumeName(id))
	}
	return st, nil
}

// Get reads one volume. A disk that exists but is not this driver's is reported as ErrNotOwned.
func (m *Manager) Get(ctx context.Context, id string) (*Volume, error) {
	if err := rds.ValidName(id); err != nil {
		return nil, err
	}
	return m.runThenRead(ctx, id)
}

// runThenRead runs steps and then the read-back of volume id in one script, and returns the volume as the
// RDS reports it after the steps.
func (m *Manager) runThenRead(ctx context.Context, id string, steps ...rds.Cmd) (*Volume, error) {
	read, err := rds.PrintDisks(rds.Eq("slot", id))
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, steps, read)
	if err != nil {
		return nil, err
	}
	return oneVolume(out[0], id)
}

// disks reads the disks matching all filters, in one exec.
func (m *Manager) disks(ctx context.Context, where ...rds.Filter) ([]rds.Disk, error) {
	read, err := rds.PrintDisks(where...)
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, read)
	if err != nil {
		return nil, err
	}
	return rds.DisksFrom(out[0])
}

// List returns every volume of this driver on the RDS, sorted by id.
func (m *Manager) List(ctx context.Context) ([]Volume, error) {
	disks, err := m.disks(ctx, rds.Match("nvme-tcp-server-nqn", ourNQNs))
	if err != nil {
		return nil, err
	}
	vols := make([]Volume, 0, len(disks))
	for i := range disks {
		v, err := fromDisk(&disks[i])
		if err != nil {
			continue // a disk under our NQN prefix that we did not make (another tool's): not listed
		}
		vols = append(vols, *v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].ID < vols[j].ID })
	return vols, nil
}

// Expand grows the volume to at least requiredBytes (never shrinks) and returns the size the RDS reports.
//
// On the normal path it costs one exec: a resize guarded by the disk's NQN and by its size being smaller
// (rds.GrowDisk), then the read-back. Where the guard matched nothing although the disk is smaller (a
// RouterOS whose find does not compare sizes), or the guarded script failed for a reason other than the
// RDS's own refusal, it reads the volume and resizes it as before: two execs, the same errors.
func (m *Manager) Expand(ctx context.Context, id string, requiredBytes, limitBytes int64) (*Volume, error) {
	v, err := m.expand(ctx, id, requiredBytes, limitBytes)
	if err == nil {
		m.resized(v)
	}
	return v, err
}

func (m *Manager) expand(ctx context.Context, id string, requiredBytes, limitBytes int64) (*Volume, error) {
	if err := rds.ValidName(id); err != nil {
		return nil, err
	}
	size, err := RoundSize(requiredBytes, limitBytes)
	if err != nil {
		return nil, err
	}
	grow, err := rds.GrowDisk(id, NQN(id), size)
	if err != nil {
		return nil, err
	}
	v, err := m.runThenRead(ctx, id, grow)
	switch {
	case err == nil && v.SizeBytes >= size:
		return withinLimit(v, limitBytes)
	case err == nil, errors.Is(err, rds.ErrNoSpace), errors.Is(err, rds.ErrUnavailable),
		errors.Is(err, ErrNotFound), errors.Is(err, ErrNotOwned):
		// Smaller after the guarded resize, or an answer that reading first would not change.
		if err != nil {
			return nil, err
		}
	default:
		klog.V(2).InfoS("guarded resize failed; reading the volume and resizing it", "volumeID", id, "err", err)
	}
	return m.expandKnowingSize(ctx, id, size, limitBytes)
}

// withinLimit refuses a volume that is already larger than limitBytes (0: no limit). The guarded resize
// never touches such a disk (it only grows a smaller one, to at most the limit), and volumes are never
// shrunk, so the limit cannot be met: answering with a capacity above it would break the range.
func withinLimit(v *Volume, limitBytes int64) (*Volume, error) {
	if limitBytes > 0 && v.SizeBytes > limitBytes {
		return nil, fmt.Errorf("volume %q is already %d bytes, above the limit of %d bytes (volumes are never shrunk): %w",
			v.ID, v.SizeBytes, limitBytes, ErrOutOfRange)
	}
	return v, nil
}

// expandKnowingSize reads the volume, then resizes it only if it is smaller: two execs.
func (m *Manager) expandKnowingSize(ctx context.Context, id string, size, limitBytes int64) (*Volume, error) {
	v, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if v.SizeBytes >= size {
		return withinLimit(v, limitBytes)
	}
	set, err := rds.SetDiskSize(id, size)
	if err != nil {
		return nil, err
	}
	nv, err := m.runThenRead(ctx, id, set)
	if err != nil {
		return nil, err
	}
	if nv.SizeBytes < size {
		return nil, fmt.Errorf("volume %q is %d bytes after resizing to %d: %w", id, nv.SizeBytes, size, ErrIncomplete)
	}
	return nv, nil
}

// Capacity is the free space of a pool, as the RDS reports it.
func (m *Manager) Capacity(ctx context.Context, pool string) (int64, error) {
	d, err := m.pool(ctx, pool)
	if err != nil {
		return 0, err
	}
	return d.FreeBytes, nil
}

// PoolSpace is the size and free space of a pool.
func (m *Manager) PoolSpace(ctx context.Context, pool string) (size, free int64, err error) {
	d, err := m.pool(ctx, pool)
	if err != nil {
		return 0, 0, err
	}
	return d.SizeBytes, d.FreeBytes, nil
}

func (m *Manager) pool(ctx context.Context, pool string) (*rds.Disk, error) {
	disks, err := m.disks(ctx, rds.Eq("mount-point", pool))
	if err != nil {
		return nil, err
	}
	if len(disks) == 0 {
		return nil, fmt.Errorf("no pool is mounted at %q on the RDS: %w", pool, ErrNoPool)
	}
	return &disks[0], nil
}

// PoolFS is the filesystem of a pool ("btrfs", "xfs", ...), read once per process together with a btrfs
// pool's label.
func (m *Manager) PoolFS(ctx context.Context, pool string) (string, error) {
	pi, err := m.poolInfo(ctx, pool)
	if err != nil {
		return "", err
	}
	return pi.fs, nil
}

func layoutOf(pi poolInfo) Layout {
	if pi.fs == "btrfs" {
		return LayoutSubvolume
	}
	return LayoutFlat
}

func oneVolume(items []routeros.Item, id string) (*Volume, error) {
	disks, err := rds.DisksFrom(items)
	if err != nil {
		return nil, err
	}
	if len(disks) == 0 {
		return nil, fmt.Errorf("volume %q: %w", id, ErrNotFound)
	}
	return fromDisk(&disks[0])
}

// checkCreated verifies the read-back of a fresh create: the RDS must have what was asked for.
func checkCreated(v *Volume, r CreateRequest, size int64) error {
	switch {
	case v.SizeBytes < size:
		return fmt.Errorf("volume %q was created with %d bytes, %d asked: %w", r.ID, v.SizeBytes, size, ErrIncomplete)
	case !v.Exported:
		return fmt.Errorf("volume %q was created but is not exported over NVMe/TCP: %w", r.ID, ErrIncomplete)
	case len(r.AllowedHosts) > 0 && !sameHosts(v.AllowedHosts(), r.AllowedHosts):
		return fmt.Errorf("volume %q was created, but the RDS shows its export allowed to %q, not %q: %w", r.ID,
			v.AllowHostName, strings.Join(r.AllowedHosts, ","), ErrHostAccessUnsupported)
	}
	return nil
}

// compatible decides whether an existing volume satisfies a repeated CreateVolume with the same name.
func compatible(v *Volume, r CreateRequest) error {
	if v.Location != r.Location {
		return fmt.Errorf("volume %q exists in %s, not in %s: %w", r.ID, v.Location, r.Location, ErrAlreadyExists)
	}
	if v.SizeBytes < r.RequiredBytes || (r.LimitBytes > 0 && v.SizeBytes > r.LimitBytes) {
		return fmt.Errorf("volume %q exists with %d bytes, outside the requested range [%d, %d]: %w",
			r.ID, v.SizeBytes, r.RequiredBytes, r.LimitBytes, ErrAlreadyExists)
	}
	if !v.Exported {
		return fmt.Errorf("volume %q exists but is not exported: %w", r.ID, ErrIncomplete)
	}
	return nil
}

// Health reads a volume and says what is wrong with it, or "" when nothing is: the disk must be exported
// and its backing file must exist.
func (m *Manager) Health(ctx context.Context, id string) (*Volume, string, error) {
	v, err := m.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if !v.Exported {
		return v, fmt.Sprintf("disk %s is not exported over NVMe/TCP", id), nil
	}
	read, err := rds.PrintFiles(rds.Eq("name", v.FilePath))
	if err != nil {
		return nil, "", err
	}
	out, err := m.ros.Run(ctx, nil, read)
	if err != nil {
		return nil, "", err
	}
	if len(out[0]) == 0 {
		return v, fmt.Sprintf("the backing file %s of disk %s is missing on the RDS", v.FilePath, id), nil
	}
	return v, "", nil
}
