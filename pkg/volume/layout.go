package volume

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rds"
)

// DiskFileName is the name of the backing file inside a volume's subvolume.
const DiskFileName = "disk.img"

// Layout says how a volume's backing file is arranged on the pool.
type Layout string

const (
	// LayoutSubvolume keeps each volume in a btrfs subvolume <base>/<id>/disk.img, so it can be snapshotted.
	LayoutSubvolume Layout = "subvolume"
	// LayoutFlat is a bare file <base>/<id>.img: what the older public driver made, and what this driver
	// makes on pools that are not btrfs.
	LayoutFlat Layout = "flat"
)

// Location is a base path on the RDS, such as "pool/k8s": the pool (its mount point; the btrfs commands take
// the filesystem's label instead, which the driver reads from the RDS) and a directory inside it.
type Location struct {
	Pool string
	Dir  string
}

// ParseLocation checks and splits a base path "pool/dir[/dir...]". The pool alone is refused: volumes always
// live in a directory of their own so that nothing the driver creates mixes with the pool's other files.
func ParseLocation(s string) (Location, error) {
	s = strings.Trim(s, "/")
	if err := rds.ValidPath(s); err != nil {
		return Location{}, fmt.Errorf("base path %q: %w", s, err)
	}
	pool, dir, ok := strings.Cut(s, "/")
	if !ok || dir == "" {
		return Location{}, fmt.Errorf("base path %q must be <pool>/<directory>, e.g. pool/k8s: %w", s, rds.ErrInvalid)
	}
	return Location{Pool: pool, Dir: dir}, nil
}

func (l Location) String() string { return l.Pool + "/" + l.Dir }

// SubvolumeName is the volume's subvolume, as a path below the pool's root (what `add fs=<label> name=...`
// takes); the RDS may print and match it by its leaf, the volume id.
func (l Location) SubvolumeName(id string) string { return l.Dir + "/" + id }

// FilePath is where the volume's backing file lives for the given layout, as RouterOS names files (no
// leading slash).
func (l Location) FilePath(id string, layout Layout) string {
	if layout == LayoutFlat {
		return l.String() + "/" + id + ".img"
	}
	return l.String() + "/" + id + "/" + DiskFileName
}

// NQN is the NVMe subsystem name the volume is exported under.
// The prefix is nvme.NQNPrefix, defined once for the controller and the node.
func NQN(id string) string { return nvme.VolumeNQN(id) }

// ourNQNs is the RouterOS regular expression (`~`) of this driver's NQNs: nvme.NQNPrefix at the start.
var ourNQNs = "^" + regexp.QuoteMeta(nvme.NQNPrefix)

// Volume is a volume as the RDS really has it.
type Volume struct {
	ID        string
	SizeBytes int64
	FilePath  string
	NQN       string
	Port      int
	Exported  bool
	Layout    Layout
	Location  Location
	// AllowHostName is nvme-tcp-server-allow-host-name as the RDS printed it ("": any host may connect; see
	// AllowedHosts), and AllowHostShown whether it printed the property at all (hostaccess.go).
	AllowHostName  string
	AllowHostShown bool
}

// SubvolumeName is the volume's own subvolume, or "" for the flat layout.
func (v *Volume) SubvolumeName() string {
	if v.Layout != LayoutSubvolume {
		return ""
	}
	return v.Location.SubvolumeName(v.ID)
}

// fromDisk recognises a disk as one of this driver's volumes. A disk is ours only if its slot is the volume id,
// its NQN is ours for that id, and its file sits where this driver (or the older public driver, for flat files)
// puts it. Anything else is not touched: it may be a user's own disk that happens to share a name.
func fromDisk(d *rds.Disk) (*Volume, error) {
	if d.Type != "" && d.Type != "file" {
		return nil, fmt.Errorf("disk %q is of type %q, not a file disk: %w", d.Slot, d.Type, ErrNotOwned)
	}
	if d.NQN != NQN(d.Slot) {
		return nil, fmt.Errorf("disk %q is exported as %q, not %q: %w", d.Slot, d.NQN, NQN(d.Slot), ErrNotOwned)
	}
	fp := strings.TrimPrefix(d.FilePath, "/")
	dir, file := path.Split(fp)
	dir = strings.TrimSuffix(dir, "/")
	v := &Volume{ID: d.Slot, SizeBytes: d.SizeBytes, FilePath: fp, NQN: d.NQN, Port: d.Port, Exported: d.Exported,
		AllowHostName: strings.Join(d.AllowedHosts, ","), AllowHostShown: d.AllowHostShown}
	var base string
	switch {
	case file == DiskFileName && path.Base(dir) == d.Slot:
		v.Layout = LayoutSubvolume
		base = path.Dir(dir)
	case file == d.Slot+".img":
		v.Layout = LayoutFlat
		base = dir
	default:
		return nil, fmt.Errorf("disk %q has file %q, which is not where this driver keeps volumes: %w", d.Slot, fp, ErrNotOwned)
	}
	loc, err := ParseLocation(base)
	if err != nil {
		return nil, fmt.Errorf("disk %q has file %q outside any base path: %w", d.Slot, fp, ErrNotOwned)
	}
	v.Location = loc
	return v, nil
}
