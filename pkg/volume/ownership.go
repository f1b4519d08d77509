package volume

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// What a volume leaves when a create or delete is interrupted, and how the driver proves it is its own.
//
// The disk is the volume's record: it names the file, so while it exists the volume is found wherever it
// was created. Once the disk is gone (a delete interrupted after `/disk remove`, a create that never got to
// `/disk add`), nothing on the RDS says which base path the volume was in, and the controller keeps no state
// of its own. The volume id is globally unique, though, and it is the leaf of the volume's subvolume: one
// `/file print` of every name holding the id finds the subvolume in any base path.
//
// Finding a thing by name is not proof that the driver made it: an admin's subvolume `<pool>/k8s/userdata`
// holding files has the name a mistyped static PV handle gives. The driver removes a subvolume without a disk
// only when it has exactly the shape the driver gives one, the directory <base>/<id> holding nothing but
// disk.img (or nothing: a create that stopped before `/disk add`), and no disk uses that file. Anything else
// is refused with ErrNotOwned and left as it is. A bare <base>/<id>.img (the flat layout) without a disk
// cannot be told from a user's image, so it is refused too: an admin removes it by hand if it is a leftover.

// leftover is the subvolume directory of a volume without a disk.
type leftover struct {
	loc Location
	dir string // as /file print names it: <pool>/<dir>/<id>
}

// leftoverReads lists, in one exec, every file whose name holds id and every disk whose file does.
func leftoverReads(id string) ([]rds.Cmd, error) {
	files, err := rds.PrintFiles(rds.Match("name", regexQuote(id)))
	if err != nil {
		return nil, err
	}
	disks, err := rds.PrintDisks(rds.Match("file-path", regexQuote(id)))
	if err != nil {
		return nil, err
	}
	return []rds.Cmd{files, disks}, nil
}

// leftoversOf picks, from the listings of leftoverReads, the subvolume directories of volume id that the
// driver can prove it made. Any candidate it cannot prove (another shape, a file a disk uses, a bare flat
// file) is ErrNotOwned, and then nothing is returned: the caller changes nothing.
func leftoversOf(files []rds.File, disks []rds.Disk, id string) ([]leftover, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		name := strings.TrimPrefix(f.Name, "/")
		if rds.ValidPath(name) != nil {
			continue // not a name RouterOS prints for anything this driver makes
		}
		switch {
		case path.Base(name) == id && !inSnapshotTree(name):
			dirs[name] = true
		case strings.HasSuffix(name, "/"+id+"/"+DiskFileName) && !inSnapshotTree(name):
			dirs[path.Dir(name)] = true
		case path.Base(name) == id+".img" && !inSnapshotTree(name):
			return nil, fmt.Errorf("file %s has the name of volume %q in the flat layout, but no disk uses it: this driver "+
				"cannot tell it from a file of someone else and leaves it (remove it by hand if it is a leftover): %w",
				name, id, ErrNotOwned)
		}
	}
	var out []leftover
	for _, dir := range sortedSet(dirs) {
		loc, err := ParseLocation(path.Dir(dir))
		if err != nil {
			continue // not in a base path the driver could have been given (e.g. the pool's root)
		}
		if err := checkOwnShape(files, disks, dir); err != nil {
			return nil, err
		}
		out = append(out, leftover{loc: loc, dir: dir})
	}
	return out, nil
}

// checkOwnShape proves dir is a volume subvolume the driver made: it holds nothing but disk.img, and no disk
// uses that file.
func checkOwnShape(files []rds.File, disks []rds.Disk, dir string) error {
	img := dir + "/" + DiskFileName
	for _, f := range files {
		name := strings.TrimPrefix(f.Name, "/")
		if name == dir || name == img || !strings.HasPrefix(name, dir+"/") {
			continue
		}
		return fmt.Errorf("%s holds %s, which this driver never puts in a volume: it is not the driver's and is "+
			"left as it is: %w", dir, name, ErrNotOwned)
	}
	for _, d := range disks {
		if strings.TrimPrefix(d.FilePath, "/") == img {
			return fmt.Errorf("%s is used by disk %q: it is not a leftover and is left as it is: %w", img, d.Slot, ErrNotOwned)
		}
	}
	return nil
}

// inSnapshotTree tells whether a path lies in a snapshots directory (<dir>-snapshots/<source id>/...), where
// a volume's id names the directory of its snapshots, not the volume.
func inSnapshotTree(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasSuffix(seg, snapshotsSuffix) {
			return true
		}
	}
	return false
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// findLeftovers reads the RDS once for what volume id left without its disk, in any base path, and returns
// the places the driver may remove.
func (m *Manager) findLeftovers(ctx context.Context, id string) ([]leftover, error) {
	reads, err := leftoverReads(id)
	if err != nil {
		return nil, err
	}
	out, err := m.ros.Run(ctx, nil, reads...)
	if err != nil {
		return nil, err
	}
	files, err := rds.FilesFrom(out[0])
	if err != nil {
		return nil, err
	}
	disks, err := rds.DisksFrom(out[1])
	if err != nil {
		return nil, err
	}
	return leftoversOf(files, disks, id)
}
