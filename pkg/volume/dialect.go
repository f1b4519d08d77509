package volume

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// How this package speaks to btrfs on the RDS, so that it works whichever way the still UNVERIFIED details
// fall (routeros.md §1.4):
//
//   - fs= is the filesystem's label, which is not the mount point (a formatted disk is labelled "<disk>-fs";
//     the captured RDS2216 pool prints fs-label="ocp-storage" beside mount-point="raid10"). The label is read
//     once per pool from the RDS: the btrfs filesystem that names the pool's disk among its devices in
//     `/disk/btrfs/filesystem print` (where the manual says the label is found), else the pool disk's
//     fs-label= (seen on hardware).
//   - A subvolume is made with name=<path below the root> (the manual: name=Snapshots/Documents-22012025), but
//     `print` and `find` may name it by its leaf only (the manual removes that snapshot with
//     [find where name=Documents-22012025]) or by its path. Every subvolume of this driver has a globally
//     unique leaf (the volume or snapshot id), it is listed by a substring match on the leaf, and a listed
//     subvolume is taken as the one at path only when its printed name is the leaf or that path.
//   - A removal finds the subvolume by the name as printed, and is verified by the subvolume's directory
//     disappearing from `/file print` (documented to list subvolumes by path), with the base directory as a
//     positive control, never by a find that might match nothing because of the dialect.
//   - parent= takes the leaf in the manual; a box that wants the path instead is detected on the first
//     snapshot (the leaf is refused), and remembered.

// poolInfo is what the driver learns once per pool: its filesystem and, for btrfs, the label fs= takes.
type poolInfo struct {
	fs    string
	label string
}

// poolInfo returns the pool's filesystem and btrfs label, read once per process: the pool disk, and for a
// btrfs pool the btrfs filesystems (one exec each, so that a pool that is not btrfs never depends on the
// btrfs menu).
func (m *Manager) poolInfo(ctx context.Context, mount string) (poolInfo, error) {
	if v, ok := m.pools.Load(mount); ok {
		return v.(poolInfo), nil
	}
	d, err := m.pool(ctx, mount)
	if err != nil {
		return poolInfo{}, err
	}
	pi := poolInfo{fs: d.FS}
	if pi.fs == "btrfs" {
		var filesystems []rds.Filesystem
		readFS, err := rds.PrintFilesystems()
		if err != nil {
			return poolInfo{}, err
		}
		out, err := m.ros.Run(ctx, nil, readFS)
		switch {
		case err == nil:
			filesystems = rds.FilesystemsFrom(out[0])
		case d.FSLabel != "" && !errors.Is(err, rds.ErrUnavailable):
			klog.InfoS("could not list the btrfs filesystems; taking the pool disk's fs-label", "mountPoint", mount,
				"label", d.FSLabel, "err", err)
		default:
			return poolInfo{}, err
		}
		if pi.label, err = btrfsLabel(d, filesystems); err != nil {
			return poolInfo{}, fmt.Errorf("pool %q: %w", mount, err)
		}
		klog.V(2).InfoS("btrfs pool found", "mountPoint", mount, "slot", d.Slot, "label", pi.label)
	}
	m.pools.Store(mount, pi)
	return pi, nil
}

// btrfsLabel picks the label of the pool disk's btrfs filesystem.
func btrfsLabel(d *rds.Disk, filesystems []rds.Filesystem) (string, error) {
	var labels []string
	for _, f := range filesystems {
		for _, dev := range f.Devices {
			if dev == d.Slot && f.Label != "" {
				labels = append(labels, f.Label)
			}
		}
	}
	switch {
	case len(labels) == 1:
		return labels[0], nil
	case len(labels) > 1:
		return "", fmt.Errorf("%d btrfs filesystems name disk %q as a device (%s): %w", len(labels), d.Slot,
			strings.Join(labels, ", "), rds.ErrProtocol)
	case d.FSLabel != "":
		return d.FSLabel, nil
	}
	return "", fmt.Errorf("disk %q is btrfs, but neither /disk/btrfs/filesystem print nor its fs-label= gives the "+
		"filesystem's label, which btrfs commands need as fs=: %w", d.Slot, rds.ErrProtocol)
}

// subvolumeDir is the subvolume rel of the pool mounted at mount as `/file print` names it.
func subvolumeDir(mount, rel string) string { return mount + "/" + rel }

// listSubvolumes is the read that lists every subvolume whose name contains leaf, whichever way names print.
func listSubvolumes(leaf string) (rds.Cmd, error) {
	return rds.PrintSubvolumes(rds.Match("name", regexQuote(leaf)))
}

// isPrintedAs tells whether name, as the RDS printed it, can be the subvolume rel of the pool at mount: its
// leaf, its path below the root, or its path with the mount point.
func isPrintedAs(name, mount, rel string) bool {
	name = strings.TrimPrefix(name, "/")
	return name == path.Base(rel) || name == rel || name == mount+"/"+rel
}

