package rdssim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	nqnA = "nqn.2000-02.com.mikrotik:pvc-a"
	nqnB = "nqn.2000-02.com.mikrotik:pvc-b"
)

// backingFile makes a real file for a namespace to point at (the fake
// kernel, like the real one, refuses to enable a missing file).
func backingFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantOps(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: configfs changes\n  got:\n    %s\n  want:\n    %s", what,
			strings.Join(got, "\n    "), strings.Join(want, "\n    "))
	}
}

func mustExport(t *testing.T, n *NVMet, nqn string, port int, path string) {
	t.Helper()
	if err := n.Export(nqn, port, path, nil); err != nil {
		t.Fatalf("Export(%s, %d, %s): %v", nqn, port, path, err)
	}
}

func exportOps(nqn, port, path string) []string {
	return []string{
		"mkdir ports/" + port,
		"write ports/" + port + "/addr_trtype=tcp",
		"write ports/" + port + "/addr_adrfam=ipv4",
		"write ports/" + port + "/addr_traddr=127.0.0.1",
		"write ports/" + port + "/addr_trsvcid=" + port,
		"mkdir subsystems/" + nqn,
		"write subsystems/" + nqn + "/attr_allow_any_host=1",
		"mkdir subsystems/" + nqn + "/namespaces/1",
		"write subsystems/" + nqn + "/namespaces/1/device_path=" + path,
		"write subsystems/" + nqn + "/namespaces/1/buffered_io=1",
		"write subsystems/" + nqn + "/namespaces/1/enable=1",
		"symlink ports/" + port + "/subsystems/" + nqn + " -> subsystems/" + nqn,
	}
}

func unexportOps(nqn, port string, portGoes bool) []string {
	ops := []string{"unlink ports/" + port + "/subsystems/" + nqn}
	if portGoes {
		ops = append(ops, "rmdir ports/"+port)
	}
	return append(ops,
		"write subsystems/"+nqn+"/namespaces/1/enable=0",
		"rmdir subsystems/"+nqn+"/namespaces/1",
		"rmdir subsystems/"+nqn)
}

