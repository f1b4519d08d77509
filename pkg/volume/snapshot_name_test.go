package volume

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// The subvolume listings are `/disk/btrfs/subvolume/print detail` (CRLF) after a volume, two snapshots of it
// whose ids share a prefix, a restore, and a user's subvolumes that look almost like snapshots, with one item
// of a second pool (mounted at ssd, the other date style): subvolume-print-snapshots.txt names them by path
// (as the simulator printed them before it followed the manual, wrapped at 80 columns), -leaf.txt by leaf,
// with fs= the label. file-print-snapshots.txt is the `/file print detail where name~"-snapshots/"` of the
// same tree. Both dialects must give the same snapshots.
func TestSnapshotsFromListingGolden(t *testing.T) {
	for _, dialect := range []string{"subvolume-print-snapshots.txt", "subvolume-print-snapshots-leaf.txt"} {
		t.Run(dialect, func(t *testing.T) { testSnapshotsFromListing(t, dialect) })
	}
}

func parseListing(t *testing.T, name string) []routeros.Item {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	items, err := routeros.ParseDetail(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func testSnapshotsFromListing(t *testing.T, subvolumeListing string) {
	files, subvolumes := parseListing(t, "file-print-snapshots.txt"), parseListing(t, subvolumeListing)
	m := NewManager(nil)
	for _, f := range []struct {
		name   string
		filter SnapshotFilter
	}{
		{"all", SnapshotFilter{}},
		{"by-id", SnapshotFilter{ID: "snapshot-9a8b7c6d-5e4f-4321-8765-0fedcba98765"}},
		{"by-source", SnapshotFilter{SourceVolumeID: "pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}},
		{"by-both-mismatched", SnapshotFilter{ID: "snap-ssd", SourceVolumeID: "pvc-1"}},
	} {
		t.Run(f.name, func(t *testing.T) {
			snaps, err := m.snapshotsFrom(files, subvolumes, f.filter)
			if err != nil {
				t.Fatal(err)
			}
			type view struct {
				ID, Source, Subvolume, Location, UUID string
				Bytes                                 int64
				Created                               string
				Ready                                 bool
			}
			got := []view{}
			for _, s := range snaps {
				got = append(got, view{ID: s.ID, Source: s.SourceVolumeID, Subvolume: s.SubvolumeName(), Location: s.Location.String(),
					UUID: s.UUID, Bytes: s.SizeBytes, Created: s.CreationTime.Format(time.RFC3339), Ready: s.ReadyToUse})
			}
			js, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "snapshots-"+f.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(js, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if strings.TrimSpace(string(want)) != string(js) {
				t.Fatalf("snapshots differ from %s:\n%s", golden, js)
			}
		})
	}
}

func TestSnapshotAtPath(t *testing.T) {
	for _, c := range []struct {
		name string
		want *Snapshot // nil: not one of ours
	}{
		{"pool/k8s-snapshots/pvc-a/1073741824/snap-1",
			&Snapshot{ID: "snap-1", SourceVolumeID: "pvc-a", SizeBytes: 1 << 30, Location: Location{Pool: "pool", Dir: "k8s"}}},
		{"/raid10/a/b/c-snapshots/pvc.a/5/s_1",
			&Snapshot{ID: "s_1", SourceVolumeID: "pvc.a", SizeBytes: 5, Location: Location{Pool: "raid10", Dir: "a/b/c"}}},
		// The source may itself be called like a snapshots directory; the last three segments decide.
		{"pool/k8s-snapshots/x-snapshots/7/s",
			&Snapshot{ID: "s", SourceVolumeID: "x-snapshots", SizeBytes: 7, Location: Location{Pool: "pool", Dir: "k8s"}}},
		{"pool/k8s-snapshots/pvc-a/01073741824/snap-1", nil}, // not the canonical decimal
		{"pool/k8s-snapshots/pvc-a/0/snap-1", nil},
		{"pool/k8s-snapshots/pvc-a/-5/snap-1", nil},
		{"pool/k8s-snapshots/pvc-a/1e9/snap-1", nil},
		{"pool/k8s-snapshots/pvc-a/99999999999999999999/snap-1", nil},
		{"pool/-snapshots/pvc-a/5/snap-1", nil}, // no base directory
		{"k8s-snapshots/pvc-a/5/snap-1", nil},   // no pool: k8s-snapshots would be the mount point
		{"pool/k8s-snap/pvc-a/5/snap-1", nil},
		{"pool/k8s-snapshots/pvc-a/5", nil},
		{"pool/k8s-snapshots/pvc-a/5/snap-1/disk.img", nil},
		{"pool/k8s-snapshots/pvc-a/5/.hidden", nil},
		{"pool/k8s-snapshots//5/snap", nil},
		{"po ol/k8s-snapshots/pvc-a/5/snap-1", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := snapshotAtPath(c.name)
			if ok != (c.want != nil) {
				t.Fatalf("recognised %v, want %v (%+v)", ok, c.want != nil, got)
			}
			if !ok {
				return
			}
			c.want.ReadyToUse = true
			if *got != *c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if got.dir() != strings.TrimPrefix(c.name, "/") {
				t.Fatalf("path does not round-trip: %q", got.dir())
			}
		})
	}
}

func TestSnapshotFilterPatterns(t *testing.T) {
	for _, c := range []struct {
		f    SnapshotFilter
		want string
	}{
		{SnapshotFilter{}, `name~"-snapshots/"`},
		{SnapshotFilter{ID: "snap.1"}, `name~"-snapshots/.*/snap\\.1"`},
		{SnapshotFilter{SourceVolumeID: "pvc-a"}, `name~"-snapshots/pvc-a/"`},
		{SnapshotFilter{ID: "s", SourceVolumeID: "v.1"}, `name~"-snapshots/v\\.1/.*/s"`},
	} {
		reads, err := c.f.reads()
		if err != nil {
			t.Fatal(err)
		}
		if cmd := reads[0]; !strings.HasPrefix(cmd.String(), "/file print") || !strings.HasSuffix(cmd.String(), "where "+c.want) {
			t.Errorf("%+v: %s, want it to end in %s", c.f, cmd, c.want)
		}
	}
	for _, bad := range []SnapshotFilter{{ID: `a"b`}, {SourceVolumeID: "a$b"}, {ID: "a/b"}, {ID: "a b"}} {
		if err := bad.valid(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// FuzzSnapshotAtPath: whatever name /file print shows, a directory recognised as a snapshot has a path this
// driver would write for it, and every part of it passes the validation that guards commands.
func FuzzSnapshotAtPath(f *testing.F) {
	for _, s := range []string{"pool/k8s-snapshots/pvc-a/1073741824/snap-1", "p/a/b-snapshots/v/1/s", "p/x-snapshots/a/01/b",
		"p/k8s-snapshots/a/5/b/c", "p/-snapshots/a/1/b", "/pool/k8s-snapshots/x-snapshots/7/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, ok := snapshotAtPath(name)
		if !ok {
			return
		}
		if s.dir() != strings.TrimPrefix(name, "/") {
			t.Fatalf("%q read as %+v, which names %q", name, s, s.dir())
		}
		if rds.ValidPath(s.dir()) != nil || rds.ValidName(s.ID) != nil || rds.ValidName(s.SourceVolumeID) != nil || s.SizeBytes <= 0 {
			t.Fatalf("%q accepted with unsafe parts: %+v", name, s)
		}
		for _, parent := range []string{s.Location.SubvolumeName(s.SourceVolumeID), s.SourceVolumeID} {
			if _, err := rds.AddSnapshot(s.Location.Pool+"-fs", parent, s.SubvolumeName(), false); err != nil {
				t.Fatalf("a recognised snapshot cannot be made: %v", err)
			}
		}
		if _, err := rds.RemoveSubvolume("", s.ID); err != nil {
			t.Fatalf("a recognised snapshot cannot be removed: %v", err)
		}
	})
}
