// Package sanity runs the upstream CSI conformance suite (csi-test/v5 csi-sanity) against the whole
// driver: real gRPC on a unix socket, real SSH to the RDS simulator, real sparse files behind it, and for
// the node service real loop devices, mkfs, mount and bind mounts.
//
// Ginkgo runs one suite per process, so each test below that calls sanity.Test is the only one doing so in
// its process: TestSanity as root, TestSanityController otherwise. TestSanityBinary runs the csi-sanity
// command as a separate process against the rds-csi binary.
package sanity

import (
	"context"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/rds-csi/rds-csi/internal/app"
	"github.com/rds-csi/rds-csi/internal/testenv"
	"github.com/rds-csi/rds-csi/pkg/driver"
)

// testVolumeSize keeps mkfs and the sparse files small; the simulator's minimum volume is 1 GiB.
const testVolumeSize = 1 << 30

// needRoot says what needs root wherever loop devices and mounts are needed.
const needRoot = "csi-sanity's node specs (loop devices and mount)"

// startDriver runs the driver in-process with an embedded simulator in dir and returns its socket path.
func startDriver(t *testing.T, mode driver.Mode, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "csi.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Config{
			Mode: mode, Endpoint: "unix://" + sock, NodeID: "sanity-node", Version: "sanity",
			RDSSimulatorDir: filepath.Join(dir, "rds"), BasePath: "pool/k8s",
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("driver stopped with: %v", err)
		}
	})
	waitForSocket(t, sock, done)
	return sock
}

// waitForSocket waits until the driver listens on sock, or fails when exited reports first.
func waitForSocket(t *testing.T, sock string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("driver exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("driver did not listen on %s within 30s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sanityConfig(sock, base string) sanity.TestConfig {
	cfg := sanity.NewTestConfig()
	cfg.Address = sock
	cfg.TargetPath = filepath.Join(base, "target")
	cfg.StagingPath = filepath.Join(base, "staging")
	cfg.TestVolumeSize = testVolumeSize
	cfg.IdempotentCount = 2
	return cfg
}

// TestSanity runs the whole suite, Identity, Controller and Node, against the driver in all mode with the
// embedded simulator, whose volumes the node attaches as loop devices.
func TestSanity(t *testing.T) {
	testenv.RequireRoot(t, needRoot)
	requireNodeTools(t)
	dir := t.TempDir()
	cleanupNodeState(t, dir)
	sock := startDriver(t, driver.ModeAll, dir)
	sanity.Test(t, sanityConfig(sock, dir))
}

// TestSanityController keeps the controller specs running where the node specs cannot: without root. As
// root TestSanity runs them, in this same process, where Ginkgo allows no second suite. The driver still
// runs in all mode: the suite's clean-up unpublishes and unstages every volume it made, and those calls
// need no root when nothing was staged.
func TestSanityController(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root TestSanity runs the controller specs with the node specs, and Ginkgo runs one suite per process")
	}
	dir := t.TempDir()
	sock := startDriver(t, driver.ModeAll, dir)
	if err := flag.Set("ginkgo.skip", "Node Service"); err != nil {
		t.Fatal(err)
	}
	sanity.Test(t, sanityConfig(sock, dir))
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(m.Run())
}

// requireNodeTools stops the test (testenv.Missing) when loop devices or a tool the node service runs are
// missing.
func requireNodeTools(t *testing.T) {
	t.Helper()
	testenv.RequireLoopDevices(t, needRoot)
	testenv.RequireTools(t, "apt-get install -y util-linux e2fsprogs", "losetup", "blkid", "mount", "umount", "mkfs.ext4", "resize2fs")
}

// cleanupNodeState checks, when the test ends, that the driver left no mount under dir and no loop device
// on a file under dir (unpublish and unstage must have removed them), and removes any it finds so that a
// failed run does not pollute the machine. It must be registered before the driver starts, so that it runs
// after the driver stopped.
func cleanupNodeState(t *testing.T, dir string) {
	t.Helper()
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	t.Cleanup(func() {
		for _, m := range mountsUnder(t, dir) {
			t.Errorf("left mounted: %s", m)
			if out, err := exec.Command("umount", m).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", m, err, out)
			}
		}
		for _, dev := range loopsUnder(dir) {
			t.Errorf("left attached: %s", dev)
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		}
	})
}

// mountsUnder lists the mount points below dir, deepest (and most recent) first.
func mountsUnder(t *testing.T, dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("reading the mount table: %v", err)
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.Reverse(out)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// loopsUnder lists the loop devices whose backing file is below dir.
func loopsUnder(dir string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), dir+"/") {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return out
}