func TestNVMetExportWritesTheKernelTree(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	n := newNVMet(fs, "127.0.0.1")
	disk := backingFile(t, "disk.img")
	mustExport(t, n, nqnA, 4420, disk)
	wantOps(t, "first export", fs.take(), exportOps(nqnA, "4420", disk))

	link := filepath.Join(fs.root(), "ports/4420/subsystems", nqnA)
	target, err := os.Readlink(link)
	if err != nil || target != filepath.Join(fs.root(), "subsystems", nqnA) {
		t.Errorf("port link %s -> %q (%v), want the subsystem directory", link, target, err)
	}
	for attr, want := range map[string]string{
		"ports/4420/addr_traddr":                           "127.0.0.1",
		"subsystems/" + nqnA + "/namespaces/1/enable":      "1",
		"subsystems/" + nqnA + "/namespaces/1/buffered_io": "1",
	} {
		if got, _ := fs.os.Read(attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
}

func TestNVMetReExportAppliesOnlyWhatChanged(t *testing.T) {
	ns := "subsystems/" + nqnA + "/namespaces/1"
	first := backingFile(t, "first.img")
	second := backingFile(t, "second.img")
	cases := []struct {
		name           string
		revalidateSize bool
		port           int
		path           string
		want           []string
	}{
		{name: "resize: the kernel re-reads the size and tells connected hosts", revalidateSize: true,
			port: 4420, path: first, want: []string{"write " + ns + "/revalidate_size=1"}},
		{name: "resize on a kernel without revalidate_size: hosts see it on their next identify",
			port: 4420, path: first, want: nil},
		{name: "another file: disable, repoint, enable", revalidateSize: true, port: 4420, path: second,
			want: []string{"write " + ns + "/enable=0", "write " + ns + "/device_path=" + second, "write " + ns + "/enable=1"}},
		{name: "another port: the link moves and the emptied port goes", revalidateSize: true, port: 4421, path: first,
			want: []string{
				"mkdir ports/4421",
				"write ports/4421/addr_trtype=tcp",
				"write ports/4421/addr_adrfam=ipv4",
				"write ports/4421/addr_traddr=127.0.0.1",
				"write ports/4421/addr_trsvcid=4421",
				"write " + ns + "/revalidate_size=1",
				"unlink ports/4420/subsystems/" + nqnA,
				"rmdir ports/4420",
				"symlink ports/4421/subsystems/" + nqnA + " -> subsystems/" + nqnA,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeConfigfs(t, tc.revalidateSize)
			n := newNVMet(fs, "127.0.0.1")
			mustExport(t, n, nqnA, 4420, first)
			fs.take()
			mustExport(t, n, nqnA, tc.port, tc.path)
			wantOps(t, "re-export", fs.take(), tc.want)
			if err := n.Unexport(nqnA); err != nil {
				t.Fatal(err)
			}
			if got := fs.snapshot(t); strings.Join(got, " ") != "hosts/ ports/ subsystems/" {
				t.Errorf("tree after Unexport: %q", got)
			}
		})
	}
}

func TestNVMetUnexportRemovesEverythingItMade(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	n := newNVMet(fs, "127.0.0.1")
	before := fs.snapshot(t)
	mustExport(t, n, nqnA, 4420, backingFile(t, "a.img"))
	fs.take()
	if err := n.Unexport(nqnA); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "unexport", fs.take(), unexportOps(nqnA, "4420", true))
	if after := fs.snapshot(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("tree after Unexport %q, want it as before %q", after, before)
	}
	if err := n.Unexport(nqnA); err != nil {
		t.Errorf("second Unexport: %v", err)
	}
	wantOps(t, "second unexport", fs.take(), nil)
}

func TestNVMetDisksShareTheirPort(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	n := newNVMet(fs, "127.0.0.1")
	a, b := backingFile(t, "a.img"), backingFile(t, "b.img")
	mustExport(t, n, nqnA, 4420, a)
	fs.take()
	mustExport(t, n, nqnB, 4420, b)
	wantOps(t, "second disk on the same port", fs.take(), exportOps(nqnB, "4420", b)[5:])
	if err := n.Unexport(nqnA); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "first disk goes, port still serves the second", fs.take(), unexportOps(nqnA, "4420", false))
	if err := n.Unexport(nqnB); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "last disk goes with its port", fs.take(), unexportOps(nqnB, "4420", true))
}

// foreignTarget builds a target some other tool configured: a subsystem
// exported on port 4420 of 127.0.0.1 and a port 4421 on another address.
func foreignTarget(t *testing.T, fs *fakeConfigfs) {
	t.Helper()
	other := newNVMet(fs, "127.0.0.1")
	mustExport(t, other, "nqn.2014-08.org.example:boot-disk", 4420, backingFile(t, "boot.img"))
	elsewhere := newNVMet(fs, "10.0.0.1")
	mustExport(t, elsewhere, "nqn.2014-08.org.example:other", 4421, backingFile(t, "other.img"))
	fs.take()
}

func TestNVMetLeavesForeignTargetsAlone(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	foreignTarget(t, fs)
	before := fs.snapshot(t)
	n := newNVMet(fs, "127.0.0.1")

	if err := n.Unexport("nqn.2014-08.org.example:boot-disk"); err != nil {
		t.Errorf("Unexport of a foreign NQN: %v", err)
	}
	wantOps(t, "unexport of a subsystem this exporter never made", fs.take(), nil)

	if err := n.Export("nqn.2014-08.org.example:boot-disk", 4420, backingFile(t, "mine.img"), nil); err == nil {
		t.Error("Export took over a foreign subsystem with the same NQN")
	}
	wantOps(t, "export clashing with a foreign subsystem", fs.take(), nil)

	if err := n.Export(nqnA, 4421, backingFile(t, "a.img"), nil); err == nil || !strings.Contains(err.Error(), "addr_traddr") {
		t.Errorf("Export onto a foreign port with another address: %v", err)
	}
	wantOps(t, "export onto a foreign port with another address", fs.take(), nil)

	a := backingFile(t, "a.img")
	mustExport(t, n, nqnA, 4420, a)
	wantOps(t, "export reusing a foreign port with the right address", fs.take(), exportOps(nqnA, "4420", a)[5:])
	if err := n.Unexport(nqnA); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "unexport keeps the foreign port", fs.take(), unexportOps(nqnA, "4420", false))
	if after := fs.snapshot(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("foreign target changed:\n before %q\n after  %q", before, after)
	}
}

