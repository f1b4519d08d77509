package procenv

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// TestOutputCollectsAProcessWhileItRuns gives Output to a real process as both stdout and stderr (two
// copying goroutines, as exec.Cmd uses for a non-file writer) while the test reads it concurrently; run
// with -race, a missing lock fails.
func TestOutputCollectsAProcessWhileItRuns(t *testing.T) {
	testenv.RequireTools(t, "apt-get install -y dash", "sh")
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	const lines = 200
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo out$i; echo err$i >&2; i=$((i+1)); done`, lines)
	var out Output
	cmd := exec.Command(sh, "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // reads as a test's wait for a log line does, while the process writes
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				_ = out.String()
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"out0\n", "err0\n", fmt.Sprintf("out%d\n", lines-1), fmt.Sprintf("err%d\n", lines-1)} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(got, "\n"); n != 2*lines {
		t.Errorf("output has %d lines, want %d", n, 2*lines)
	}
}
