package driver

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of the mount-table tests")

// fakeDevices stands in for stat(2) on device nodes in the mount-table tests.
var fakeDevices = map[string]uint64{
	"/dev/loop3":   unix.Mkdev(7, 3),
	"/dev/nvme1n1": unix.Mkdev(259, 1),
	"/dev/nvme2n1": unix.Mkdev(259, 3),
	"/dev/nvme3n1": unix.Mkdev(259, 5),
}

func fakeBlockDevice(path string) (uint64, bool) {
	n, ok := fakeDevices[path]
	return n, ok
}

// TestVolumeMountsGolden reads mount tables shaped like a node's (kubelet paths, binds of a staging mount,
// device nodes bound for raw block, escaped names) and compares the mounts found for a volume with golden
// files. Run with -update to rewrite them after a deliberate change.
func TestVolumeMountsGolden(t *testing.T) {
	const kubelet = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/"
	cases := []struct {
		golden, mountinfo, device, staging string
	}{
		{"fs-published", "fs-published", "/dev/nvme1n1", kubelet + "5c2e/globalmount"},
		{"fs-published-other-volume", "fs-published", "/dev/nvme2n1", kubelet + "9d0b/globalmount"},
		{"fs-published-staging-only", "fs-published", "", kubelet + "5c2e/globalmount"},
		{"block-published", "block-published", "/dev/nvme1n1", ""},
		{"stale-after-reconnect", "stale-after-reconnect", "/dev/nvme2n1", kubelet + "5c2e/globalmount"},
		{"escaped-paths", "escaped-paths", "/dev/loop3", "/tmp/sanity run/staging"},
		{"deleted-device", "deleted-device", "/dev/loop3", ""},
		{"not-staged", "not-staged", "", kubelet + "ffff/globalmount"},
	}
	for _, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			h := hostMounts{mountInfo: filepath.Join("testdata", "mountinfo", tc.mountinfo+".mountinfo"), devRoot: "/dev",
				blockDevice: fakeBlockDevice}
			got, err := h.volumeMounts(tc.device, tc.staging)
			if err != nil {
				t.Fatal(err)
			}
			text := ""
			for _, m := range got {
				text += m + "\n"
			}
			golden := filepath.Join("testdata", "mountinfo", tc.golden+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if text != string(want) {
				t.Fatalf("mounts of %q (staging %q):\n%s\nwant:\n%s", tc.device, tc.staging, text, want)
			}
		})
	}
}

func TestVolumeMountsUnreadableTable(t *testing.T) {
	h := hostMounts{mountInfo: filepath.Join(t.TempDir(), "missing"), devRoot: "/dev", blockDevice: fakeBlockDevice}
	if _, err := h.volumeMounts("/dev/loop3", ""); err == nil {
		t.Fatal("a missing mount table gave no error: unstage would disconnect without knowing what is mounted")
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{
		`/plain/path`:          "/plain/path",
		`/a\040b`:              "/a b",
		`/tab\011nl\012`:       "/tab\tnl\n",
		`/back\134slash`:       `/back\slash`,
		`/not\09an\escape\4`:   `/not\09an\escape\4`,
		`/high\400stays`:       `/high\400stays`,
		`\040`:                 " ",
		`/end\04`:              `/end\04`,
		`/kubelet\040pods/x\0`: `/kubelet pods/x\0`,
	} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// escapeMountPath escapes like the kernel's seq_path for mountinfo (space, tab, newline, backslash).
func escapeMountPath(s string) string {
	r := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)
	return r.Replace(s)
}

func FuzzUnescapeMountPath(f *testing.F) {
	for _, s := range []string{"/var/lib/kubelet/pods/x/volumes", "/a b\tc\nd\\e", `\040`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeMountPath(escapeMountPath(s)); got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		// Any input, escaped or not, never grows when unescaped.
		if len(unescapeMountPath(s)) > len(s) {
			t.Fatalf("unescaping %q grew it", s)
		}
	})
}

// FuzzVolumeMounts feeds arbitrary mount tables through the same parse and match as unstage uses. It must
// never panic, and every mount it returns must come from a line of the table.
func FuzzVolumeMounts(f *testing.F) {
	// Short seeds (more are in testdata/fuzz): the fuzzer minimises every input that finds new coverage,
	// and each run of this target writes a file, so long seeds make it crawl.
	f.Add("1 0 254:1 / / rw - ext4 /dev/vda1 rw\n501 1 7:3 / /tmp/sanity\\040run/staging rw - ext4 /dev/loop3 rw\n")
	f.Add("602 1 0:6 /loop3 /tmp/t rw - devtmpfs devtmpfs rw\n601 1 0:6 /loop3//deleted /tmp/o rw - devtmpfs devtmpfs rw\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, table string) {
		path := filepath.Join(dir, "mountinfo")
		if err := os.WriteFile(path, []byte(table), 0o600); err != nil {
			t.Fatal(err)
		}
		h := hostMounts{mountInfo: path, devRoot: "/dev", blockDevice: fakeBlockDevice}
		got, err := h.volumeMounts("/dev/loop3", "/tmp/sanity run/staging")
		if err != nil {
			return // a malformed table is an error, which unstage reports
		}
		lines := strings.Split(table, "\n")
		for _, m := range got {
			found := false
			for _, l := range lines {
				if fields := strings.Fields(l); len(fields) > 4 && unescapeMountPath(fields[4]) == m {
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("mount point %q is on no line of the table", m)
			}
		}
	})
}

// BenchmarkVolumeMounts reads a mount table the size of a busy node's (a few hundred pods, each with
// projected volumes and a CSI bind): unstage and single-writer publish read it once per call.
func BenchmarkVolumeMounts(b *testing.B) {
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
	h := hostMounts{mountInfo: path, devRoot: "/dev", blockDevice: fakeBlockDevice}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.volumeMounts("/dev/nvme1n1", "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/x/globalmount"); err != nil {
			b.Fatal(err)
		}
	}
}
