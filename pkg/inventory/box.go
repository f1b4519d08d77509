package inventory

import (
	"context"

	"github.com/rds-csi/rds-csi/pkg/driver"
)

// With several RDS boxes (--rds-boxes-config), a volume or snapshot id names its box: "<box>/<name>", and a
// plain name is on the default box (pkg/driver/boxid.go). The tools talk to one box at a time (the shared RDS
// flags), so the cluster side is seen from that box: only the PVs and contents whose handle is on it, with
// the box taken off, so that they compare with the names the box lists. A PV of another box is neither an
// orphan here nor a reason to keep something.

type onBox struct {
	c   Cluster
	box string
}

// OnBox is c as seen from box ("" for the default box); nil stays nil (no cluster).
func OnBox(c Cluster, box string) Cluster {
	if c == nil {
		return nil
	}
	return onBox{c: c, box: box}
}

func (o onBox) PersistentVolumes(ctx context.Context) ([]Ref, error) {
	refs, err := o.c.PersistentVolumes(ctx)
	return o.keep(refs), err
}

func (o onBox) SnapshotContents(ctx context.Context) ([]Ref, bool, error) {
	refs, known, err := o.c.SnapshotContents(ctx)
	return o.keep(refs), known, err
}

// keep returns the refs on o's box with their handles as that box names them. A handle that is no valid id is
// kept as written: it names nothing on any box, and is listed as such.
func (o onBox) keep(refs []Ref) []Ref {
	out := make([]Ref, 0, len(refs))
	for _, r := range refs {
		box, name, err := driver.ParseID(r.Handle)
		switch {
		case err != nil:
			if o.box == "" {
				out = append(out, r)
			}
		case box == o.box:
			r.Handle = name
			out = append(out, r)
		}
	}
	return out
}
