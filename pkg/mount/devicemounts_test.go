package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeDevices stands in for stat(2) on the device nodes the mount tables
// below name, which this machine does not have.
var fakeDevices = map[string]uint64{
	"/dev/loop3":   unix.Mkdev(7, 3),
	"/dev/nvme1n1": unix.Mkdev(259, 1),
	"/dev/nvme2n1": unix.Mkdev(259, 3),
	"/dev/nvme3n1": unix.Mkdev(259, 5),
}

func fakeDeviceNumber(path string) (uint64, error) {
	if n, ok := fakeDevices[path]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("stat %s: %w", path, os.ErrNotExist)
}

// tableMounter reads the mount table at path and the fake device nodes. It
// runs no command: listing mounts needs none.
func tableMounter(path string) *Linux {
	m := NewLinux(Options{MountInfoPath: path, DevRoot: "/dev"})
	m.deviceNumber = fakeDeviceNumber
	return m
}

// TestDeviceMountPointsGolden reads mount tables shaped like a node's
// (kubelet paths, binds of a staging mount, device nodes bound for raw
// block, escaped names) and compares the mounts found on a volume's device
// with golden files. Run with -update to rewrite them after a deliberate
// change.
func TestDeviceMountPointsGolden(t *testing.T) {
	const kubelet = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/"
	cases := []struct {
		golden, mountinfo, device, mountPath string
	}{
		{"fs-published", "fs-published", "/dev/nvme1n1", kubelet + "5c2e/globalmount"},
		{"fs-published-other-volume", "fs-published", "/dev/nvme2n1", kubelet + "9d0b/globalmount"},
		// The device under the staging mount alone finds its binds.
		{"fs-published-staging-only", "fs-published", "", kubelet + "5c2e/globalmount"},
		{"block-published", "block-published", "/dev/nvme1n1", ""},
		// The staging mount sits on the volume's old device: its mounts
		// count, and so do the new device's (none here).
		{"stale-after-reconnect", "stale-after-reconnect", "/dev/nvme2n1", kubelet + "5c2e/globalmount"},
		{"escaped-paths", "escaped-paths", "/dev/loop3", "/tmp/sanity run/staging"},
		{"deleted-device", "deleted-device", "/dev/loop3", ""},
		{"not-staged", "not-staged", "", kubelet + "ffff/globalmount"},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			m := tableMounter(filepath.Join("testdata", "devicemounts", tc.mountinfo+".mountinfo"))
			got, err := m.DeviceMountPoints(tc.device, tc.mountPath)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, p := range got {
				b.WriteString(p + "\n")
			}
			golden(t, filepath.Join("devicemounts", tc.golden+".golden"), b.String())
		})
	}
}

// TestDeviceMountPointsOnLoopDevices lists the mounts of a staged,
// published filesystem volume and a published raw block volume in this
// host's real mount table, by device and by staging path.
func TestDeviceMountPointsOnLoopDevices(t *testing.T) {
	requireRoot(t, "mkfs.ext4")
	ctx := ctxT(t)
	m := NewLinux(Options{})
	dev, staging := stagedVolume(t, m)
	pods := t.TempDir()
	target := filepath.Join(pods, "pod a", "mount") // a space, as the kernel escapes it
	unmountOnCleanup(t, target)
	if err := m.BindMount(ctx, staging, target, false, nil); err != nil {
		t.Fatal(err)
	}
	blockDev, _ := loopDevice(t, 16<<20)
	blockTarget := filepath.Join(pods, "block", "dev")
	unmountOnCleanup(t, blockTarget)
	if err := m.PublishBlock(ctx, blockDev, blockTarget, false); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, device, mountPath string
		want                    []string
	}{
		{"filesystem by device", dev, "", []string{staging, target}},
		{"filesystem by staging path", "", staging, []string{staging, target}},
		{"filesystem by both", dev, staging, []string{staging, target}},
		{"raw block by device", blockDev, "", []string{blockTarget}},
		{"a path with nothing mounted", "", pods, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.DeviceMountPoints(tc.device, tc.mountPath)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("DeviceMountPoints(%q, %q) = %q, %v; want %q", tc.device, tc.mountPath, got, err, tc.want)
			}
		})
	}

	for _, p := range []string{target, staging, blockTarget} {
		if err := m.Unmount(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{dev, blockDev} {
		if got, err := m.DeviceMountPoints(d, staging); err != nil || len(got) != 0 {
			t.Fatalf("after unmounting everything, DeviceMountPoints(%s) = %q, %v", d, got, err)
		}
	}
}

func TestDeviceMountPointsUnreadableTable(t *testing.T) {
	m := tableMounter(filepath.Join(t.TempDir(), "missing"))
	if _, err := m.DeviceMountPoints("/dev/loop3", ""); err == nil {
		t.Fatal("a missing mount table gave no error: an unstage would disconnect without knowing what is mounted")
	}
}

// FuzzDeviceMountPoints feeds arbitrary mount tables through the same parse
// and match an unstage uses. It must never panic, and every mount point it
// returns must come from a line of the table.
func FuzzDeviceMountPoints(f *testing.F) {
	// Short seeds (more are in testdata/fuzz): the fuzzer minimises every
	// input that finds new coverage, and each run writes a file, so long
	// seeds make it crawl.
	f.Add("1 0 254:1 / / rw - ext4 /dev/vda1 rw\n501 1 7:3 / /tmp/sanity\\040run/staging rw - ext4 /dev/loop3 rw\n")
	f.Add("602 1 0:6 /loop3 /tmp/t rw - devtmpfs devtmpfs rw\n601 1 0:6 /loop3//deleted /tmp/o rw - devtmpfs devtmpfs rw\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, table string) {
		path := filepath.Join(dir, "mountinfo")
		if err := os.WriteFile(path, []byte(table), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := tableMounter(path).DeviceMountPoints("/dev/loop3", "/tmp/sanity run/staging")
		if err != nil {
			return // a malformed table is an error, which the caller reports
		}
		lines := strings.Split(table, "\n")
		for _, p := range got {
			found := false
			for _, l := range lines {
				if fields := strings.Fields(l); len(fields) > 4 && unescapeMountPath(fields[4]) == p {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("mount point %q is on no line of the table", p)
			}
		}
	})
}

// BenchmarkDeviceMountPoints reads a mount table the size of a busy node's
// (a few hundred pods, each with projected volumes and a CSI bind): unstage
// and single-writer publish read it once per call.
func BenchmarkDeviceMountPoints(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("1 0 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n")
	for i := range 300 {
		fmt.Fprintf(&sb, "%d 1 0:%d / /var/lib/kubelet/pods/%04d/volumes/kubernetes.io~projected/kube-api-access rw,relatime shared:%d - tmpfs tmpfs rw\n",
			100+2*i, 60+i, i, 100+i)
		fmt.Fprintf(&sb, "%d 1 259:%d / /var/lib/kubelet/pods/%04d/volumes/kubernetes.io~csi/pvc-%d/mount rw,relatime shared:%d - ext4 /dev/nvme%dn1 rw\n",
			101+2*i, i%40, i, i%40, 500+i, i%40)
	}
	path := filepath.Join(b.TempDir(), "mountinfo")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	m := tableMounter(path)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.DeviceMountPoints("/dev/nvme1n1", "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/x/globalmount"); err != nil {
			b.Fatal(err)
		}
	}
}