// A simulator restarted after a crash finds its own subsystems still in
// configfs: it adopts the ones exporting the same file.
func TestNVMetAdoptsItsOwnLeftovers(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	disk := backingFile(t, "a.img")
	mustExport(t, newNVMet(fs, "127.0.0.1"), nqnA, 4420, disk)
	fs.take()

	restarted := newNVMet(fs, "127.0.0.1")
	mustExport(t, restarted, nqnA, 4420, disk)
	wantOps(t, "adopting export", fs.take(), []string{"write subsystems/" + nqnA + "/namespaces/1/revalidate_size=1"})
	if err := restarted.Unexport(nqnA); err != nil {
		t.Fatal(err)
	}
	// The port was made by the earlier run, so it stays (idle, harmless).
	wantOps(t, "unexport after adoption", fs.take(), unexportOps(nqnA, "4420", false))
}

func TestNVMetUndoesAFailedExport(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	n := newNVMet(fs, "127.0.0.1")
	before := fs.snapshot(t)
	missing := filepath.Join(t.TempDir(), "missing.img")
	err := n.Export(nqnA, 4420, missing, nil)
	if err == nil {
		t.Fatal("Export of a missing file succeeded")
	}
	ops := fs.take()
	want := append(exportOps(nqnA, "4420", missing)[:10], // up to buffered_io; enable fails
		"rmdir subsystems/"+nqnA+"/namespaces/1", "rmdir subsystems/"+nqnA, "rmdir ports/4420")
	wantOps(t, "failed export and its undo", ops, want)
	if after := fs.snapshot(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("tree after a failed Export %q, want %q", after, before)
	}
	if err := n.Unexport(nqnA); err != nil || len(fs.take()) != 0 {
		t.Errorf("Unexport after a failed Export: %v", err)
	}
}

func TestNVMetRefusesWhatCannotBeExported(t *testing.T) {
	disk := backingFile(t, "a.img")
	cases := []struct {
		name, addr, nqn string
		port            int
		path            string
	}{
		{"empty NQN", "127.0.0.1", "", 4420, disk},
		{"dot NQN", "127.0.0.1", ".", 4420, disk},
		{"dot-dot NQN", "127.0.0.1", "..", 4420, disk},
		{"NQN with a slash escapes subsystems/", "127.0.0.1", "../ports/1", 4420, disk},
		{"NQN with a space", "127.0.0.1", "nqn.2000-02.com.mikrotik:a b", 4420, disk},
		{"NQN with a newline", "127.0.0.1", "nqn.2000-02.com.mikrotik:a\n", 4420, disk},
		{"NQN over 223 bytes", "127.0.0.1", "nqn.2000-02.com.mikrotik:" + strings.Repeat("x", 199), 4420, disk},
		{"port 0", "127.0.0.1", nqnA, 0, disk},
		{"port above 65535", "127.0.0.1", nqnA, 65536, disk},
		{"relative device path", "127.0.0.1", nqnA, 4420, "pool/a.img"},
		{"unclean device path", "127.0.0.1", nqnA, 4420, "/tmp/../etc/a.img"},
		{"device path the kernel would cut at a newline", "127.0.0.1", nqnA, 4420, "/tmp/a\n.img"},
		{"listen address is a name", "localhost", nqnA, 4420, disk},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeConfigfs(t, true)
			n := newNVMet(fs, tc.addr)
			if err := n.Export(tc.nqn, tc.port, tc.path, nil); err == nil {
				t.Errorf("Export(%q, %d, %q) on %s succeeded", tc.nqn, tc.port, tc.path, tc.addr)
			}
			wantOps(t, "refused export", fs.take(), nil)
		})
	}
	if err := newNVMet(newFakeConfigfs(t, true), "127.0.0.1").Unexport("../ports"); err == nil {
		t.Error("Unexport accepted an NQN that is a path")
	}
}

