package volume_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// TestSnapshotsOfTheFirstLayout: snapshots the driver made before the snapshots container, at
// <dir>-snapshots/<source>/<bytes>/<id> (made by subvolume add with missing parents), stay listable under
// their id, restorable with their data, and deletable with their directories tidied, beside snapshots of the
// current layout. Where subvolume add makes no missing parents, the first layout could never have been made
// (the risk the container removes): that add is refused, and nothing is left.
func TestSnapshotsOfTheFirstLayout(t *testing.T) {
	forDialects(t, func(t *testing.T, d dialect) {
		e := newEnv(t, d.cfg, false)
		ctx := context.Background()
		const size = volume.GiB
		src := must(e.m.Create(ctx, e.req("pvc-src", size)))
		data := newPattern(t)
		e.write(t, src.FilePath, size, data)
		old := "k8s-snapshots/pvc-src/1073741824/snap-old"
		add := must(rds.AddSnapshot(e.label(), e.parent(e.loc.SubvolumeName("pvc-src")), old, true))
		if d.cfg.SubvolumeAddParents == rdssim.ParentsRefuse {
			if _, err := e.client.Run(ctx, []rds.Cmd{add}); err == nil {
				t.Fatal("the first layout's snapshot was made although its parents are missing")
			}
			for _, sv := range e.sim.Subvolumes() {
				if sv.ReadOnly {
					t.Fatalf("a refused add left %+v", sv)
				}
			}
			// The current layout needs no missing parent.
			must(e.m.CreateSnapshot(ctx, "snap-new", "pvc-src"))
			return
		}
		e.raw(t, add)
		must(e.m.CreateSnapshot(ctx, "snap-new", "pvc-src"))

		all := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{SourceVolumeID: "pvc-src"}))
		if got := ids(all); !sameStrings(got, []string{"pvc-src:snap-new", "pvc-src:snap-old"}) {
			t.Fatalf("snapshots of both layouts: %v", got)
		}
		byID := must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{ID: "snap-old"}))
		if len(byID) != 1 || byID[0].SubvolumeName() != old || byID[0].SizeBytes != size || byID[0].CreationTime.IsZero() {
			t.Fatalf("the first layout's snapshot by id: %+v", byID)
		}
		// Taking it again by the same name and source is the same snapshot, not a second one.
		if again := must(e.m.CreateSnapshot(ctx, "snap-old", "pvc-src")); again.SubvolumeName() != old {
			t.Fatalf("repeat of an old snapshot made %+v", again)
		}
		if _, err := e.m.CreateSnapshot(ctx, "snap-old", "pvc-other"); !errors.Is(err, volume.ErrNotFound) && !errors.Is(err, volume.ErrAlreadyExists) {
			t.Fatalf("the old snapshot's name for another source: %v", err)
		}
		restored := must(e.m.CreateFrom(ctx, e.req("pvc-restored", 2*size), volume.Source{SnapshotID: "snap-old"}))
		e.wantData(t, "restore of the first layout", restored.FilePath, size, 2*size, data)
		// The restore is writable.
		written := newPattern(t)
		e.write(t, restored.FilePath, size, written)
		if v := must(e.m.CreateFrom(ctx, e.req("pvc-restored", 2*size), volume.Source{SnapshotID: "snap-old"})); v.FilePath != restored.FilePath {
			t.Fatalf("repeat of the restore: %+v", v)
		}

		if err := e.m.DeleteSnapshot(ctx, "snap-old"); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"pool/" + old, "pool/k8s-snapshots/pvc-src/1073741824", "pool/k8s-snapshots/pvc-src"} {
			if e.dirExists(t, dir) {
				t.Errorf("%s is left after the source's last old snapshot went", dir)
			}
		}
		if got := ids(must(e.m.ListSnapshots(ctx, volume.SnapshotFilter{}))); !sameStrings(got, []string{"pvc-src:snap-new"}) {
			t.Fatalf("after deleting the old one: %v", got)
		}
		e.wantData(t, "restore after its old snapshot went", restored.FilePath, size, 2*size, written)
	})
}
