package volume

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// What a base path holds besides the driver's volumes, for `rds-csi orphans` (pkg/inventory): the items the
// disks do not account for. The rules are those of ownership.go: a directory <base>/<id> holding nothing but
// disk.img that no disk uses is a leftover of this driver and may be removed. Everything else is listed so that
// an admin sees it, and is never removed by the driver: a bare <id>.img without a disk, any other file, a disk
// whose NQN or file is not the driver's, and an empty directory (Delete removes one named by the volume it
// deletes, but one found by walking the base path proves nothing).

// StrayKind says what a stray item is.
type StrayKind string

const (
	// StrayLeftover is a volume directory (subvolume) <base>/<id> of the driver's shape that no disk uses.
	StrayLeftover StrayKind = "leftover"
	// StrayFile is any other file or directory directly in the base path that no disk uses.
	StrayFile StrayKind = "file"
	// StrayForeignDisk is a disk whose file lies in the base path but which is not one of the driver's
	// volumes (another NQN, another file name, not a file disk).
	StrayForeignDisk StrayKind = "foreign-disk"
)

// Stray is one item of a base path that is not (part of) one of the driver's volumes.
type Stray struct {
	Kind StrayKind
	// ID is the volume id a leftover belongs to, the slot of a foreign disk, "" for a file.
	ID        string
	Path      string // as /file print names it (no leading slash)
	SizeBytes int64
	// Owned is true only for a leftover of exactly the driver's shape; Reason says why an item is not.
	Owned  bool
	Reason string
}

// Strays reads, in one exec, the files and disks of the base path loc and returns what no volume of the
// driver accounts for, sorted by path.
func (m *Manager) Strays(ctx context.Context, loc Location) ([]Stray, error) {
	under := "^/*" + regexQuote(loc.String()) + "/"
	files, err := rds.PrintFiles(rds.Match("name", under))
	if err != nil {
		return nil, err
	}
	disks, err := rds.PrintDisks(rds.Match("file-path", under))
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, files, disks)
	if err != nil {
		return nil, err
	}
	fs, err := rds.FilesFrom(out[0])
	if err != nil {
		return nil, err
	}
	ds, err := rds.DisksFrom(out[1])
	if err != nil {
		return nil, err
	}
	return straysOf(fs, ds, loc), nil
}

// straysOf is Strays without the RDS: fs and ds are the files and disks below loc.
func straysOf(fs []rds.File, ds []rds.Disk, loc Location) []Stray {
	base := loc.String() + "/"
	used := map[string]bool{} // files a disk uses, and the directories holding them
	var out []Stray
	for i := range ds {
		d := &ds[i]
		fp := strings.TrimPrefix(d.FilePath, "/")
		if !strings.HasPrefix(fp, base) {
			continue // a near miss of the unanchored regex
		}
		used[fp] = true
		if rest := strings.TrimPrefix(fp, base); strings.Contains(rest, "/") {
			used[base+strings.SplitN(rest, "/", 2)[0]] = true
		}
		if v, err := fromDisk(d); err == nil && v.Location == loc {
			continue // one of the driver's volumes: listed with the volumes
		} else if err == nil {
			err = fmt.Errorf("disk %q is a volume of base path %s, not %s", d.Slot, v.Location, loc)
			out = append(out, Stray{Kind: StrayForeignDisk, ID: d.Slot, Path: fp, SizeBytes: d.SizeBytes, Reason: err.Error()})
		} else {
			out = append(out, Stray{Kind: StrayForeignDisk, ID: d.Slot, Path: fp, SizeBytes: d.SizeBytes, Reason: err.Error()})
		}
	}
	sizes := map[string]int64{}
	for _, f := range fs {
		sizes[strings.TrimPrefix(f.Name, "/")] = f.SizeBytes
	}
	for _, f := range fs {
		name := strings.TrimPrefix(f.Name, "/")
		rest := strings.TrimPrefix(name, base)
		if !strings.HasPrefix(name, base) || rest == "" || strings.Contains(rest, "/") || used[name] {
			continue // deeper items belong to the directory above them
		}
		s := Stray{Kind: StrayFile, Path: name, SizeBytes: f.SizeBytes}
		switch {
		case rds.ValidName(rest) == nil && ReservedName(rest) == nil && !strings.HasSuffix(rest, ".img") && isDirectory(f):
			size, hasImg := sizes[name+"/"+DiskFileName]
			s.SizeBytes = size
			if err := checkOwnShape(fs, ds, name); err != nil {
				s.Reason = err.Error()
			} else if !hasImg {
				// Delete removes such a directory of a volume it is asked about (a create that stopped before
				// /disk add); found by a walk of the base path, an empty directory proves nothing.
				s.Reason = "an empty directory: a create that stopped before /disk add, or someone else's; remove it by hand"
			} else {
				s.Kind, s.ID, s.Owned = StrayLeftover, rest, true
				s.Reason = "the directory of volume " + rest + " without its disk (an interrupted create or delete)"
			}
		case strings.HasSuffix(rest, ".img"):
			s.Reason = "no disk uses it; a flat " + rest + " cannot be told from someone else's image, so the driver never removes it"
		default:
			s.Reason = "not something this driver makes"
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// isDirectory tells a directory from a file in /file print (type=directory; a file's type names its
// extension, e.g. ".img file").
func isDirectory(f rds.File) bool { return f.Type == "directory" }

// DeleteLeftover removes the leftover directory (subvolume) of volume id in loc, only if it still has exactly
// the driver's shape and no disk uses it (ownership.go); otherwise it is ErrNotOwned and nothing changes.
// Unlike Delete, it never touches a disk, nor what the id left in any other base path.
func (m *Manager) DeleteLeftover(ctx context.Context, id string, loc Location) error {
	if err := rds.ValidName(id); err != nil {
		return err
	}
	places, err := m.findLeftovers(ctx, id)
	if err != nil {
		return err
	}
	for _, p := range places {
		if p.loc == loc {
			return m.deleteLeftovers(ctx, id, loc)
		}
	}
	return fmt.Errorf("no leftover of volume %q of the driver's shape in %s: %w", id, path.Join(loc.String(), id), ErrNotFound)
}

// Recognise tells whether a disk is one of the driver's volumes, as every operation does (fromDisk): it
// returns the volume, or an error wrapping ErrNotOwned that says why the disk is not one.
func Recognise(d *rds.Disk) (*Volume, error) { return fromDisk(d) }
