package mount

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mountutils "k8s.io/mount-utils"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestParseBlkidExportGolden runs the parser over blkid outputs captured on
// real loop devices (and two synthetic ones, named so).
func TestParseBlkidExportGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "blkid", "*.txt"))
	if err != nil || len(inputs) < 6 {
		t.Fatalf("blkid samples: %v, %v", inputs, err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			fsType, ptType := parseBlkidExport(string(b))
			golden(t, filepath.Join("blkid", name+".golden"), fmt.Sprintf("TYPE=%q\nPTTYPE=%q\n", fsType, ptType))
		})
	}
}

func FuzzParseBlkidExport(f *testing.F) {
	for _, s := range []string{"DEVNAME=/dev/loop0\nTYPE=ext4\n", "PTTYPE=gpt\n", "", "TYPE=\n=x\nTYPE", "TYPE=a=b\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		fsType, ptType := parseBlkidExport(out)
		for _, v := range []string{fsType, ptType} {
			if strings.ContainsAny(v, "\n") {
				t.Fatalf("value %q spans lines", v)
			}
		}
		if fsType != "" && !strings.Contains(out, "TYPE="+fsType) {
			t.Fatalf("TYPE %q is not in the output %q", fsType, out)
		}
		if ptType != "" && !strings.Contains(out, "PTTYPE="+ptType) {
			t.Fatalf("PTTYPE %q is not in the output %q", ptType, out)
		}
	})
}

// TestFindMountGolden resolves paths against a node's mountinfo: stacked
// mounts, escaped paths, bind mounts of device nodes.
func TestFindMountGolden(t *testing.T) {
	infos, err := mountutils.ParseMountInfo(filepath.Join("testdata", "mountinfo", "node.txt"))
	if err != nil {
		t.Fatal(err)
	}
	queries := []string{
		"/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/3f1c/globalmount",
		"/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/3f1c/globalmount/",
		"/var/lib/kubelet/pods/1a2b/volumes/kubernetes.io~csi/pvc-1/mount",
		"/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/77aa/globalmount",
		"/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-2/3c4d",
		"/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-4/5e6f",
		"/mnt/with space\ttab",
		"/mnt/with\\040space\\011tab",
		"/mnt/stacked",
		"/mnt/back\\slash",
		"/mnt",
		"/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io",
	}
	var b strings.Builder
	for _, q := range queries {
		info := findMount(infos, mountPointCandidates(q))
		if info == nil {
			fmt.Fprintf(&b, "%q -> not mounted\n", q)
			continue
		}
		fmt.Fprintf(&b, "%q -> id=%d dev=%d:%d root=%q fstype=%s source=%s ro=%v\n",
			q, info.ID, info.Major, info.Minor, info.Root, info.FsType, info.Source, isReadOnly(info))
	}
	golden(t, filepath.Join("mountinfo", "node.golden"), b.String())
}

// TestMountedDeviceFromMountinfo resolves devices through a fake
// /sys/dev/block, for paths that do not exist on this machine (so only
// mountinfo can answer).
func TestMountedDeviceFromMountinfo(t *testing.T) {
	root := t.TempDir()
	sys, dev := filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for majMin, target := range map[string]string{
		"259:1": "../../devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1",
		"259:3": "../../devices/virtual/nvme-subsystem/nvme-subsys2/nvme2n1",
		"7:0":   "../../devices/virtual/block/loop0",
	} {
		link := filepath.Join(sys, "dev", "block", majMin)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nvme0n1", "nvme2n1", "loop0"} {
		if err := os.WriteFile(filepath.Join(dev, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := NewLinux(Options{MountInfoPath: filepath.Join("testdata", "mountinfo", "node.txt"), SysfsRoot: sys, DevRoot: dev,
		Exec: newFakeExec(t, nil)})
	tests := []struct {
		path    string
		want    string
		wantErr error
	}{
		{path: "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/3f1c/globalmount", want: "nvme0n1"},
		{path: "/var/lib/kubelet/pods/1a2b/volumes/kubernetes.io~csi/pvc-1/mount", want: "nvme0n1"},
		{path: "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/77aa/globalmount", want: "nvme2n1"},
		{path: "/mnt/with space\ttab", want: "loop0"},
		// Namespace removed under a live mount (ctrl_loss_tmo expired).
		{path: "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/dead/globalmount", wantErr: ErrDeviceGone},
		// Raw block publish of a device that disappeared.
		{path: "/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-4/5e6f", wantErr: ErrDeviceGone},
		// Raw block publish whose node is not in this fake /dev.
		{path: "/var/lib/kubelet/plugins/kubernetes.io/csi/volumeDevices/publish/pvc-2/3c4d", wantErr: ErrDeviceGone},
		{path: "/mnt/nothing-here", wantErr: ErrNotMounted},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := m.MountedDevice(tc.path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("MountedDevice = %q, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != filepath.Join(dev, tc.want) {
				t.Fatalf("MountedDevice = %q, %v; want %s", got, err, filepath.Join(dev, tc.want))
			}
		})
	}
	if _, err := m.MountedDevice("/var/lib/kubelet/pods/1a2b/volumes/kubernetes.io~projected/kube-api-access-x"); err == nil ||
		errors.Is(err, ErrDeviceGone) {
		t.Errorf("tmpfs mount: error = %v, want 'not backed by a block device'", err)
	}
}

// kernelEscape escapes a path the way the kernel prints it in mountinfo.
func kernelEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestUnescapeMountPath(t *testing.T) {
	tests := map[string]string{
		`/plain/path`:             "/plain/path",
		`/a\040b`:                 "/a b",
		`/a\011b\012c`:            "/a\tb\nc",
		`/back\134slash`:          `/back\slash`,
		`/not\x20an\9escape\04`:   `/not\x20an\9escape\04`,
		`/too\400big`:             `/too\400big`,
		`/end\`:                   `/end\`,
		`/\134040literal`:         `/\040literal`,
		`/pvc-1/volumes/kube\040`: "/pvc-1/volumes/kube ",
		`/not\09an\escape\4`:      `/not\09an\escape\4`,
		`\040`:                    " ",
		`/end\04`:                 `/end\04`,
		`/kubelet\040pods/x\0`:    `/kubelet pods/x\0`,
	}
	for in, want := range tests {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzUnescapeMountPath: any path the kernel escapes comes back unchanged,
// and no input, escaped or not, grows when unescaped.
func FuzzUnescapeMountPath(f *testing.F) {
	for _, s := range []string{"/a b", "/x\\040y", "/\t\n\\", "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/pvc/mount"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if got := unescapeMountPath(kernelEscape(path)); got != path {
			t.Fatalf("unescape(escape(%q)) = %q", path, got)
		}
		if len(unescapeMountPath(path)) > len(path) {
			t.Fatalf("unescaping %q grew it", path)
		}
	})
}
