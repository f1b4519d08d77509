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

// The listing is the simulator's `/disk/btrfs/subvolume/print detail` (wrapped at 80 columns, CRLF) after a
// volume, two snapshots of it whose ids share a prefix, a restore, and a user's subvolumes that look almost
// like snapshots; one item of a second pool (fs=ssd, the other date style) was added by hand.
func TestSnapshotsFromListingGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "subvolume-print-snapshots.txt"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := routeros.ParseDetail(string(raw))
	if err != nil {
		t.Fatal(err)
	}
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
			snaps, err := snapshotsFrom(items, f.filter)
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

func TestSnapshotFromNames(t *testing.T) {
	for _, c := range []struct {
		name, fs string
		readOnly bool
		want     *Snapshot // nil: not one of ours
	}{
		{"k8s-snapshots/pvc-a/1073741824/snap-1", "pool", true,
			&Snapshot{ID: "snap-1", SourceVolumeID: "pvc-a", SizeBytes: 1 << 30, Location: Location{Pool: "pool", Dir: "k8s"}}},
		{"a/b/c-snapshots/pvc.a/5/s_1", "raid10", true,
			&Snapshot{ID: "s_1", SourceVolumeID: "pvc.a", SizeBytes: 5, Location: Location{Pool: "raid10", Dir: "a/b/c"}}},
		// The source may itself be called like a snapshots directory; the last three segments decide.
		{"k8s-snapshots/x-snapshots/7/s", "pool", true,
			&Snapshot{ID: "s", SourceVolumeID: "x-snapshots", SizeBytes: 7, Location: Location{Pool: "pool", Dir: "k8s"}}},
		{"k8s-snapshots/pvc-a/1073741824/snap-1", "pool", false, nil}, // writable: never made by this driver
		{"k8s-snapshots/pvc-a/01073741824/snap-1", "pool", true, nil}, // not the canonical decimal
		{"k8s-snapshots/pvc-a/0/snap-1", "pool", true, nil},
		{"k8s-snapshots/pvc-a/-5/snap-1", "pool", true, nil},
		{"k8s-snapshots/pvc-a/1e9/snap-1", "pool", true, nil},
		{"k8s-snapshots/pvc-a/99999999999999999999/snap-1", "pool", true, nil},
		{"-snapshots/pvc-a/5/snap-1", "pool", true, nil}, // no base directory
		{"k8s-snap/pvc-a/5/snap-1", "pool", true, nil},
		{"k8s-snapshots/pvc-a/5", "pool", true, nil},
		{"k8s-snapshots/pvc-a/5/snap-1/extra", "pool", true, nil},
		{"k8s-snapshots/pvc-a/5/.hidden", "pool", true, nil},
		{"k8s-snapshots//5/snap", "pool", true, nil},
		{"k8s-snapshots/pvc-a/5/snap-1", "", true, nil}, // no pool printed
		{"k8s-snapshots/pvc-a/5/snap-1", "po ol", true, nil},
	} {
		t.Run(c.name+"@"+c.fs, func(t *testing.T) {
			got, ok := snapshotFrom(&rds.Subvolume{Name: c.name, FS: c.fs, ReadOnly: c.readOnly})
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
			if got.SubvolumeName() != c.name {
				t.Fatalf("name does not round-trip: %q", got.SubvolumeName())
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
		cmd, err := c.f.read()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(cmd.String(), "where "+c.want) {
			t.Errorf("%+v: %s, want it to end in %s", c.f, cmd, c.want)
		}
	}
	for _, bad := range []SnapshotFilter{{ID: `a"b`}, {SourceVolumeID: "a$b"}, {ID: "a/b"}, {ID: "a b"}} {
		if err := bad.valid(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// FuzzSnapshotFrom: whatever name the RDS prints, a subvolume recognised as a snapshot has a name this driver
// would write for it, and every part of it passes the validation that guards commands.
func FuzzSnapshotFrom(f *testing.F) {
	for _, s := range []string{"k8s-snapshots/pvc-a/1073741824/snap-1", "a/b-snapshots/v/1/s", "x-snapshots/a/01/b",
		"k8s-snapshots/a/5/b/c", "-snapshots/a/1/b", "k8s-snapshots/x-snapshots/7/s"} {
		f.Add(s, "pool")
	}
	f.Fuzz(func(t *testing.T, name, fs string) {
		s, ok := snapshotFrom(&rds.Subvolume{Name: name, FS: fs, ReadOnly: true})
		if !ok {
			return
		}
		if s.SubvolumeName() != name || s.Location.Pool != fs {
			t.Fatalf("%q@%q read as %+v, which names %q", name, fs, s, s.SubvolumeName())
		}
		if rds.ValidPath(name) != nil || rds.ValidName(s.ID) != nil || rds.ValidName(s.SourceVolumeID) != nil || s.SizeBytes <= 0 {
			t.Fatalf("%q@%q accepted with unsafe parts: %+v", name, fs, s)
		}
		if _, err := rds.AddSnapshot(fs, s.Location.SubvolumeName(s.SourceVolumeID), name, false); err != nil {
			t.Fatalf("a recognised snapshot cannot be restored from: %v", err)
		}
	})
}
