package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/test/procenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	procenv.RemoveBuilt()
	os.Exit(code)
}

func startSim(t *testing.T, cfg rdssim.Config) *rdssim.Simulator {
	t.Helper()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	sim, err := rdssim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	dir, err := sim.HostPath("pool/k8s") // the base directory, as README's "Prepare the RDS" makes it
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return sim
}

func rdsArgs(sim *rdssim.Simulator) []string {
	return []string{"--rds-address", sim.Addr(), "--rds-user", "admin", "--rds-key-file", sim.ClientKeyFile(),
		"--rds-host-key", sim.KnownHostsFile(), "--base-path", "pool/k8s"}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("running the binary: %v", err)
	return -1
}

func scratchLeft(t *testing.T, sim *rdssim.Simulator) []string {
	t.Helper()
	inv, err := sim.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, n := range append(append(inv.Disks, inv.Subvolumes...), inv.Files...) {
		if strings.Contains(n, "rds-csi-doctor-") {
			left = append(left, n)
		}
	}
	return left
}

// TestDoctorSubcommand runs `rds-csi doctor` as a process: it passes on a capable box and exits 1,
// naming the check, on one without rose-storage.
func TestDoctorSubcommand(t *testing.T) {
	bin := procenv.DriverBinary(t)
	good := startSim(t, rdssim.Config{})
	out, err := exec.Command(bin, append([]string{"doctor"}, rdsArgs(good)...)...).CombinedOutput()
	if code := exitCode(t, err); code != 0 || !strings.Contains(string(out), "result: every required check passed") {
		t.Errorf("doctor on a capable box: exit %d\n%s", code, out)
	}
	bad := startSim(t, rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageMissing}})
	out, err = exec.Command(bin, append([]string{"doctor"}, rdsArgs(bad)...)...).CombinedOutput()
	if code := exitCode(t, err); code != 1 || !strings.Contains(string(out), "\nFAIL rose-storage: the rose-storage package is not installed") {
		t.Errorf("doctor on a box without rose-storage: exit %d\n%s", code, out)
	}
	if left := append(scratchLeft(t, good), scratchLeft(t, bad)...); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestDoctorInterruptedBySIGINT interrupts a doctor process in the middle of its scratch checks: it
// removes what it made before it exits, and exits non-zero.
func TestDoctorInterruptedBySIGINT(t *testing.T) {
	bin := procenv.DriverBinary(t)
	sim := startSim(t, rdssim.Config{Latency: 20 * time.Millisecond})
	var out procenv.Output
	cmd := exec.Command(bin, append([]string{"doctor"}, rdsArgs(sim)...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the scratch subvolume exists, then interrupt.
	deadline := time.Now().Add(30 * time.Second)
	for {
		inv, err := sim.Inventory()
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.Subvolumes) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no scratch subvolume appeared:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(t, err); code != 1 {
			t.Errorf("exit %d after SIGINT, want 1\n%s", code, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("doctor did not exit after SIGINT:\n%s", out.String())
	}
	text := out.String()
	for _, want := range []string{"interrupted; removing the scratch items", "PASS cleanup:", "result: INTERRUPTED"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if left := scratchLeft(t, sim); len(left) > 0 {
		t.Errorf("left behind after SIGINT: %v\n%s", left, text)
	}
}

// TestControllerRefusesToStartWithoutACapability: the controller runs the read-only checks at start-up
// and stops, naming the failed check, when the RDS lacks what the driver needs.
func TestControllerRefusesToStartWithoutACapability(t *testing.T) {
	bin := procenv.DriverBinary(t)
	sim := startSim(t, rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageMissing}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--mode", "controller", "--endpoint", "unix://" + filepath.Join(t.TempDir(), "csi.sock")}, rdsArgs(sim)...)
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if code := exitCode(t, err); code == 0 || !strings.Contains(string(out), "start-up check rose-storage failed") {
		t.Errorf("the controller started on a box without rose-storage: exit %d\n%s", code, out)
	}
}

// TestControllerAdaptsAtStartUp: on an RDS whose scripts go on after a failing command, the controller
// starts, says it falls back to one command per exec, and serves.
func TestControllerAdaptsAtStartUp(t *testing.T) {
	bin := procenv.DriverBinary(t)
	sim := startSim(t, rdssim.Config{OnError: rdssim.OnErrorContinue})
	sock := filepath.Join(t.TempDir(), "csi.sock")
	var out procenv.Output
	cmd := exec.Command(bin, append([]string{"--mode", "controller", "--endpoint", "unix://" + sock}, rdsArgs(sim)...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(sock)
		if err == nil && strings.Contains(out.String(), "script mode: falls back to one command per exec") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller did not serve with the fallback (socket: %v):\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
