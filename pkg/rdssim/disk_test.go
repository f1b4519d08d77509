package rdssim

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const addPVC1 = `/disk add type=file file-path=pool/k8s/pvc-1/disk.img file-size=10G slot=pvc-1 mount-filesystem=no ` +
	`nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`

// prop extracts key=value from print detail output (values may be wrapped
// onto the next line only for long tokens, which these tests avoid).
func prop(t *testing.T, out, key string) string {
	t.Helper()
	flat := strings.Join(strings.Fields(strings.ReplaceAll(out, crlf, " ")), " ")
	re := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=("(?:[^"\\]|\\.)*"|[0-9][0-9 ]*[0-9](?: |$)|\S+)`)
	m := re.FindStringSubmatch(flat)
	if m == nil {
		t.Fatalf("no %s= in output:\n%s", key, out)
	}
	return strings.TrimSpace(strings.Trim(m[1], `"`))
}

func blocksOf(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Blocks
}

func TestDiskAddCreatesSparseExportedFile(t *testing.T) {
	s := startSim(t, Config{Width: 200})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	out := mustRun(t, c, `/disk print detail where slot="pvc-1"`)
	want := map[string]string{
		"type": "file", "slot": "pvc-1", "fs": "-", "model": "/pool/k8s/pvc-1/disk.img", "size": "10 737 418 240",
		"mount-filesystem": "no", "nvme-tcp-export": "yes", "nvme-tcp-server-port": "4420",
		"nvme-tcp-server-nqn": "nqn.2000-02.com.mikrotik:pvc-1", "file-path": "/pool/k8s/pvc-1/disk.img",
		"file-size": "10.0GiB", "file-offset": "0",
	}
	for k, v := range want {
		if got := prop(t, out, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(out, "Flags: B - BLOCK-DEVICE; t - NVME-TCP-EXPORT\r\n 1 Bt type=file") {
		t.Errorf("unexpected legend/prefix:\n%q", out)
	}
	host, err := s.HostPath("pool/k8s/pvc-1/disk.img")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(host)
	if err != nil {
		t.Fatalf("backing file: %v", err)
	}
	if info.Size() != 10<<30 {
		t.Errorf("file size = %d, want %d", info.Size(), int64(10<<30))
	}
	if b := blocksOf(t, host); b > 64 {
		t.Errorf("file is not sparse: %d blocks allocated", b)
	}
}

func TestDiskAddDefaultsAndErrors(t *testing.T) {
	s := startSim(t, Config{Width: 300, PoolSize: 20 << 30})
	c := dial(t, s)
	mustRun(t, c, `/disk add type=file file-path=pool/plain.img file-size=1G slot=plain`)
	out := mustRun(t, c, `/disk print detail where slot=plain`)
	for k, v := range map[string]string{"mount-filesystem": "yes", "nvme-tcp-export": "no", "file-path": "/pool/plain.img"} {
		if got := prop(t, out, k); got != v {
			t.Errorf("default %s = %q, want %q", k, got, v)
		}
	}
	if strings.Contains(out, "nvme-tcp-server-nqn") {
		t.Errorf("a disk that is not exported prints no NQN:\n%s", out)
	}
	mustRun(t, c, `/disk add type=file file-path=pool/exp.img file-size=1G slot=exp nvme-tcp-export=yes`)
	out = mustRun(t, c, `/disk print detail where slot=exp`)
	if got := prop(t, out, "nvme-tcp-server-nqn"); got != "exp" {
		t.Errorf("default NQN = %q, want the bare slot name", got)
	}

	tests := []struct {
		name   string
		script string
		want   string
	}{
		{"duplicate slot", `/disk add type=file file-path=pool/other.img file-size=1G slot=plain`, "failure: already have such entry"},
		{"duplicate file", `/disk add type=file file-path=pool/plain.img file-size=1G slot=again`, "failure: already have such entry"},
		{"duplicate NQN", `/disk add type=file file-path=pool/n.img file-size=1G slot=n nvme-tcp-export=yes nvme-tcp-server-nqn=exp`, "failure: already have such entry"},
		{"larger than free space", `/disk add type=file file-path=pool/big.img file-size=21G slot=big`, "failure: not enough space"},
		{"outside the pool", `/disk add type=file file-path=other/x.img file-size=1G slot=x`, "failure: file-path must name a file on pool"},
		{"climbing out", `/disk add type=file file-path=pool/../x.img file-size=1G slot=x`, "failure: file-path must name a file on pool"},
		{"a directory", `/disk add type=file file-path=pool file-size=1G slot=x`, "failure: file-path must name a file on pool"},
		{"no size for a new file", `/disk add type=file file-path=pool/new.img slot=x`, "failure: file-size must be specified"},
		{"not a file disk", `/disk add type=tmpfs slot=x`, "failure: the simulator adds only type=file disks"},
		{"bad size", `/disk add type=file file-path=pool/y.img file-size=ten slot=y`, "invalid value for argument file-size"},
		{"unknown argument", `/disk add type=file file-path=pool/y.img file-size=1G slot=y colour=red`, "expected end of command (line 1 column 62)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, status := run(t, c, tc.script)
			if status != 1 {
				t.Errorf("status = %d, want 1", status)
			}
			if out != tc.want+crlf {
				t.Errorf("output = %q, want %q", out, tc.want+crlf)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(s.poolDir(), "new.img")); err == nil {
		t.Error("a failed add left a file behind")
	}
}

func TestDiskSizesRoundUpToSectors(t *testing.T) {
	s := startSim(t, Config{Width: 200})
	c := dial(t, s)
	mustRun(t, c, `/disk add type=file file-path=pool/odd.img file-size=1000001 slot=odd`)
	out := mustRun(t, c, `/disk print detail where slot=odd`)
	if got := prop(t, out, "size"); got != "1 000 448" {
		t.Errorf("size = %q, want 1 000 448 (rounded up to 512-byte sectors)", got)
	}
}

func TestDiskSetResizesTheFile(t *testing.T) {
	s := startSim(t, Config{Width: 200})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	host, _ := s.HostPath("pool/k8s/pvc-1/disk.img")
	for _, tc := range []struct {
		script string
		want   int64
	}{
		{`/disk set [find slot=pvc-1] file-size=12884901888`, 12 << 30},
		{`/disk set [find where slot="pvc-1"] file-size=13G`, 13 << 30},
		{`/disk set numbers=[find slot=pvc-1] file-size=14G`, 14 << 30},
		{`/disk set pvc-1 file-size=15G`, 15 << 30},
		{`/disk set 1 file-size=16G`, 16 << 30},
		{`/disk set *1 file-size=2G`, 2 << 30},
	} {
		mustRun(t, c, tc.script)
		info, err := os.Stat(host)
		if err != nil || info.Size() != tc.want {
			t.Fatalf("after %q: file size = %v (%v), want %d", tc.script, info.Size(), err, tc.want)
		}
	}
	out := mustRun(t, c, `/disk print detail where slot=pvc-1`)
	if got := prop(t, out, "size"); got != "2 147 483 648" {
		t.Errorf("size = %q after shrinking", got)
	}
	mustRun(t, c, `/disk set [find slot=pvc-1] nvme-tcp-server-port=4421 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:moved`)
	out = mustRun(t, c, `/disk print detail where slot=pvc-1`)
	if prop(t, out, "nvme-tcp-server-port") != "4421" || prop(t, out, "nvme-tcp-server-nqn") != "nqn.2000-02.com.mikrotik:moved" {
		t.Errorf("export settings not changed:\n%s", out)
	}
	mustRun(t, c, `/disk set [find slot=pvc-1] nvme-tcp-export=no`)
	if out = mustRun(t, c, `/disk print detail where slot=pvc-1`); prop(t, out, "nvme-tcp-export") != "no" {
		t.Errorf("export not switched off:\n%s", out)
	}
	// A find that matches nothing changes nothing and is no error.
	mustRun(t, c, `/disk set [find slot=nothing] file-size=1G`)
	for script, want := range map[string]string{
		`/disk set nothing file-size=1G`:           "no such item",
		`/disk set [find slot=pvc-1] file-size=1P`: "invalid value for argument file-size",
		`/disk set 0 file-size=1G`:                 "failure: the pool disk can not be changed",
		`/disk set pvc-1 file-size=1T`:             "failure: not enough space",
	} {
		if out, status := run(t, c, script); status != 1 || out != want+crlf {
			t.Errorf("%s: status %d output %q, want %q", script, status, out, want)
		}
	}
}

func TestDiskRemoveKeepsTheFile(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	host, _ := s.HostPath("pool/k8s/pvc-1/disk.img")
	if err := os.WriteFile(host+".marker", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, `/disk remove [find slot=pvc-1]`)
	if out := mustRun(t, c, `/disk print detail where slot=pvc-1`); strings.Count(out, crlf) != 1 || !strings.HasPrefix(out, "Flags: ") {
		t.Errorf("disk still listed:\n%s", out)
	}
	if info, err := os.Stat(host); err != nil || info.Size() != 10<<30 {
		t.Fatalf("backing file gone or changed after /disk remove: %v", err)
	}
	// Removing again through find is a silent no-op; by name it is an error.
	mustRun(t, c, `/disk remove [find slot=pvc-1]`)
	if out, status := run(t, c, `/disk remove pvc-1`); status != 1 || out != "no such item"+crlf {
		t.Errorf("remove of a missing name: status %d output %q", status, out)
	}
	if out, status := run(t, c, `/disk remove 0`); status != 1 || !strings.HasPrefix(out, "failure:") {
		t.Errorf("removing the pool disk: status %d output %q", status, out)
	}
	// Adding the disk again attaches the existing file and keeps its data.
	if err := os.WriteFile(host, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, strings.Replace(addPVC1, "file-size=10G ", "", 1))
	data, err := os.ReadFile(host)
	if err != nil || string(data) != "keep me" {
		t.Errorf("re-attached file lost its data: %q %v", data, err)
	}
	out := mustRun(t, c, `/disk print detail where slot=pvc-1`)
	if got := prop(t, out, "size"); got != "7" {
		t.Errorf("size of attached file = %q, want its own size", got)
	}
}

func TestPoolFreeSpaceShrinksAsFilesFill(t *testing.T) {
	s := startSim(t, Config{PoolSize: 1 << 30, Width: 200})
	c := dial(t, s)
	pool := func() (size, free int64, use string) {
		out := mustRun(t, c, `/disk print detail where mount-point="pool"`)
		size, _ = strconv.ParseInt(strings.ReplaceAll(prop(t, out, "size"), " ", ""), 10, 64)
		free, _ = strconv.ParseInt(strings.ReplaceAll(prop(t, out, "free"), " ", ""), 10, 64)
		return size, free, prop(t, out, "use")
	}
	size, free0, use := pool()
	if size != 1<<30 || free0 != 1<<30 || use != "0%" {
		t.Fatalf("empty pool: size %d free %d use %s", size, free0, use)
	}
	mustRun(t, c, `/disk add type=file file-path=pool/v.img file-size=512M slot=v`)
	if _, free, _ := pool(); free != free0 {
		t.Errorf("a sparse file changed free space: %d -> %d", free0, free)
	}
	host, err := s.HostPath("/pool/v.img")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(host, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for i := 0; i < 256; i++ {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, free1, use1 := pool()
	if free0-free1 < 256<<20 {
		t.Errorf("writing 256 MiB shrank free space by only %d bytes", free0-free1)
	}
	if use1 != "25%" {
		t.Errorf("use = %s, want 25%%", use1)
	}
	// Now a 900 MiB disk no longer fits; a 600 MiB one does.
	if out, _ := run(t, c, `/disk add type=file file-path=pool/w.img file-size=900M slot=w`); out != "failure: not enough space"+crlf {
		t.Errorf("over-sized add: %q", out)
	}
	mustRun(t, c, `/disk add type=file file-path=pool/w.img file-size=600M slot=w`)
}

func TestHostPathStaysInsideThePool(t *testing.T) {
	s, _ := goldenSim(t)
	for _, p := range []string{"pool/a/b.img", "/pool/a/b.img", "pool"} {
		got, err := s.HostPath(p)
		if err != nil || !strings.HasPrefix(got, s.poolDir()) {
			t.Errorf("HostPath(%q) = %q, %v", p, got, err)
		}
	}
	for _, p := range []string{"", "other/x", "pool/../x", "pool/a/../../x", "poolx/a", "/etc/passwd", "pool/./x"} {
		if got, err := s.HostPath(p); err == nil {
			t.Errorf("HostPath(%q) = %q, want an error", p, got)
		}
	}
}

func TestMonitorTraffic(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	want := "     read-ops: 0\r\n    write-ops: 0\r\n   read-bytes: 0\r\n  write-bytes: 0\r\n" +
		"    read-rate: 0bps\r\n   write-rate: 0bps\r\nin-flight-ops: 0\r\n"
	for _, script := range []string{`/disk monitor-traffic pvc-1 once`, `/disk monitor-traffic [find slot=pvc-1] once`} {
		if out := mustRun(t, c, script); out != want {
			t.Errorf("%s:\n%q\nwant\n%q", script, out, want)
		}
	}
	if out, status := run(t, c, `/disk monitor-traffic [find slot=nothing] once`); status != 1 || out != "no such item"+crlf {
		t.Errorf("monitor of nothing: %d %q", status, out)
	}
}

func TestMonitorTrafficWithoutOnceStreamsUntilClosed(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(`/disk monitor-traffic pvc-1`); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for strings.Count(got.String(), "in-flight-ops: 0") < 2 {
		n, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got.String(), err)
		}
		got.Write(buf[:n])
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	sess.Close()
	if err := <-done; err == nil {
		t.Error("the stream reported success once the client closed it; it never ends on its own")
	}
	// The connection is still usable.
	mustRun(t, c, ":put ok")
}
