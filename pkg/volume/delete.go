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
// When the disk is already gone (a delete interrupted after removing it, a create that never added it), the
// leftovers are found in any base path from the RDS alone, and removed only when they have exactly the shape
// the driver gives them (ownership.go); anything else is ErrNotOwned and left as it is. defaultLoc is not
// needed for that any more; it is kept for the callers.
func (m *Manager) Delete(ctx context.Context, id string, defaultLoc Location) error {
	if err := rds.ValidName(id); err != nil {
		return err
	}
	v, err := m.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return m.deleteLeftoversAnywhere(ctx, id)
	case err != nil:
		return err
	}
	if err := m.remove(ctx, v.ID, v.FilePath, v.Location, v.Layout, true); err != nil {
		return err
	}
	klog.V(2).InfoS("deleted volume", "volumeID", id, "layout", v.Layout, "file", v.FilePath)
	return nil
}

// deleteLeftoversAnywhere removes what volume id left without its disk, wherever it was created.
func (m *Manager) deleteLeftoversAnywhere(ctx context.Context, id string) error {
	places, err := m.findLeftovers(ctx, id)
	if err != nil {
		return err
	}
	for _, p := range places {
		if err := m.deleteLeftovers(ctx, id, p.loc); err != nil {
			return err
		}
	}
	return nil
}

// deleteLeftovers removes a file and subvolume with this volume's exact names in loc when no disk refers to
// them any more.
func (m *Manager) deleteLeftovers(ctx context.Context, id string, loc Location) error {
	layout, err := m.layoutFor(ctx, loc.Pool)
	if err != nil {
		return err
	}
	st, err := m.readState(ctx, id, loc, layout)
	if err != nil {
		return err
	}
	if st.disk != nil {
		return fmt.Errorf("volume %q reappeared while deleting; retry: %w", id, ErrIncomplete)
	}
	if layout == LayoutSubvolume && !st.subvolume {
		return nil
	}
	return m.removeLeftovers(ctx, id, loc, layout)
}

func (m *Manager) removeLeftovers(ctx context.Context, id string, loc Location, layout Layout) error {
	if err := m.remove(ctx, id, loc.FilePath(id, layout), loc, layout, false); err != nil {
		return err
	}
	klog.V(2).InfoS("removed leftovers of a volume without a disk", "volumeID", id, "location", loc.String())
	return nil
}

// remove runs the removal of a volume's disk (withDisk), file and subvolume as one script, and fails with
// ErrIncomplete unless the script's read-back finds all of them gone.
func (m *Manager) remove(ctx context.Context, id, filePath string, loc Location, layout Layout, withDisk bool) error {
	steps, reads, err := removal(id, filePath, loc, layout, withDisk)
	if err != nil {
		return err
	}
	out, err := m.ros.Run(ctx, steps, reads...)
	if err != nil {
		return err
	}
	for i, items := range out {
		if len(items) > 0 {
			return fmt.Errorf("volume %q: %s still present after removing it: %w", id, reads[i], ErrIncomplete)
		}
	}
	return nil
}

// removal builds the ordered removal steps and the reads that must come back empty.
func removal(id, filePath string, loc Location, layout Layout, withDisk bool) (steps, reads []rds.Cmd, err error) {
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
		c, e := rds.RemoveSubvolume(loc.Pool, loc.SubvolumeName(id))
		add(&steps, c, e)
		c, e = rds.PrintSubvolumes(rds.Eq("fs", loc.Pool), rds.Eq("name", loc.SubvolumeName(id)))
		add(&reads, c, e)
	}
	return steps, reads, err
}
