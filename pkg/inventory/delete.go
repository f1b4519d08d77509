package inventory

import (
	"context"
	"fmt"
	"io"
)

// Outcome is what Delete did with one item.
type Outcome struct {
	Item Item
	Err  error
}

// Delete removes the deletable items of rep, which Compare returned in this run, through pkg/volume's own
// deletions (each of which reads the RDS again and refuses what the driver does not own), and writes one line
// per item to w. Items that are not deletable (other files, foreign disks, cluster objects) are never touched.
// It goes on after a failure and returns every outcome; the caller turns failures into the exit status.
//
// The cluster is read once more first: an item that a PV or VolumeSnapshotContent has named since the listing
// (a PVC provisioned meanwhile, a disk just imported) is skipped, and so is everything when that read fails.
func Delete(ctx context.Context, r RDS, c Cluster, rep *Report, w io.Writer) []Outcome {
	named, err := namedNow(ctx, c)
	if err != nil {
		fmt.Fprintf(w, "FAILED to read the cluster again before deleting; nothing deleted: %v\n", err)
		return []Outcome{{Err: err}}
	}
	var out []Outcome
	for _, it := range rep.Items {
		if !it.Deletable || it.Side != OnlyOnRDS {
			continue
		}
		if by := named[string(it.Kind)+"/"+it.ID]; by != "" {
			fmt.Fprintf(w, "skipped %s %s (%s): %s names it now\n", it.Kind, it.ID, it.Path, by)
			continue
		}
		var err error
		switch it.Kind {
		case KindVolume:
			err = r.Delete(ctx, it.ID, it.loc)
		case KindLeftover:
			err = r.DeleteLeftover(ctx, it.ID, it.loc)
		case KindSnapshot:
			err = r.DeleteSnapshot(ctx, it.ID)
		default:
			err = fmt.Errorf("a %s is never deleted", it.Kind)
		}
		if err != nil {
			fmt.Fprintf(w, "FAILED to delete %s %s (%s): %v\n", it.Kind, it.ID, it.Path, err)
		} else {
			fmt.Fprintf(w, "deleted %s %s (%s)\n", it.Kind, it.ID, it.Path)
		}
		out = append(out, Outcome{Item: it, Err: err})
	}
	return out
}

// namedNow maps "volume/<id>", "leftover/<id>" and "snapshot/<id>" to the cluster object naming that id.
func namedNow(ctx context.Context, c Cluster) (map[string]string, error) {
	pvs, err := c.PersistentVolumes(ctx)
	if err != nil {
		return nil, err
	}
	contents, _, err := c.SnapshotContents(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pvs {
		out[string(KindVolume)+"/"+p.Handle] = "PersistentVolume " + p.Name
		out[string(KindLeftover)+"/"+p.Handle] = "PersistentVolume " + p.Name
	}
	for _, s := range contents {
		out[string(KindSnapshot)+"/"+s.Handle] = "VolumeSnapshotContent " + s.Name
	}
	return out, nil
}
