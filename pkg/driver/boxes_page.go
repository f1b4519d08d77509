package driver

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/volume"
)

// page returns one page of the volumes of every box, their ids with the box prefix (boxid.go). Each box's
// volume manager pages its own walk (volume.Manager.Page, one read of that RDS per walk); the boxes are walked
// one after the other in d.boxes.order. With one box the token is the manager's own; with several it is
// "<box>@<the manager's token>", and "<box>@" starts at that box's first volume. A box that does not answer
// fails the page (Unavailable): a list that silently missed a box would look like its volumes were gone.
func (d *Driver) page(ctx context.Context, maxEntries int32, token string) ([]volume.Volume, string, error) {
	if maxEntries < 0 {
		return nil, "", invalid("max_entries must not be negative")
	}
	if d.boxes == nil {
		return nil, "", invalid("this process manages no RDS")
	}
	order := d.boxes.order
	several := len(order) > 1
	first, inner := 0, token
	if several && token != "" {
		name, rest, ok := strings.Cut(token, "@")
		i := boxIndex(order, name)
		if !ok || i < 0 {
			return nil, "", toStatus(errorOf(errStaleToken, "starting token %q is not one this driver gave out; list again from the start", token))
		}
		first, inner = i, rest
	}
	var out []volume.Volume
	left := int(maxEntries)
	for i := first; i < len(order); i++ {
		b := order[i]
		if maxEntries > 0 && left == 0 {
			return out, b.Name + "@", nil
		}
		vols, next, err := b.Volumes.Page(ctx, inner, left)
		if err != nil {
			if several {
				err = fmt.Errorf("listing the volumes of box %s: %w", b.Name, err)
			}
			return nil, "", toStatus(err) // volume.ErrBadToken is Aborted: list again from the start
		}
		for _, v := range vols {
			v.ID = b.id(v.ID)
			out = append(out, v)
		}
		if next != "" {
			if !several {
				return out, next, nil
			}
			return out, b.Name + "@" + next, nil
		}
		inner = ""
		if maxEntries > 0 {
			left -= len(vols)
		}
	}
	return out, "", nil
}

func boxIndex(order []*box, name string) int {
	for i, b := range order {
		if b.Name == name {
			return i
		}
	}
	return -1
}

// listSnapshots reads the snapshots of the boxes f can match (one box when f names a snapshot or a source
// volume, else every box), ids with their box prefix, sorted by id for onePage. A filter on an id this driver
// could not have given out, or on an unconfigured box, matches nothing.
func (d *Driver) listSnapshots(ctx context.Context, snapshotID, sourceID string) ([]volume.Snapshot, error) {
	if d.boxes == nil {
		return nil, invalid("this process manages no RDS")
	}
	targets := d.boxes.order
	var f volume.SnapshotFilter
	for _, want := range []struct {
		id  string
		set *string
	}{{snapshotID, &f.ID}, {sourceID, &f.SourceVolumeID}} {
		if want.id == "" {
			continue
		}
		b, name, err := d.resolve(want.id, "snapshot")
		if err != nil {
			return nil, nil // no snapshot can have such an id or source
		}
		if len(targets) == 1 && targets[0] != b {
			return nil, nil // the snapshot id and the source are on different boxes
		}
		targets, *want.set = []*box{b}, name
	}
	var out []volume.Snapshot
	for _, b := range targets {
		snaps, err := b.Volumes.ListSnapshots(ctx, f)
		if err != nil {
			if len(d.boxes.order) > 1 {
				err = fmt.Errorf("listing the snapshots of box %s: %w", b.Name, err)
			}
			return nil, toStatus(err)
		}
		for _, s := range snaps {
			s.ID, s.SourceVolumeID = b.id(s.ID), b.id(s.SourceVolumeID)
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
