package sanity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// TestSanityBinary runs the upstream csi-sanity command against the rds-csi binary as users run it
// (`rds-csi --mode=all --rds-simulator DIR`), each in a process of its own: what ships must pass, not only
// the package linked into this test. RDS_CSI_BINARY and CSI_SANITY_BINARY name prebuilt binaries;
// otherwise both are built from the module's source.
func TestSanityBinary(t *testing.T) {
	testenv.RequireRoot(t, needRoot)
	requireNodeTools(t)
	driverBin := binary(t, "RDS_CSI_BINARY", "github.com/rds-csi/rds-csi/cmd/rds-csi")
	sanityBin := binary(t, "CSI_SANITY_BINARY", "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity")

	dir := t.TempDir()
	cleanupNodeState(t, dir)
	sock := filepath.Join(dir, "csi.sock")
	// The node reports a host NQN, so volumes with hostAccessControl can be published to it.
	hostNQNFile := filepath.Join(dir, "hostnqn")
	if err := os.WriteFile(hostNQNFile, []byte("nqn.2014-08.org.nvmexpress:uuid:5a0e0000-0000-4000-8000-000000000001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(dir, "host-access.yaml")
	if err := os.WriteFile(params, []byte("hostAccessControl: \"true\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exited := startProcess(t, filepath.Join(dir, "rds-csi.log"), driverBin, "--mode=all",
		"--rds-simulator", filepath.Join(dir, "rds"), "--endpoint", "unix://"+sock, "--node-id", "sanity-node",
		"--base-path", "pool/k8s", "--host-nqn-file", hostNQNFile)
	waitForSocket(t, sock, exited)

	// The in-process suite covers filesystem volumes; here both access types run, raw block included, and
	// filesystem volumes of a StorageClass with hostAccessControl.
	for _, variant := range []string{"mount", "block", "mount-host-access"} {
		accessType, extra := variant, []string(nil)
		if variant == "mount-host-access" {
			accessType, extra = "mount", []string{"-csi.testvolumeparameters", params}
		}
		t.Run(variant, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			base := filepath.Join(dir, variant)
			if err := os.Mkdir(base, 0o750); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, sanityBin, append([]string{
				"-csi.endpoint", sock,
				"-csi.mountdir", filepath.Join(base, "target"),
				"-csi.stagingdir", filepath.Join(base, "staging"),
				"-csi.testvolumesize", strconv.Itoa(testVolumeSize),
				"-csi.testvolumeaccesstype", accessType,
				"-ginkgo.no-color"}, extra...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("csi-sanity (%s volumes) against %s failed: %v\n%s", accessType, driverBin, err, out)
			}
			t.Logf("csi-sanity (%s volumes) passed against %s:\n%s", accessType, driverBin, lastLines(out, 3))
		})
	}
}

// binary returns the binary named by env, or builds pkg into the test's directory. Building from source
// (rather than taking bin/rds-csi as it is) makes sure the binary tested is the code under test.
func binary(t *testing.T, env, pkg string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return abs
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("%s is not set and no go tool to build %s: %v", env, pkg, err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	build := exec.Command(goTool, "build", "-o", out, pkg)
	// Static, as `make build` links the shipped binary.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// startProcess starts a long-running command with its output in logFile, and stops it (SIGTERM, then
// SIGKILL after 20 s) when the test ends; a non-zero exit then fails the test. The returned channel
// reports an exit that happens before the test ends.
func startProcess(t *testing.T, logFile, name string, args ...string) <-chan error {
	t.Helper()
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
		exited <- waitErr
	}()
	t.Cleanup(func() {
		defer log.Close()
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("%s did not stop within 20s of SIGTERM", name)
			}
		}
		if waitErr != nil || t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s exited with %v; its log ends:\n%s", filepath.Base(name), waitErr, lastLines(b, 60))
		}
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) && ee.ExitCode() != 0 {
			t.Errorf("%s exited with status %d", name, ee.ExitCode())
		}
	})
	return exited
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = append([][]byte{[]byte(fmt.Sprintf("[%d lines before]", len(lines)-n))}, lines[len(lines)-n:]...)
	}
	return string(bytes.Join(lines, []byte("\n")))
}
