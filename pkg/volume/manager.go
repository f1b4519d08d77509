// Package volume is the volume domain of the driver: how a CSI volume maps onto RDS disks, files and btrfs
// subvolumes (design §2), and the create/delete/expand flows that converge after a crash at any step. It
// speaks to the RDS only through the RouterOS interface, and spends one SSH exec per operation on the
// normal path: the mutations and their read-back run as one RouterOS script.
package volume

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
}

// Create makes the volume, or returns it if it already exists compatibly. On the normal path it costs one
// exec (plus one, once per pool and process, to learn the pool's filesystem).
func (m *Manager) Create(ctx context.Context, r CreateRequest) (*Volume, error) {
	if err := rds.ValidName(r.ID); err != nil {
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
	})
	if err != nil {
		return nil, err
	}
	steps = append(steps, add)
	v, err := m.runThenRead(ctx, r.ID, steps...)
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
			return nil, fmt.Errorf("volume name %q is taken on the RDS: %s: %w", r.ID, err.Error(), ErrAlreadyExists)
		}
		if err := compatible(v, r); err != nil {
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

type state struct {
	disk      *rds.Disk
	subvolume *rds.Subvolume // the volume's subvolume, as listed
	// subvolumeErr says why the subvolume cannot be told apart from another with the same printed name; it
	// matters only when there is no disk to decide by.
	subvolumeErr error
	dir          bool // its directory is in /file print (a subvolume, or a leftover directory)
}

// readState reads the disk for id and, on a btrfs pool, its subvolume and the subvolume's directory, in one exec.
func (m *Manager) readState(ctx context.Context, id string, loc Location, pi poolInfo) (state, error) {
	reads := make([]rds.Cmd, 0, 3)
	add := func(c rds.Cmd, err error) error {
		reads = append(reads, c)
		return err
	}
	errs := []error{add(rds.PrintDisks(rds.Eq("slot", id)))}
	if layoutOf(pi) == LayoutSubvolume {
		errs = append(errs, add(listSubvolumes(id)), add(rds.PrintFiles(rds.Eq("name", subvolumeDir(loc.Pool, loc.SubvolumeName(id))))))
	}
	if err := errors.Join(errs...); err != nil {
		return state{}, err
	}
	out, err := m.ros.Run(ctx, nil, reads...)
	if err != nil {
		return state{}, err
	}
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
	disks, err := m.disks(ctx, rds.Match("nvme-tcp-server-nqn", `^nqn\.2000-02\.com\.mikrotik:`))
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
func (m *Manager) Expand(ctx context.Context, id string, requiredBytes, limitBytes int64) (*Volume, error) {
	v, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	size, err := RoundSize(requiredBytes, limitBytes)
	if err != nil {
		return nil, err
	}
	if v.SizeBytes >= size {
		return v, nil
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
		return nil, fmt.Errorf("no pool is mounted at %q on the RDS: %w", pool, ErrNotFound)
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
