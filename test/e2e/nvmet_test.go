//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/testenv"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// TestNVMetExporter proves the simulator's exporter against the real kernel target, without the driver:
// a file exported by rdssim.NVMet is a disk a plain `nvme connect` reaches, bytes cross in both
// directions, a grown file reaches the connected host by itself (revalidate_size sends the
// namespace-changed event), a host's rescan also sees a growth the exporter was not told about, and
// Unexport leaves nothing in configfs.
func TestNVMetExporter(t *testing.T) {
	if skipReason != "" {
		testenv.Missing(t, skipReason)
	}
	const (
		nqn  = "nqn.2026-01.io.rds-csi.e2e:nvmet-exporter"
		port = 4430
	)
	file := filepath.Join(*workDir, "nvmet-exporter.img")
	if err := os.MkdirAll(*workDir, 0o755); err != nil {
		t.Fatal(err)
	}
	resize := func(size int64) {
		t.Helper()
		if err := os.Truncate(file, size); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(file)
	resize(256 * mib)

	exp := rdssim.NewNVMet(nvmetRoot, dataAddress)
	if err := exp.Export(nqn, port, file, nil); err != nil {
		t.Fatalf("Export: %v", err)
	}
	unexported := false
	defer func() {
		if !unexported {
			_ = exp.Unexport(nqn)
		}
	}()
	nvmeCLI(t, "connect", "-t", "tcp", "-a", dataAddress, "-s", "4430", "-n", nqn)
	defer func() {
		if len(controllersOf(t, nqn)) > 0 {
			_, _ = exec.Command("nvme", "disconnect", "-n", nqn).CombinedOutput()
		}
	}()
	dev := waitForDevice(t, nqn, 20*time.Second)
	if got := deviceBytes(t, dev); got != 256*mib {
		t.Fatalf("%s is %d bytes, the exported file %d", dev, got, 256*mib)
	}

	// Host to target.
	toTarget := payload(4, 2<<20)
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(toTarget, 1*mib); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readAt(t, file, 1*mib, len(toTarget)); !bytes.Equal(got, toTarget) {
		t.Fatalf("exported file holds sum %s, the host wrote %s", sum(got), sum(toTarget))
	}
	// Target to host.
	toHost := payload(5, 2<<20)
	g, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt(toHost, 100*mib); err != nil {
		t.Fatal(err)
	}
	g.Close()
	dropCaches(t)
	if got := readAt(t, dev, 100*mib, len(toHost)); !bytes.Equal(got, toHost) {
		t.Fatalf("host reads sum %s, the target's file holds %s", sum(got), sum(toHost))
	}

	// A resize the exporter is told about (what the simulator does on /disk set file-size): the host
	// sees it without asking.
	resize(384 * mib)
	start := time.Now()
	if err := exp.Export(nqn, port, file, nil); err != nil {
		t.Fatalf("re-Export after growing: %v", err)
	}
	waitForSize(t, dev, 384*mib, 15*time.Second)
	t.Logf("host saw 384 MiB %.2fs after re-Export, with no rescan of its own", time.Since(start).Seconds())

	// A resize nobody announced: the target re-reads the size when the host identifies the namespace.
	resize(512 * mib)
	ctrls := controllersOf(t, nqn)
	if len(ctrls) != 1 {
		t.Fatalf("want one controller for %s, have %v", nqn, ctrls)
	}
	nvmeCLI(t, "ns-rescan", "/dev/"+ctrls[0].name)
	waitForSize(t, dev, 512*mib, 15*time.Second)

	if err := exp.Unexport(nqn); err != nil {
		t.Fatalf("Unexport: %v", err)
	}
	unexported = true
	for _, p := range []string{"subsystems/" + nqn, "ports/4430"} {
		if _, err := os.Lstat(filepath.Join(nvmetRoot, p)); !os.IsNotExist(err) {
			t.Errorf("after Unexport %s is still in configfs (%v)", p, err)
		}
	}
	// The host lost its target and keeps trying until told to stop.
	state := waitForState(t, nqn, 15*time.Second, func(s string) bool { return s != "live" })
	t.Logf("after Unexport the host's controller is %q", state)
	f.Close()
	nvmeCLI(t, "disconnect", "-n", nqn)
	waitForNoController(t, nqn, 15*time.Second)
}

func nvmeCLI(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("nvme", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nvme %v: %v\n%s", args, err, out)
	}
}

func waitForSize(t *testing.T, dev string, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := deviceBytes(t, dev)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %d bytes %s later, want %d", dev, got, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
