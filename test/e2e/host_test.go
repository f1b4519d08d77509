//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What the tests check on the machine, read straight from the kernel (sysfs, configfs, mountinfo, on-disk
// superblocks) rather than through the driver's own packages, so a bug there cannot hide itself.

type nvmeController struct{ name, nqn, state string }

// nvmeControllers lists every NVMe controller the kernel has.
func nvmeControllers() ([]nvmeController, error) {
	dirs, err := filepath.Glob("/sys/class/nvme/nvme*")
	if err != nil {
		return nil, err
	}
	var out []nvmeController
	for _, d := range dirs {
		c := nvmeController{name: filepath.Base(d), nqn: readAttr(d + "/subsysnqn"), state: readAttr(d + "/state")}
		if c.nqn == "" && c.state == "" {
			continue // gone while we looked
		}
		out = append(out, c)
	}
	return out, nil
}

func controllersOf(t testing.TB, nqn string) []nvmeController {
	t.Helper()
	all, err := nvmeControllers()
	if err != nil {
		t.Fatal(err)
	}
	var out []nvmeController
	for _, c := range all {
		if c.nqn == nqn {
			out = append(out, c)
		}
	}
	return out
}

// waitForNoController fails unless every controller of the NQN is gone within the timeout.
func waitForNoController(t testing.TB, nqn string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := controllersOf(t, nqn)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has NVMe controllers %v %s after it should have been disconnected", nqn, left, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForState waits until the NQN's controller reports one of the states, and returns it.
func waitForState(t testing.TB, nqn string, timeout time.Duration, want func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		for _, c := range controllersOf(t, nqn) {
			last = c.state
			if want(c.state) {
				return c.state
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller of %s did not reach the expected state within %s (last %q)", nqn, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAttr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// deviceOfNQN finds the NQN's block device the way the kernel names it, skipping the hidden multipath
// path nodes (nvmeXcYnZ); "" when there is none.
func deviceOfNQN(nqn string) string {
	blocks, _ := filepath.Glob("/sys/block/nvme*n*")
	for _, b := range blocks {
		name := filepath.Base(b)
		if strings.Contains(strings.TrimPrefix(name, "nvme"), "c") {
			continue
		}
		if readAttr(b+"/device/subsysnqn") == nqn {
			return "/dev/" + name
		}
	}
	return ""
}

func waitForDevice(t testing.TB, nqn string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if d := deviceOfNQN(nqn); d != "" {
			if _, err := os.Stat(d); err == nil {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no block device for %s within %s", nqn, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deviceBytes is the size of a block device as the kernel sees it now.
func deviceBytes(t testing.TB, dev string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(readAttr("/sys/block/"+filepath.Base(dev)+"/size"), 10, 64)
	if err != nil {
		t.Fatalf("size of %s: %v", dev, err)
	}
	return n * 512
}

// nqnOfDevice is the subsystem NQN behind /dev/nvmeXnY.
func nqnOfDevice(dev string) string {
	return readAttr("/sys/block/" + filepath.Base(dev) + "/device/subsysnqn")
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	majorMinor, root, mountPoint, options, fsType, source string
}

func mountAt(t testing.TB, path string) (mountEntry, bool) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found mountEntry
	ok := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, cut := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !cut || len(a) < 6 || len(b) < 2 {
			continue
		}
		if unescapeMount(a[4]) == path {
			// The last entry for a path is the one on top.
			found, ok = mountEntry{majorMinor: a[2], root: a[3], mountPoint: a[4], options: a[5], fsType: b[0], source: b[1]}, true
		}
	}
	return found, ok
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// fsUUID reads the filesystem UUID from the superblock on the device or image: an unchanged UUID proves the
// filesystem was not made again.
func fsUUID(t testing.TB, path, fsType string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 2048)
	if _, err := f.ReadAt(sb, 0); err != nil {
		t.Fatalf("superblock of %s: %v", path, err)
	}
	var uuid []byte
	switch fsType {
	case "ext4": // superblock at 1024: magic 0xEF53 at +0x38, s_uuid at +0x68
		if binary.LittleEndian.Uint16(sb[1024+0x38:]) != 0xEF53 {
			t.Fatalf("%s has no ext4 superblock", path)
		}
		uuid = sb[1024+0x68 : 1024+0x68+16]
	case "xfs": // superblock at 0: magic "XFSB", sb_uuid at +32
		if string(sb[:4]) != "XFSB" {
			t.Fatalf("%s has no xfs superblock", path)
		}
		uuid = sb[32:48]
	default:
		t.Fatalf("fsUUID: unknown filesystem %q", fsType)
	}
	return hex.EncodeToString(uuid)
}

// dropCaches makes the next reads come from the device, not the page cache.
func dropCaches(t testing.TB) {
	t.Helper()
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200); err != nil {
		t.Fatal(err)
	}
}

// payload is n bytes of reproducible noise (compression or zero detection cannot fake it).
func payload(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func writeSynced(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func checkFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s holds %d bytes with sum %s, want %d bytes with sum %s", path, len(got), sum(got), len(want), sum(want))
	}
}

func readAt(t testing.TB, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("read %d bytes at %d of %s: %v", n, off, path, err)
	}
	return b
}

// exportedFile is the file the kernel target serves for the NQN, as configfs says: what the RDS would
// hold on its pool.
func exportedFile(t testing.TB, nqn string) string {
	t.Helper()
	p := readAttr(filepath.Join(nvmetRoot, "subsystems", nqn, "namespaces/1/device_path"))
	if p == "" {
		t.Fatalf("nvmet exports no namespace for %s", nqn)
	}
	return p
}

// portLinksOf lists the configfs links that expose the NQN on a port.
func portLinksOf(nqn string) []string {
	links, _ := filepath.Glob(filepath.Join(nvmetRoot, "ports", "*", "subsystems", nqn))
	return links
}

func isExported(nqn string) bool {
	_, err := os.Stat(filepath.Join(nvmetRoot, "subsystems", nqn))
	return err == nil
}

func statfsBytes(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func seconds(d []time.Duration) string {
	parts := make([]string, len(d))
	for i, x := range d {
		parts[i] = fmt.Sprintf("%.2fs", x.Seconds())
	}
	return strings.Join(parts, " ")
}
