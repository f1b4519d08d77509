package rdssim

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeConfigfs models the nvmet configfs tree of Linux 6.1 over a plain
// directory: mkdir populates the attributes and default groups the kernel
// would, and writes, links and removals obey the kernel's rules that matter
// to an exporter (attributes that cannot change while a namespace is enabled
// or a port is in use, a tmpfs file that needs buffered_io, removal order).
// Every change is recorded, so tests assert the exact writes.
type fakeConfigfs struct {
	os osTree
	// revalidateSize: the kernel has the namespaces' revalidate_size
	// attribute (Linux 5.9 and later).
	revalidateSize bool

	mu  sync.Mutex
	ops []string
}

func newFakeConfigfs(t testing.TB, revalidateSize bool) *fakeConfigfs {
	t.Helper()
	root := filepath.Join(t.TempDir(), "nvmet")
	for _, d := range []string{"subsystems", "ports", "hosts"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeConfigfs{os: osTree{root: root}, revalidateSize: revalidateSize}
}

func (f *fakeConfigfs) root() string { return f.os.root }

// take returns the changes recorded since the last call.
func (f *fakeConfigfs) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func (f *fakeConfigfs) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func errno(op, rel string, e syscall.Errno) error { return &os.PathError{Op: op, Path: rel, Err: e} }

// kind classifies a path the way nvmet's configfs groups do.
func kind(rel string) (string, []string) {
	p := strings.Split(rel, "/")
	switch {
	case len(p) == 2 && p[0] == "subsystems":
		return "subsystem", p
	case len(p) == 4 && p[0] == "subsystems" && p[2] == "namespaces":
		return "namespace", p
	case len(p) == 2 && p[0] == "ports":
		return "port", p
	case len(p) == 4 && p[0] == "ports" && p[2] == "subsystems":
		return "port-link", p
	case len(p) == 2 && p[0] == "hosts":
		return "host", p
	case len(p) == 4 && p[0] == "subsystems" && p[2] == "allowed_hosts":
		return "allowed-link", p
	}
	return "", p
}

func (f *fakeConfigfs) writeDefault(rel, value string) error {
	return os.WriteFile(f.os.path(rel), []byte(value+"\n"), 0o644)
}

func (f *fakeConfigfs) Mkdir(rel string) error {
	k, p := kind(rel)
	var files map[string]string
	var dirs []string
	switch k {
	case "subsystem":
		files = map[string]string{"attr_allow_any_host": "0", "attr_serial": "6f1c2bd3a1b4e5f6", "attr_model": "Linux"}
		dirs = []string{"namespaces", "allowed_hosts", "passthru"}
	case "namespace":
		if id, err := strconv.ParseUint(p[3], 10, 32); err != nil || id == 0 {
			return errno("mkdir", rel, syscall.EINVAL)
		}
		files = map[string]string{"device_path": "", "enable": "0", "buffered_io": "0",
			"device_uuid": "f58e2a55-a2e7-4c06-810a-87bffc349cb3", "ana_grpid": "1"}
		if f.revalidateSize {
			files["revalidate_size"] = ""
		}
	case "port":
		if _, err := strconv.ParseUint(p[1], 0, 16); err != nil {
			return errno("mkdir", rel, syscall.EINVAL)
		}
		files = map[string]string{"addr_trtype": "", "addr_adrfam": "", "addr_traddr": "", "addr_trsvcid": "", "addr_treq": "not specified"}
		dirs = []string{"subsystems", "referrals", "ana_groups"}
	case "host":
	default:
		return errno("mkdir", rel, syscall.EPERM)
	}
	if err := os.Mkdir(f.os.path(rel), 0o755); err != nil {
		return err
	}
	for name, v := range files {
		if err := f.writeDefault(rel+"/"+name, v); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := os.Mkdir(f.os.path(rel+"/"+d), 0o755); err != nil {
			return err
		}
	}
	f.record("mkdir %s", rel)
	return nil
}

func (f *fakeConfigfs) Rmdir(rel string) error {
	k, p := kind(rel)
	switch k {
	case "namespace":
	case "host":
		subs, _ := f.os.List("subsystems")
		for _, sub := range subs {
			if ok, _ := f.os.Exists("subsystems/" + sub + "/allowed_hosts/" + p[1]); ok {
				return errno("rmdir", rel, syscall.EBUSY)
			}
		}
	case "subsystem":
		if names, _ := f.os.List(rel + "/namespaces"); len(names) > 0 {
			return errno("rmdir", rel, syscall.ENOTEMPTY)
		}
		if names, _ := f.os.List(rel + "/allowed_hosts"); len(names) > 0 {
			return errno("rmdir", rel, syscall.ENOTEMPTY)
		}
		ports, _ := f.os.List("ports")
		for _, port := range ports {
			if ok, _ := f.os.Exists("ports/" + port + "/subsystems/" + p[1]); ok {
				return errno("rmdir", rel, syscall.EBUSY)
			}
		}
	case "port":
		if names, _ := f.os.List(rel + "/subsystems"); len(names) > 0 {
			return errno("rmdir", rel, syscall.ENOTEMPTY)
		}
	default:
		return errno("rmdir", rel, syscall.EPERM)
	}
	if ok, _ := f.os.Exists(rel); !ok {
		return errno("rmdir", rel, syscall.ENOENT)
	}
	if err := os.RemoveAll(f.os.path(rel)); err != nil {
		return err
	}
	f.record("rmdir %s", rel)
	return nil
}

func (f *fakeConfigfs) Read(rel string) (string, error) {
	if filepath.Base(rel) == "revalidate_size" {
		return "", errno("open", rel, syscall.EACCES) // write-only attribute
	}
	return f.os.Read(rel)
}

func (f *fakeConfigfs) attr(rel string) string {
	v, _ := f.os.Read(rel)
	return v
}

func (f *fakeConfigfs) Write(rel, value string) error {
	if ok, _ := f.os.Exists(rel); !ok {
		return errno("open", rel, syscall.ENOENT)
	}
	dir, name := filepath.Dir(rel), filepath.Base(rel)
	k, _ := kind(dir)
	switch {
	case k == "namespace":
		enabled := f.attr(dir+"/enable") == "1"
		switch name {
		case "device_path":
			if enabled {
				return errno("write", rel, syscall.EBUSY)
			}
		case "buffered_io":
			if enabled {
				return errno("write", rel, syscall.EINVAL)
			}
		case "revalidate_size":
			if !enabled {
				return errno("write", rel, syscall.EINVAL)
			}
			f.record("write %s=%s", rel, value)
			return nil // write-only: nothing stored
		case "enable":
			if value == "1" && !enabled {
				dev := f.attr(dir + "/device_path")
				if dev == "" {
					return errno("write", rel, syscall.EINVAL)
				}
				if _, err := os.Stat(dev); err != nil {
					return errno("write", rel, syscall.ENOENT)
				}
				// The backing files live on tmpfs, which has no O_DIRECT.
				if f.attr(dir+"/buffered_io") != "1" {
					return errno("write", rel, syscall.EINVAL)
				}
			}
		}
	case k == "port":
		if links, _ := f.os.List(dir + "/subsystems"); len(links) > 0 {
			return errno("write", rel, syscall.EACCES)
		}
		allowed := map[string][]string{"addr_trtype": {"tcp", "rdma", "loop", "fc"}, "addr_adrfam": {"ipv4", "ipv6", "ib", "fc"}}
		if vals, ok := allowed[name]; ok && !contains(vals, value) {
			return errno("write", rel, syscall.EINVAL)
		}
	case k == "subsystem" && name == "attr_allow_any_host":
		if value != "0" && value != "1" {
			return errno("write", rel, syscall.EINVAL)
		}
		// "Can't set allow_any_host when explicit hosts are set!"
		if hosts, _ := f.os.List(dir + "/allowed_hosts"); value == "1" && len(hosts) > 0 {
			return errno("write", rel, syscall.EINVAL)
		}
	}
	if err := os.WriteFile(f.os.path(rel), []byte(value+"\n"), 0o644); err != nil {
		return err
	}
	f.record("write %s=%s", rel, value)
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (f *fakeConfigfs) Symlink(targetRel, linkRel string) error {
	k, p := kind(linkRel)
	tk, tp := kind(targetRel)
	if k == "allowed-link" {
		if tk != "host" {
			return errno("symlink", linkRel, syscall.EPERM)
		}
		if ok, _ := f.os.Exists(targetRel); !ok {
			return errno("symlink", linkRel, syscall.ENOENT)
		}
		// "can't add hosts when allow_any_host is set!"
		if f.attr("subsystems/"+p[1]+"/attr_allow_any_host") != "0" {
			return errno("symlink", linkRel, syscall.EINVAL)
		}
		if tp[1] != p[3] {
			return fmt.Errorf("fake configfs: link %s does not carry its host's name %s", linkRel, tp[1])
		}
		if err := f.os.Symlink(targetRel, linkRel); err != nil {
			return err
		}
		f.record("symlink %s -> %s", linkRel, targetRel)
		return nil
	}
	if k != "port-link" || tk != "subsystem" {
		return errno("symlink", linkRel, syscall.EPERM)
	}
	if ok, _ := f.os.Exists(targetRel); !ok {
		return errno("symlink", linkRel, syscall.ENOENT)
	}
	if f.attr("ports/"+p[1]+"/addr_trtype") != "tcp" || f.attr("ports/"+p[1]+"/addr_traddr") == "" {
		return errno("symlink", linkRel, syscall.EINVAL) // the port cannot be enabled
	}
	if tp[1] != p[3] {
		return fmt.Errorf("fake configfs: link %s does not carry its subsystem's name %s", linkRel, tp[1])
	}
	if err := f.os.Symlink(targetRel, linkRel); err != nil {
		return err
	}
	f.record("symlink %s -> %s", linkRel, targetRel)
	return nil
}

func (f *fakeConfigfs) Unlink(rel string) error {
	fi, err := os.Lstat(f.os.path(rel))
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return errno("unlink", rel, syscall.EPERM)
	}
	if err := os.Remove(f.os.path(rel)); err != nil {
		return err
	}
	f.record("unlink %s", rel)
	return nil
}

func (f *fakeConfigfs) Exists(rel string) (bool, error)   { return f.os.Exists(rel) }
func (f *fakeConfigfs) List(rel string) ([]string, error) { return f.os.List(rel) }

// snapshot lists every path under the root with attribute values and link
// targets, so tests can compare whole trees.
func (f *fakeConfigfs) snapshot(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(f.root(), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.root(), p)
		switch {
		case rel == ".":
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case fi.IsDir():
			out = append(out, rel+"/")
		default:
			v, _ := f.os.Read(rel)
			out = append(out, rel+"="+v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
