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
func Delete(ctx context.Context, r RDS, rep *Report, w io.Writer) []Outcome {
	var out []Outcome
	for _, it := range rep.Items {
		if !it.Deletable || it.Side != OnlyOnRDS {
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
