package rdssim

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// sparseSource makes a 64 MiB file with two small data regions and holes.
func sparseSource(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	src := filepath.Join(dir, "src.img")
	if err := os.WriteFile(src, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, 64<<20); err != nil {
		t.Fatal(err)
	}
	writeAt(t, src, 0, bytes.Repeat([]byte{0xAB}, 8192))
	writeAt(t, src, 40<<20, bytes.Repeat([]byte("tail"), 2048))
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return src, data
}

func TestCloneFileSparse(t *testing.T) {
	dir := t.TempDir()
	src, want := sparseSource(t, dir)
	dst := filepath.Join(dir, "dst.img")
	method, err := cloneFile(dst, src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy differs from the source (%v)", err)
	}
	if method == copySparse {
		if b := blocksOf(t, dst) * 512; b > 1<<20 {
			t.Errorf("sparse copy allocated %d bytes for 16 KiB of data", b)
		}
	}
	info, _ := os.Stat(dst)
	if info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the source's 0640", info.Mode().Perm())
	}
	if _, err := cloneFile(dst, src); err == nil {
		t.Error("cloneFile overwrote an existing file")
	}
}

func TestCopySkippingZeros(t *testing.T) {
	dir := t.TempDir()
	src, want := sparseSource(t, dir)
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dstPath := filepath.Join(dir, "dst.img")
	out, err := os.Create(dstPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Truncate(int64(len(want))); err != nil {
		t.Fatal(err)
	}
	if err := copySkippingZeros(out, in, 0, int64(len(want))); err != nil {
		t.Fatal(err)
	}
	out.Close()
	got, _ := os.ReadFile(dstPath)
	if !bytes.Equal(got, want) {
		t.Fatal("fallback copy differs from the source")
	}
	if b := blocksOf(t, dstPath) * 512; b > 4<<20 {
		t.Errorf("fallback copy allocated %d bytes: zero blocks were written", b)
	}
}

func TestCopyTree(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for _, d := range []string{"a/b", "nested/deep"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, err := range []error{
		os.WriteFile(filepath.Join(src, "a/b/f"), []byte("file"), 0o644),
		os.WriteFile(filepath.Join(src, "nested/deep/x"), []byte("skip me"), 0o644),
		os.Symlink("a/b/f", filepath.Join(src, "link")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(dir, "dst")
	if err := copyTree(src, dst, func(rel string) bool { return rel == "nested" }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a/b/f")); err != nil || string(b) != "file" {
		t.Errorf("copied file: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "a/b/f" {
		t.Errorf("symlink: %q %v", l, err)
	}
	if entries, err := os.ReadDir(filepath.Join(dst, "nested")); err != nil || len(entries) != 0 {
		t.Errorf("skipped directory must be empty: %v %v", entries, err)
	}
}

// TestCloneFileReflink needs a filesystem with reflinks: it formats a small
// XFS image (reflink=1) on a loop device, which takes root, mkfs.xfs and a
// free loop device.
func TestCloneFileReflink(t *testing.T) {
	testenv.RequireLoopDevices(t, "mounting an XFS loop image with reflink support")
	testenv.RequireTools(t, "apt-get install -y xfsprogs util-linux", "mkfs.xfs", "mount", "umount")
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 300<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("needs loop devices to mount an XFS image: mount: %v %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})

	src, want := sparseSource(t, mnt)
	dst := filepath.Join(mnt, "clone.img")
	method, err := cloneFile(dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if method != copyReflink {
		t.Fatalf("method = %s on an XFS reflink filesystem, want %s", method, copyReflink)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
		t.Fatal("reflinked copy differs from the source")
	}
	writeAt(t, dst, 0, []byte("diverge"))
	if got, _ := os.ReadFile(src); !bytes.Equal(got, want) {
		t.Error("a write to the reflinked copy changed the source")
	}
}
