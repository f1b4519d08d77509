package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// userData is what an admin keeps on the same RDS, beside the driver's volumes: a subvolume holding a file
// in the driver's own base path, and a disk of another tool. The soak must leave both exactly as they were.
type userData struct {
	subvolume string // pool-relative, "k8s/userdata"
	file      string // path on the simulator's host
	content   []byte
	disk      string
}

func seedUserData(t *testing.T, w *world) userData {
	t.Helper()
	signer, err := rds.LoadPrivateKey(filepath.Join(w.simDir, "client_key"))
	if err != nil {
		t.Fatal(err)
	}
	hk, err := rds.LoadHostKey(filepath.Join(w.simDir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rds.New(rds.Config{Address: w.simAddr, User: "admin", Signer: signer, HostKeyCallback: hk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u := userData{subvolume: "k8s/userdata", disk: "foreign-1", content: []byte("an admin's own files\n")}
	sv, err := rds.AddSubvolume("pool-fs", u.subvolume) // the simulator labels pool "pool-fs" (--pool-label)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: u.disk, FilePath: "pool/other/foreign-1.img", SizeBytes: gib,
		NQN: "nqn.2010-01.org.example:foreign-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Run(ctx, []rds.Cmd{sv, disk}); err != nil {
		t.Fatalf("seeding the user's data: %v", err)
	}
	u.file = filepath.Join(w.simDir, "fs", "pool", "k8s", "userdata", "precious.txt")
	if err := os.WriteFile(u.file, u.content, 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

// snapshotsContainer is the leaf of a base path's snapshots container, <dir>-snapshots.<8 hex digits>
// (volume.SnapshotsContainer).
var snapshotsContainer = regexp.MustCompile(`-snapshots\.[0-9a-f]{8}$`)

// simState is the simulator's own record (state.json) and files, read from its data directory.
type simState struct {
	Disks []struct {
		Slot     string `json:"slot"`
		FilePath string `json:"filePath"`
	} `json:"disks"`
	Subvolumes []struct {
		Name string `json:"name"`
	} `json:"subvolumes"`
}

// check compares the RDS with the model, through the driver and through the simulator's data directory, and
// returns how many orphans it found (each is also a test error).
func (w *world) check(u userData) int {
	t := w.t
	orphans := 0
	orphan := func(format string, args ...any) {
		orphans++
		t.Errorf("orphan: "+format, args...)
	}
	// Through the driver.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var listed []string
	for token := ""; ; {
		r, err := w.cc.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 7, StartingToken: token})
		if err != nil {
			t.Fatalf("ListVolumes: %v", err)
		}
		for _, e := range r.GetEntries() {
			listed = append(listed, e.GetVolume().GetVolumeId())
			if v := w.m.vols[e.GetVolume().GetVolumeId()]; v != nil && e.GetVolume().GetCapacityBytes() < v.size {
				t.Errorf("volume %s has %d bytes, %d were acknowledged", e.GetVolume().GetVolumeId(), e.GetVolume().GetCapacityBytes(), v.size)
			}
		}
		if token = r.GetNextToken(); token == "" {
			break
		}
	}
	if want := sortedKeys(w.m.vols); !slices.Equal(listed, want) {
		t.Errorf("ListVolumes gives %v, the acknowledged volumes are %v", listed, want)
	}
	rs, err := w.cc.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	var snaps []string
	for _, e := range rs.GetEntries() {
		snaps = append(snaps, e.GetSnapshot().GetSnapshotId())
	}
	slices.Sort(snaps)
	if want := sortedKeys(w.m.snaps); !slices.Equal(snaps, want) {
		t.Errorf("ListSnapshots gives %v, the acknowledged snapshots are %v", snaps, want)
	}

	// Through the simulator's own state: every disk, subvolume and file is one of the model's or the user's.
	raw, err := os.ReadFile(filepath.Join(w.simDir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st simState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	owned := map[string]bool{} // pool-relative paths of what is accounted for: subvolumes and disk files
	disks := map[string]bool{}
	for _, d := range st.Disks {
		disks[d.Slot] = true
		fp := strings.TrimPrefix(strings.TrimPrefix(d.FilePath, "/"), "pool/")
		switch v := w.m.vols[d.Slot]; {
		case d.Slot == u.disk:
			owned[fp] = true
		case v == nil:
			orphan("disk %s (file %s) of no acknowledged volume", d.Slot, d.FilePath)
		case !strings.HasPrefix("pool/"+fp, v.base+"/"):
			t.Errorf("volume %s has its file at %s, outside its base path %s", d.Slot, d.FilePath, v.base)
		default:
			owned[fp] = true
		}
	}
	for _, id := range sortedKeys(w.m.vols) {
		if !disks[id] {
			t.Errorf("acknowledged volume %s has no disk: a user's volume is lost", id)
		}
	}
	if !disks[u.disk] {
		t.Errorf("the user's disk %s is gone", u.disk)
	}
	subvols := map[string]bool{}
	for _, s := range st.Subvolumes {
		leaf := path.Base(s.Name)
		container := snapshotsContainer.MatchString(leaf)
		if strings.Contains(path.Dir(s.Name), "-snapshots.") {
			// A snapshot of the current layout: <container>/<snap>.<source>.<bytes>.<len(source)>; the
			// soak's snapshot ids hold no dot.
			leaf, _, _ = strings.Cut(leaf, ".")
		}
		subvols[leaf] = true
		switch {
		case s.Name == u.subvolume:
		case container: // a base path's snapshots container stays, like the base directory
		case w.m.vols[leaf] != nil && path.Dir("pool/"+s.Name) == w.m.vols[leaf].base:
		case w.m.snaps[leaf] != nil:
		default:
			orphan("subvolume %s of no acknowledged volume or snapshot", s.Name)
			continue
		}
		owned[s.Name] = true
	}
	for _, id := range append(sortedKeys(w.m.vols), sortedKeys(w.m.snaps)...) {
		if !subvols[id] {
			t.Errorf("acknowledged %s has no subvolume: a user's data is lost", id)
		}
	}
	if b, err := os.ReadFile(u.file); err != nil || !bytes.Equal(b, u.content) {
		t.Errorf("the user's file %s is gone or changed: %q, %v", u.file, b, err)
	}
	// Files: inside something owned, or a directory on the way to it; an empty directory left over is
	// reported, a file or a non-empty directory of nothing is an orphan.
	poolDir := filepath.Join(w.simDir, "fs", "pool")
	var leftDirs []string
	_ = filepath.WalkDir(poolDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == poolDir {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, poolDir+"/"))
		for o := range owned {
			if rel == o || strings.HasPrefix(rel, o+"/") {
				if d.IsDir() && rel != o {
					return nil
				}
				return nil
			}
			if strings.HasPrefix(o, rel+"/") {
				return nil // a directory on the way to something owned
			}
		}
		if d.IsDir() {
			entries, _ := os.ReadDir(p)
			if len(entries) == 0 {
				leftDirs = append(leftDirs, rel)
				return nil
			}
			return nil // its contents are judged one by one
		}
		orphan("file %s belongs to nothing acknowledged", rel)
		return nil
	})
	if len(leftDirs) > 0 {
		t.Logf("empty directories left (not counted as orphans): %v", leftDirs)
	}
	return orphans
}
