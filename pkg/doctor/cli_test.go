package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

func simArgs(sim *rdssim.Simulator, extra ...string) []string {
	return append([]string{"--rds-address", sim.Addr(), "--rds-user", "admin", "--rds-key-file", sim.ClientKeyFile(),
		"--rds-host-key", sim.KnownHostsFile(), "--base-path", "pool/k8s"}, extra...)
}

// TestMainExitCode: `rds-csi doctor` exits 0 on a capable box, 1 when a required check fails, 2 for
// bad flags, and writes --capture.
func TestMainExitCode(t *testing.T) {
	good := prepared(t, rdssim.Config{})
	bad := prepared(t, rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageMissing}})
	capture := filepath.Join(t.TempDir(), "cap")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"passes", simArgs(good, "--capture", capture), 0, "result: every required check passed", ""},
		{"read-only", simArgs(good, "--read-only"), 0, "PASS script:", ""},
		{"lacks rose-storage", simArgs(bad), 1, "\nFAIL rose-storage: the rose-storage package is not installed", ""},
		{"no host key", []string{"--rds-address", good.Addr(), "--rds-key-file", good.ClientKeyFile()}, 2, "", "--rds-host-key is required"},
		{"no address", nil, 2, "", "--rds-address is required"},
		{"bad base path", simArgs(good, "--base-path", "pool"), 2, "", "--base-path"},
		{"unknown flag", []string{"--frobnicate"}, 2, "", "flag provided but not defined"},
		{"stray argument", simArgs(good, "now"), 2, "", `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
		})
	}
	entries, err := os.ReadDir(capture)
	if err != nil || len(entries) < 40 {
		t.Errorf("--capture wrote %d files (%v)", len(entries), err)
	}
	assertNothingLeft(t, good)
}
