package rdssim

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestFilePrintAndRemove(t *testing.T) {
	s := startSim(t, Config{Width: 200})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	// Indices count every file, so the filtered list starts at 2 (the mount point pool is 0, pool/k8s 1).
	out := mustRun(t, c, `/file print detail where name~"^pool/k8s/"`)
	lines := strings.Split(strings.TrimSuffix(out, crlf), crlf)
	if len(lines) != 3 || !strings.HasPrefix(lines[0], " 2   name=pool/k8s/pvc-1 type=directory last-modified=") ||
		!strings.HasPrefix(lines[2], " 3   name=pool/k8s/pvc-1/disk.img type=.img file size=10.0GiB last-modified=") {
		t.Fatalf("file print:\n%s", out)
	}
	stamp := lines[2][strings.Index(lines[2], "last-modified=")+len("last-modified="):]
	if ts, err := time.ParseInLocation(timeLayout, stamp, time.Local); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("last-modified %q: %v", stamp, err)
	}
	if out := mustRun(t, c, `/file print detail where size=10G`); !strings.Contains(out, "disk.img") {
		t.Errorf("size filter:\n%s", out)
	}

	// A non-empty directory stays; a file goes even while a disk uses it.
	if out, status := run(t, c, `/file remove [find name="pool/k8s/pvc-1"]`); status != 1 || out != "failure: directory is not empty"+crlf {
		t.Errorf("remove of a non-empty directory: %d %q", status, out)
	}
	mustRun(t, c, `/file remove [find name="pool/k8s/pvc-1/disk.img"]`)
	host, _ := s.HostPath("pool/k8s/pvc-1/disk.img")
	if _, err := os.Stat(host); err == nil {
		t.Error("file still there")
	}
	if out := mustRun(t, c, `/disk print detail where slot=pvc-1`); prop(t, out, "size") != "10 737 418 240" {
		t.Errorf("a disk whose file is gone prints its last size:\n%s", out)
	}
	// Now empty, the directory can go; a missing name is an error, a find is not.
	mustRun(t, c, `/file remove [find name="pool/k8s/pvc-1"]`)
	mustRun(t, c, `/file remove [find name="pool/k8s/pvc-1/disk.img"]`)
	if out, status := run(t, c, `/file remove pool/k8s/pvc-1/disk.img`); status != 1 || out != "no such item"+crlf {
		t.Errorf("remove by missing name: %d %q", status, out)
	}
	// One find can take a directory and what it holds.
	mustRun(t, c, `/disk add type=file file-path=pool/tmp/x.img file-size=1M slot=x; /disk remove x`)
	mustRun(t, c, `/file remove [find name~"^pool/tmp"]`)
	if _, err := os.Stat(s.poolDir() + "/tmp"); err == nil {
		t.Error("directory and file removed by one find should both be gone")
	}
	// A subvolume is not removed through /file.
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=sv`)
	if out, status := run(t, c, `/file remove [find name="pool/sv"]`); status != 1 || !strings.HasPrefix(out, "failure: pool/sv is a btrfs subvolume") {
		t.Errorf("remove of a subvolume through /file: %d %q", status, out)
	}
}
