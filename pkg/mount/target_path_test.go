package mount

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTargetPath(t *testing.T) {
	dir := t.TempDir()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path    string
		mention string // "" means accepted
	}{
		{filepath.Join(dir, "real"), ""},
		{filepath.Join(dir, "missing", "globalmount"), ""}, // created later by stage or publish
		{filepath.Join(dir, "link", "inner"), ""},          // only the last element is checked
		{"/var/lib/kubelet/pods/0a/volumes/kubernetes.io~csi/pvc-1/mount", ""},
		{"", "empty"},
		{"relative/path", "not an absolute path"},
		{"./x", "not an absolute path"},
		{filepath.Join(dir, "real") + "/../real", "not a clean path"},
		{filepath.Join(dir, "real") + "/", "not a clean path"},
		{dir + "//real", "not a clean path"},
		{dir + "/./real", "not a clean path"},
		{"/", "root directory"},
		{filepath.Join(dir, "link"), "symbolic link"},
		{filepath.Join(dir, "dangling"), "symbolic link"},
		{"/proc/self/cwd", "/proc"},
		{"/proc/1/root/etc", "/proc"},
		{"/proc", "/proc"},
		{"/sys/kernel", "/sys"},
		{"/dev/sda", "/dev"},
		{dir + "/a\x00b", "NUL"},
	} {
		err := CheckTargetPath(c.path)
		if c.mention == "" {
			if err != nil {
				t.Errorf("CheckTargetPath(%q) = %v, want accepted", c.path, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadPath) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("CheckTargetPath(%q) = %v, want ErrBadPath mentioning %q", c.path, err, c.mention)
		}
	}
}

// Whatever the CO sends, an accepted path is absolute, clean and outside the kernel's trees.
func FuzzCheckTargetPath(f *testing.F) {
	for _, s := range []string{"/var/lib/kubelet/x", "rel", "/a/../b", "/proc/self/cwd", "/", "//", "/a/./b", "/dev"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckTargetPath(p) != nil {
			return
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			t.Fatalf("accepted %q", p)
		}
		for _, root := range pseudoRoots {
			if p == root || strings.HasPrefix(p, root+"/") {
				t.Fatalf("accepted %q inside %s", p, root)
			}
		}
	})
}
