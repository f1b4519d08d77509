package rds

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// Disk is an entry of `/disk print detail`: a file-backed disk, a RAID array (a pool), a drive.
type Disk struct {
	Index int
	Flags string
	Type  string
	Slot  string
	// FilePath is the backing file of a file disk, without the leading slash RouterOS prints.
	FilePath string
	// SizeBytes is the exact size from `size=`, or, when that is absent, `file-size=` (which RouterOS
	// rounds to one decimal of a unit).
	SizeBytes       int64
	NQN             string
	Port            int
	Exported        bool
	MountFilesystem bool
	MountPoint      string
	// FS is the filesystem of a formatted disk ("btrfs", "xfs", ...), empty when RouterOS prints "-".
	FS string
	// FSLabel is the filesystem's label (fs-label=), what btrfs commands take as fs=; empty when not printed.
	FSLabel   string
	FreeBytes int64
	// AllowedHosts are the host NQNs of nvme-tcp-server-allow-host-name (AllowHostKey), split at ','; none
	// means any host may connect. AllowHostShown tells whether the property was printed at all.
	AllowedHosts   []string
	AllowHostShown bool
	// Props holds every property as printed.
	Props map[string]string
}

// File is an entry of `/file print detail`.
type File struct {
	// Name is the path without a leading slash.
	Name string
	Type string
	// SizeBytes is zero for directories; a human size ("10.0GiB") is rounded by RouterOS.
	SizeBytes    int64
	LastModified time.Time
}

// Subvolume is an entry of `/disk/btrfs/subvolume/print detail`.
type Subvolume struct {
	Name         string
	FS           string
	Parent       string
	ReadOnly     bool
	Snapshot     bool
	UUID         string
	CreationTime time.Time
}

// Filesystem is an entry of `/disk/btrfs/filesystem/print detail`. The manual names its label and its
// devices (find where present-devs=<disk>, devs=<disk>); the printed shape is UNVERIFIED.
type Filesystem struct {
	Label string
	UUID  string
	// Devices are the disk slots of devs= and present-devs=, as printed (lists split at commas and blanks).
	Devices []string
	Props   map[string]string
}

// FilesystemsFrom converts `/disk/btrfs/filesystem/print detail` items.
func FilesystemsFrom(items []routeros.Item) []Filesystem {
	out := make([]Filesystem, 0, len(items))
	for _, it := range items {
		p := it.Props
		f := Filesystem{Label: p["label"], UUID: p["uuid"], Props: p}
		seen := map[string]bool{}
		for _, key := range []string{"present-devs", "devs"} {
			for _, d := range strings.FieldsFunc(p[key], func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
				if !seen[d] {
					seen[d] = true
					f.Devices = append(f.Devices, d)
				}
			}
		}
		out = append(out, f)
	}
	return out
}

// DisksFrom converts `/disk print detail` items. A number that does not parse is an ErrProtocol error.
func DisksFrom(items []routeros.Item) ([]Disk, error) {
	out := make([]Disk, 0, len(items))
	for _, it := range items {
		p := it.Props
		d := Disk{
			Index:           it.Index,
			Flags:           it.Flags,
			Type:            p["type"],
			Slot:            p["slot"],
			FilePath:        strings.TrimPrefix(p["file-path"], "/"),
			NQN:             p["nvme-tcp-server-nqn"],
			Exported:        p["nvme-tcp-export"] == "yes" || (p["nvme-tcp-export"] == "" && strings.Contains(it.Flags, "t")),
			MountFilesystem: p["mount-filesystem"] == "yes",
			MountPoint:      p["mount-point"],
			FS:              p["fs"],
			FSLabel:         p["fs-label"],
			Props:           p,
		}
		if d.FS == "-" {
			d.FS = ""
		}
		d.AllowedHosts, d.AllowHostShown = SplitHosts(p[AllowHostKey]), hasKey(p, AllowHostKey)
		var err error
		sizeKey := "size"
		if _, ok := p["size"]; !ok {
			sizeKey = "file-size"
		}
		if d.SizeBytes, err = optionalBytes(p, sizeKey); err != nil {
			return nil, itemError("disk", d.Slot, err)
		}
		if d.FreeBytes, err = optionalBytes(p, "free"); err != nil {
			return nil, itemError("disk", d.Slot, err)
		}
		if v, ok := p["nvme-tcp-server-port"]; ok && v != "" {
			if d.Port, err = strconv.Atoi(strings.ReplaceAll(v, " ", "")); err != nil {
				return nil, itemError("disk", d.Slot, fmt.Errorf("nvme-tcp-server-port %q: %w", v, err))
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// SplitHosts splits a printed nvme-tcp-server-allow-host-name value into its hosts (none for "").
func SplitHosts(v string) []string {
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func hasKey(p map[string]string, k string) bool {
	_, ok := p[k]
	return ok
}

// FilesFrom converts `/file print detail` items.
func FilesFrom(items []routeros.Item) ([]File, error) {
	out := make([]File, 0, len(items))
	for _, it := range items {
		p := it.Props
		f := File{Name: strings.TrimPrefix(p["name"], "/"), Type: p["type"]}
		var err error
		if f.SizeBytes, err = optionalBytes(p, "size"); err != nil {
			return nil, itemError("file", f.Name, err)
		}
		if f.LastModified, err = optionalTime(p, "last-modified"); err != nil {
			return nil, itemError("file", f.Name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// SubvolumesFrom converts `/disk/btrfs/subvolume/print detail` items.
func SubvolumesFrom(items []routeros.Item) ([]Subvolume, error) {
	out := make([]Subvolume, 0, len(items))
	for _, it := range items {
		p := it.Props
		s := Subvolume{
			Name:     p["name"],
			FS:       p["fs"],
			Parent:   p["parent"],
			ReadOnly: p["read-only"] == "yes" || (p["read-only"] == "" && strings.Contains(it.Flags, "r")),
			Snapshot: strings.Contains(it.Flags, "S") || p["snapshot"] == "yes",
			UUID:     p["uuid"],
		}
		var err error
		if s.CreationTime, err = optionalTime(p, "creation-time"); err != nil {
			return nil, itemError("subvolume", s.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func optionalBytes(p map[string]string, key string) (int64, error) {
	v, ok := p[key]
	if !ok || v == "" || v == "-" || v == "none" {
		return 0, nil
	}
	n, err := routeros.ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return n, nil
}

func optionalTime(p map[string]string, key string) (time.Time, error) {
	v, ok := p[key]
	if !ok || v == "" {
		return time.Time{}, nil
	}
	t, err := routeros.ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", key, err)
	}
	return t, nil
}

// itemError is an unusable listing: ErrProtocol, with the parse failure as the explanation.
func itemError(what, name string, err error) error {
	return fmt.Errorf("%s %q as printed by the RDS: %s: %w", what, name, err.Error(), ErrProtocol)
}
