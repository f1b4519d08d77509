package volume

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// Delete removes the volume: disk (which unexports it), backing file, and subvolume, in one script whose
// read-back proves all three are gone. It succeeds when the volume does not exist. A disk under this name
// that the driver did not make is refused with ErrNotOwned and left as it is.
//
// defaultLoc is where to look for leftovers when the disk is already gone (a delete that was interrupted
// after removing the disk): without the disk there is no record of the path, and only the driver's default
// base path is searched, by the exact names this driver gives.
//
// It costs two execs: the disk and the subvolume (listed by its leaf, however the RDS prints names), then the
// removal with its read-back. The subvolume is listed with the disk when the default pool is btrfs (so that
// a box with xfs pools only is never asked about btrfs), else in an exec of its own when the volume needs it.
func (m *Manager) Delete(ctx context.Context, id string, defaultLoc Location) error {
	if err := rds.ValidName(id); err != nil {
		return err
	}
	readDisk, err := rds.PrintDisks(rds.Eq("slot", id))
	if err != nil {
		return err
	}
	readSubvolumes, err := listSubvolumes(id)
	if err != nil {
		return err
	}
	reads := []rds.Cmd{readDisk}
	if pi, err := m.poolInfo(ctx, defaultLoc.Pool); err == nil && layoutOf(pi) == LayoutSubvolume {
		reads = append(reads, readSubvolumes)
	}
	out, err := m.ros.Run(ctx, nil, reads...)
	if err != nil {
		return err
	}
	v, err := oneVolume(out[0], id)
	switch {
	case errors.Is(err, ErrNotFound):
		return m.deleteLeftovers(ctx, id, defaultLoc)
	case err != nil:
		return err
	}
	var sv *rds.Subvolume
	if v.Layout == LayoutSubvolume {
		pi, err := m.poolInfo(ctx, v.Location.Pool)
		if err != nil {
			return err
		}
		if len(out) < 2 {
			more, err := m.ros.Run(ctx, nil, readSubvolumes)
			if err != nil {
				return err
			}
			out = append(out, more[0])
		}
		if sv, err = subvolumeIn(out[1], v.Location.Pool, pi, v.SubvolumeName()); err != nil {
			return err
		}
	}
	if err := m.remove(ctx, v.ID, v.FilePath, v.Location, v.Layout, true, sv); err != nil {
		return err
	}
	klog.V(2).InfoS("deleted volume", "volumeID", id, "layout", v.Layout, "file", v.FilePath)
	return nil
}

// deleteLeftovers removes a file and subvolume with this volume's exact names in loc when no disk refers to
// them any more.
func (m *Manager) deleteLeftovers(ctx context.Context, id string, loc Location) error {
	pi, err := m.poolInfo(ctx, loc.Pool)
	if err != nil {
		return err
	}
	layout := layoutOf(pi)
	st, err := m.readState(ctx, id, loc, pi)
	if err != nil {
		return err
	}
	if st.disk != nil {
		return fmt.Errorf("volume %q reappeared while deleting; retry: %w", id, ErrIncomplete)
	}
	if st.subvolumeErr != nil {
		return st.subvolumeErr
	}
	if layout == LayoutSubvolume && st.subvolume == nil && !st.dir {
		return nil
	}
	return m.removeLeftovers(ctx, id, loc, layout, st.subvolume)
}

func (m *Manager) removeLeftovers(ctx context.Context, id string, loc Location, layout Layout, sv *rds.Subvolume) error {
	if err := m.remove(ctx, id, loc.FilePath(id, layout), loc, layout, false, sv); err != nil {
		return err
	}
	klog.V(2).InfoS("removed leftovers of a volume without a disk", "volumeID", id, "location", loc.String())
	return nil
}

// remove runs the removal of a volume's disk (withDisk), file and subvolume sv (nil when none is listed) as
// one script, and fails with ErrIncomplete unless the script's read-back finds all of them gone. The
// subvolume's removal is proved by its directory leaving /file print, with the base directory as the
// control that the filter works.
func (m *Manager) remove(ctx context.Context, id, filePath string, loc Location, layout Layout, withDisk bool, sv *rds.Subvolume) error {
	steps, reads, err := removal(id, filePath, loc, layout, withDisk, sv)
	if err != nil {
		return err
	}
	out, err := m.ros.Run(ctx, steps, reads...)
	if err != nil {
		return err
	}
	last := len(out) - 1
	if err := checkControl(out[last], loc.String()); err != nil {
		return fmt.Errorf("volume %q: %w", id, err)
	}
	for i, items := range out[:last] {
		if len(items) > 0 {
			return fmt.Errorf("volume %q: %s still present after removing it: %w", id, reads[i], ErrIncomplete)
		}
	}
	return nil
}

// removal builds the ordered removal steps and the reads that must come back empty, then the control read
// that must not.
func removal(id, filePath string, loc Location, layout Layout, withDisk bool, sv *rds.Subvolume) (steps, reads []rds.Cmd, err error) {
	add := func(list *[]rds.Cmd, c rds.Cmd, e error) {
		if e != nil && err == nil {
			err = e
		}
		*list = append(*list, c)
	}
	if withDisk {
		c, e := rds.RemoveDisk(id)
		add(&steps, c, e)
		c, e = rds.PrintDisks(rds.Eq("slot", id))
		add(&reads, c, e)
	}
	c, e := rds.RemoveFile(filePath)
	add(&steps, c, e)
	c, e = rds.PrintFiles(rds.Eq("name", filePath))
	add(&reads, c, e)
	if layout == LayoutSubvolume {
		dir := subvolumeDir(loc.Pool, loc.SubvolumeName(id))
		if sv != nil {
			c, e := rds.RemoveSubvolume("", sv.Name)
			add(&steps, c, e)
		}
		// A directory left without its subvolume (a create that went on after the subvolume failed) goes too;
		// a subvolume the removal above did not find is refused here, loudly, rather than left behind.
		c, e := rds.RemoveFile(dir)
		add(&steps, c, e)
		c, e = rds.PrintFiles(rds.Eq("name", dir))
		add(&reads, c, e)
	}
	c, e = controlRead(loc)
	add(&reads, c, e)
	return steps, reads, err
}
