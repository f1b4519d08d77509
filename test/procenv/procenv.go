// Package procenv helps tests that run the rds-csi binary as a process of its own: it builds the
// binary from this checkout once per test binary, so that what runs is the source under test and not
// a stale bin/, and collects the process's output while it runs.
package procenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

// DriverBinary returns the rds-csi binary built from this checkout, building it on first use; it
// fails tb when the build fails. The test binary's TestMain removes it with RemoveBuilt.
func DriverBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rds-csi-test-bin-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "rds-csi")
		// The package path rather than ./cmd/rds-csi: go test runs in the package's directory.
		cmd := exec.Command("go", "build", "-o", binary, "github.com/rds-csi/rds-csi/cmd/rds-csi")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/rds-csi: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binary
}

// RemoveBuilt removes the binary DriverBinary built, if any; TestMain calls it after m.Run.
func RemoveBuilt() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Output is a process's combined stdout and stderr, readable by the test while the process's output
// goroutines write it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