func TestNVMetListensOnIPv6(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	mustExport(t, newNVMet(fs, "::1"), nqnA, 4420, backingFile(t, "a.img"))
	for attr, want := range map[string]string{"ports/4420/addr_adrfam": "ipv6", "ports/4420/addr_traddr": "::1"} {
		if got, _ := fs.os.Read(attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
}

func TestNVMetAvailable(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	for _, d := range []string{"full/subsystems", "full/ports", "noports/subsystems"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "fileports/subsystems"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fileports/ports"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		full:                             true,
		filepath.Join(dir, "noports"):    false,
		filepath.Join(dir, "fileports"):  false,
		filepath.Join(dir, "missing"):    false,
		filepath.Join(dir, "full/ports"): false,
	}
	for root, want := range cases {
		if got := NVMetAvailable(root); got != want {
			t.Errorf("NVMetAvailable(%s) = %v, want %v", root, got, want)
		}
	}
}

// TestNVMetBehindTheSimulator runs the exporter as the simulator's Exporter
// and drives it with RouterOS commands over SSH.
func TestNVMetBehindTheSimulator(t *testing.T) {
	fs := newFakeConfigfs(t, true)
	s := startSim(t, Config{Exporter: newNVMet(fs, "127.0.0.1")})
	c := dial(t, s)
	const nqn = "nqn.2000-02.com.mikrotik:pvc-nvmet"
	mustRun(t, c, `/disk add type=file file-path=pool/k8s/pvc-nvmet/disk.img file-size=1G slot=pvc-nvmet `+
		`mount-filesystem=no nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=`+nqn)
	host, err := s.HostPath("pool/k8s/pvc-nvmet/disk.img")
	if err != nil {
		t.Fatal(err)
	}
	wantOps(t, "/disk add", fs.take(), exportOps(nqn, "4420", host))

	mustRun(t, c, `/disk set pvc-nvmet file-size=2G`)
	wantOps(t, "/disk set file-size", fs.take(), []string{"write subsystems/" + nqn + "/namespaces/1/revalidate_size=1"})

	mustRun(t, c, `/disk set pvc-nvmet nvme-tcp-export=no`)
	wantOps(t, "/disk set nvme-tcp-export=no", fs.take(), unexportOps(nqn, "4420", true))

	mustRun(t, c, `/disk set pvc-nvmet nvme-tcp-export=yes`)
	fs.take()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "simulator Close", fs.take(), unexportOps(nqn, "4420", true))
}

// FuzzNVMetNQN feeds arbitrary NQNs to Export: either it refuses, or it made
// exactly the subsystem directory named by the NQN, and Unexport leaves the
// tree as it found it. An NQN is a path element in configfs, so anything
// else would let a name reach outside subsystems/.
func FuzzNVMetNQN(f *testing.F) {
	for _, seed := range []string{nqnA, "pvc-plain-slot", "..", "a/../../b", "nqn.x:a b", strings.Repeat("n", 224)} {
		f.Add(seed)
	}
	disk := backingFile(f, "disk.img")
	f.Fuzz(func(t *testing.T, nqn string) {
		fs := newFakeConfigfs(t, true)
		before := fs.snapshot(t)
		n := newNVMet(fs, "127.0.0.1")
		if err := n.Export(nqn, 4420, disk, nil); err != nil {
			if after := fs.snapshot(t); strings.Join(after, "\x00") != strings.Join(before, "\x00") {
				t.Fatalf("refused Export of %q changed the tree: %q", nqn, after)
			}
			return
		}
		if filepath.Base(nqn) != nqn || filepath.Dir(filepath.Join("subsystems", nqn)) != "subsystems" {
			t.Fatalf("Export accepted %q, which is not a single path element", nqn)
		}
		if fi, err := os.Stat(filepath.Join(fs.root(), "subsystems", nqn, "namespaces", "1")); err != nil || !fi.IsDir() {
			t.Fatalf("Export of %q made no namespace: %v", nqn, err)
		}
		if err := n.Unexport(nqn); err != nil {
			t.Fatal(err)
		}
		if after := fs.snapshot(t); strings.Join(after, "\x00") != strings.Join(before, "\x00") {
			t.Fatalf("Unexport of %q left %q", nqn, after)
		}
	})
}