// onPool tells whether a subvolume printed with fs may be on the pool: fs is its label (or, on a box that
// prints the mount point there, the mount point), or not printed.
func onPool(fs string, mount string, pi poolInfo) bool {
	return fs == "" || fs == pi.label || fs == mount
}

// findSubvolume picks the subvolume rel of the pool at mount out of a listing: nil when it is not listed. Two
// listed subvolumes that both fit (a shared leaf, printed as the leaf) cannot be told apart by any find:
// that is ErrNotOwned, and nothing is done to either.
func findSubvolume(svs []rds.Subvolume, mount string, pi poolInfo, rel string) (*rds.Subvolume, error) {
	var found []*rds.Subvolume
	for i := range svs {
		if isPrintedAs(svs[i].Name, mount, rel) && onPool(svs[i].FS, mount, pi) {
			found = append(found, &svs[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d subvolumes on the RDS are named %q, so none can be told to be %s: %w",
		len(found), found[0].Name, subvolumeDir(mount, rel), ErrNotOwned)
}

// leafListedElsewhere tells whether a listing holds a subvolume of the pool that is printed with a path ending
// in rel's leaf but is not rel (the same id in another base path), outside any snapshots tree.
func leafListedElsewhere(items []routeros.Item, mount string, pi poolInfo, rel string) bool {
	svs, err := rds.SubvolumesFrom(items)
	if err != nil {
		return false
	}
	leaf := path.Base(rel)
	for _, sv := range svs {
		name := strings.TrimPrefix(sv.Name, "/")
		if strings.Contains(name, "/") && path.Base(name) == leaf && !isPrintedAs(name, mount, rel) &&
			!inSnapshotTree(name) && onPool(sv.FS, mount, pi) {
			return true
		}
	}
	return false
}

// subvolumeIn parses a listing and picks the subvolume rel out of it.
func subvolumeIn(items []routeros.Item, mount string, pi poolInfo, rel string) (*rds.Subvolume, error) {
	svs, err := rds.SubvolumesFrom(items)
	if err != nil {
		return nil, err
	}
	return findSubvolume(svs, mount, pi, rel)
}

// Parent forms: what `subvolume add parent=` takes.
const (
	parentUnknown int32 = iota
	parentLeaf          // the manual's form
	parentPath
)

// parentArg is how parent= names the subvolume rel in the given form.
func parentArg(rel string, form int32) string {
	if form == parentPath {
		return rel
	}
	return path.Base(rel)
}

// addSnapshot runs the snapshot of parentRel as name (then the steps after it, then the reads) on the pool
// labelled label. Until the RDS has shown which form parent= takes, the snapshot runs on its own, first with
// the leaf and, if the RDS does not find that, with the path; the form that works is remembered.
func (m *Manager) addSnapshot(ctx context.Context, label, parentRel, name string, readOnly bool, after []rds.Cmd,
	reads ...rds.Cmd) ([][]routeros.Item, error) {
	form := m.parentForm.Load()
	if form != parentUnknown {
		add, err := rds.AddSnapshot(label, parentArg(parentRel, form), name, readOnly)
		if err != nil {
			return nil, err
		}
		return m.ros.Run(ctx, append([]rds.Cmd{add}, after...), reads...)
	}
	var firstErr error
	for _, f := range []int32{parentLeaf, parentPath} {
		add, err := rds.AddSnapshot(label, parentArg(parentRel, f), name, readOnly)
		if err != nil {
			return nil, err
		}
		steps, rs := []rds.Cmd{add}, reads
		if len(after) > 0 {
			rs = nil // the steps after depend on the snapshot: they run once it is made
		}
		out, err := m.ros.Run(ctx, steps, rs...)
		if err == nil {
			m.parentForm.CompareAndSwap(parentUnknown, f)
			klog.V(2).InfoS("the RDS takes a snapshot's parent= in this form", "parent", parentArg(parentRel, f))
			if len(after) == 0 {
				return out, nil
			}
			return m.ros.Run(ctx, after, reads...)
		}
		if firstErr == nil {
			firstErr = err
		}
		if !isRefusedValue(err) {
			return nil, err
		}
	}
	return nil, firstErr
}

// isRefusedValue tells whether the RDS refused a command for a name it did not know.
func isRefusedValue(err error) bool {
	return errors.Is(err, rds.ErrNotFound) || errors.Is(err, rds.ErrInvalid)
}

// Verification reads: the base directory must be listed for a read-back of files to prove anything.
func controlRead(loc Location) (rds.Cmd, error) { return rds.PrintFiles(rds.Eq("name", loc.String())) }

// checkControl fails when the positive control of a read-back came back empty: the /file filters do not match
// the way this RDS names files, and a read-back that finds nothing proves nothing.
func checkControl(items []routeros.Item, dir string) error {
	if len(items) == 0 {
		return fmt.Errorf("the RDS does not list the directory %s in /file print, so no removal in it can be verified "+
			"(a filter that matches nothing would look like success): %w", dir, rds.ErrProtocol)
	}
	return nil
}
