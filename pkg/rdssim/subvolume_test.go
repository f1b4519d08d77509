package rdssim

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func digest(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestSubvolumeLifecycle runs under both name forms: the subvolume made with name=k8s/pvc-1 prints and
// matches as "pvc-1" (the manual's leaf, the default) or as "k8s/pvc-1".
func TestSubvolumeLifecycle(t *testing.T) {
	for form, name := range map[NameForm]string{NameLeaf: "pvc-1", NamePath: "k8s/pvc-1"} {
		t.Run(string(form), func(t *testing.T) { testSubvolumeLifecycle(t, form, name) })
	}
}

func testSubvolumeLifecycle(t *testing.T, form NameForm, name string) {
	s := startSim(t, Config{Width: 200, SubvolumeNames: form})
	c := dial(t, s)
	before := time.Now().Add(-time.Second)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=k8s/pvc-1`)
	if info, err := os.Stat(filepath.Join(s.poolDir(), "k8s", "pvc-1")); err != nil || !info.IsDir() {
		t.Fatalf("subvolume directory: %v", err)
	}
	out := mustRun(t, c, `/disk/btrfs/subvolume/print detail where name="`+name+`"`)
	if !strings.HasPrefix(out, "Flags: S - SNAPSHOT; r - READ-ONLY\r\n 0    name=\""+name+"\" fs=pool-fs parent=\"\" read-only=no uuid=\"") {
		t.Errorf("print detail:\n%q", out)
	}
	stamp := regexp.MustCompile(`creation-time=(\S+ \S+)`).FindStringSubmatch(out)
	if stamp == nil {
		t.Fatalf("no creation-time:\n%s", out)
	}
	ct, err := time.ParseInLocation(timeLayout, stamp[1], time.Local)
	if err != nil || ct.Before(before.Truncate(time.Second)) || ct.After(time.Now()) {
		t.Errorf("creation-time %v (%v) is not now", ct, err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(prop(t, out, "uuid")) {
		t.Errorf("uuid %q", prop(t, out, "uuid"))
	}
	for script, want := range map[string]string{
		`/disk/btrfs/subvolume/add fs=pool-fs name=k8s/pvc-1`:                  "failure: already have such entry",
		`/disk/btrfs/subvolume/add fs=other name=k8s/x`:                        "input does not match any value of fs",
		`/disk/btrfs/subvolume/add fs=pool-fs name=../x`:                       "failure: invalid subvolume name",
		`/disk/btrfs/subvolume/add fs=pool-fs`:                                 "failure: name must be specified",
		`/disk/btrfs/subvolume/add fs=pool-fs parent=k8s/missing name=k8s/x`:   "no such item",
		`/disk/btrfs/subvolume/add fs=pool name=k8s/y`:                         "input does not match any value of fs",
		`/disk/btrfs/subvolume/remove [find where fs=pool-fs and name="nope"]`: "",
		`/disk/btrfs/subvolume/remove nope`:                                    "no such item",
	} {
		out, status := run(t, c, script)
		wantStatus := 1
		if want == "" {
			wantStatus = 0
		} else {
			want += crlf
		}
		if status != wantStatus || out != want {
			t.Errorf("%s: status %d output %q, want %q", script, status, out, want)
		}
	}
	// Intermediate directories are created for nested names.
	mustRun(t, c, `/disk btrfs subvolume add fs=pool-fs name=deep/er/vol`)

	mustRun(t, c, `/disk add type=file file-path=pool/k8s/pvc-1/disk.img file-size=1G slot=pvc-1`)
	if out, status := run(t, c, `/disk/btrfs/subvolume/remove [find where fs=pool-fs and name="`+name+`"]`); status != 1 ||
		out != "failure: subvolume k8s/pvc-1 is in use by disk pvc-1"+crlf {
		t.Errorf("remove of a subvolume in use: %d %q", status, out)
	}
	mustRun(t, c, `/disk remove [find slot=pvc-1]`)
	if form == NameLeaf {
		// The path is not the name: a find by it matches nothing, silently, and removes nothing.
		if out := mustRun(t, c, `/disk/btrfs/subvolume/remove [find where name="k8s/pvc-1"]`); out != "" {
			t.Errorf("remove by path printed %q", out)
		}
		if _, err := os.Stat(filepath.Join(s.poolDir(), "k8s", "pvc-1")); err != nil {
			t.Errorf("a find by path removed the subvolume: %v", err)
		}
	}
	mustRun(t, c, `/disk/btrfs/subvolume/remove [find where fs=pool-fs and name="`+name+`"]`)
	if _, err := os.Stat(filepath.Join(s.poolDir(), "k8s", "pvc-1")); err == nil {
		t.Error("subvolume directory still there after remove")
	}
	if out := mustRun(t, c, `/disk/btrfs/subvolume/print detail where name="`+name+`"`); strings.Count(out, crlf) != 1 {
		t.Errorf("removed subvolume still listed:\n%s", out)
	}
}

func TestSnapshotsCopyDataIndependently(t *testing.T) {
	s := startSim(t, Config{Width: 200})
	c := dial(t, s)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=k8s/src`)
	mustRun(t, c, `/disk add type=file file-path=pool/k8s/src/disk.img file-size=64M slot=src`)
	src, _ := s.HostPath("pool/k8s/src/disk.img")
	original := bytes.Repeat([]byte("original"), 4096)
	writeAt(t, src, 8<<20, original)
	sumOriginal := digest(t, src)

	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=src name=k8s-snap/snap-1 read-only=yes`)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=snap-1 name=k8s/restored`)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=src name=k8s/clone`)

	out := mustRun(t, c, `/disk/btrfs/subvolume/print detail where name="snap-1"`)
	if !strings.Contains(out, " Sr name=\"snap-1\" fs=pool-fs parent=\"src\" read-only=yes") {
		t.Errorf("snapshot print:\n%s", out)
	}
	out = mustRun(t, c, `/disk/btrfs/subvolume/print detail where snapshot and !read-only`)
	if strings.Count(out, "name=") != 2 {
		t.Errorf("writable snapshots:\n%s", out)
	}

	snap, _ := s.HostPath("pool/k8s-snap/snap-1/disk.img")
	restored, _ := s.HostPath("pool/k8s/restored/disk.img")
	clone, _ := s.HostPath("pool/k8s/clone/disk.img")
	// Change the source after the snapshot; the copies must not see it.
	writeAt(t, src, 8<<20, bytes.Repeat([]byte("CHANGED!"), 4096))
	for _, p := range []string{snap, restored, clone} {
		if digest(t, p) != sumOriginal {
			t.Errorf("%s does not hold the data at snapshot time", p)
		}
		if b := blocksOf(t, p); b*512 > 4<<20 {
			t.Errorf("%s lost its holes: %d bytes allocated for 32 KiB of data", p, b*512)
		}
	}
	writeAt(t, clone, 0, []byte("clone-only"))
	if got := digest(t, restored); got != sumOriginal {
		t.Error("a write to the clone showed in the restored volume")
	}
	// The restored volume becomes a disk of its own.
	mustRun(t, c, `/disk add type=file file-path=pool/k8s/restored/disk.img slot=restored nvme-tcp-export=yes`)
	if out := mustRun(t, c, `/disk print detail where slot=restored`); prop(t, out, "size") != "67 108 864" {
		t.Errorf("restored disk size:\n%s", out)
	}

	// Read-only snapshots refuse writes made through the simulator.
	for script, want := range map[string]string{
		`/disk add type=file file-path=pool/k8s-snap/snap-1/disk.img slot=ro`:             "failure: read-only file system",
		`/disk add type=file file-path=pool/k8s-snap/snap-1/new.img file-size=1M slot=ro`: "failure: read-only file system",
		`/file remove [find name="pool/k8s-snap/snap-1/disk.img"]`:                        "failure: read-only file system",
		`/disk/btrfs/subvolume/add fs=pool-fs name=k8s-snap/snap-1/inner`:                 "failure: read-only file system",
	} {
		if out, status := run(t, c, script); status != 1 || out != want+crlf {
			t.Errorf("%s: %d %q, want %q", script, status, out, want)
		}
	}
	// A snapshot outlives its source.
	mustRun(t, c, `/disk remove [find slot=src]; /file remove [find name="pool/k8s/src/disk.img"]; /disk/btrfs/subvolume/remove [find where name="src"]`)
	if digest(t, snap) != sumOriginal {
		t.Error("the snapshot changed when its source was removed")
	}
	mustRun(t, c, `/disk/btrfs/subvolume/remove [find where fs=pool-fs and name="snap-1"]`)
}

func TestSnapshotSkipsNestedSubvolumes(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=outer; /disk/btrfs/subvolume/add fs=pool-fs name=outer/inner`)
	inner, _ := s.HostPath("pool/outer/inner/data")
	if err := os.WriteFile(inner, []byte("inner"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs parent=outer name=copy`)
	entries, err := os.ReadDir(filepath.Join(s.poolDir(), "copy", "inner"))
	if err != nil || len(entries) != 0 {
		t.Errorf("nested subvolume must appear as an empty directory: %v %v", entries, err)
	}
	if out, status := run(t, c, `/disk/btrfs/subvolume/remove [find name=outer]`); status != 1 || !strings.Contains(out, "holds subvolume outer/inner") {
		t.Errorf("removing a subvolume that holds another: %d %q", status, out)
	}
}

func TestXFSPoolHasNoSubvolumes(t *testing.T) {
	s := startSim(t, Config{PoolFS: "xfs", Width: 200})
	c := dial(t, s)
	if out := mustRun(t, c, `/disk print detail where mount-point="pool"`); prop(t, out, "fs") != "xfs" {
		t.Errorf("pool fs:\n%s", out)
	}
	for _, script := range []string{
		`/disk/btrfs/subvolume/add fs=pool-fs name=k8s/pvc-1`,
		`/disk/btrfs/subvolume/add fs=pool-fs parent=k8s/pvc-1 name=k8s-snap/s read-only=yes`,
	} {
		if out, status := run(t, c, script); status != 1 || out != "failure: not a btrfs filesystem"+crlf {
			t.Errorf("%s: %d %q", script, status, out)
		}
	}
	if out := mustRun(t, c, `/disk/btrfs/subvolume/print detail`); out != "Flags: S - SNAPSHOT; r - READ-ONLY"+crlf {
		t.Errorf("subvolume print on xfs: %q", out)
	}
	mustRun(t, c, `/disk/btrfs/subvolume/remove [find where fs=pool and name="k8s/pvc-1"]`)
	// Flat files work as on any pool.
	mustRun(t, c, `/disk add type=file file-path=pool/k8s/pvc-1.img file-size=1G slot=pvc-1`)
}
