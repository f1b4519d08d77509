// Package hostcmd runs the node's command-line tools (nvme-cli, losetup, mount, mkfs, blkid,
// resize2fs, ...) the one way the driver runs them: under a timeout derived from the caller's
// context, logged, and failing with an *Error that keeps the tool's own words and exit status.
package hostcmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"
)

// Error is a failed host command with its combined output, which usually says why
// (nvme-cli: "Failed to write to /dev/nvme-fabrics: ...", mount: "wrong fs type, ...").
type Error struct {
	Argv   []string
	Output string
	Err    error
}

func (e *Error) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Argv, " "), e.Err, out)
}

func (e *Error) Unwrap() error { return e.Err }

// ExitStatus returns the command's exit status, or -1 if it did not exit normally (not found,
// killed at the timeout). Callers that give exit codes a meaning (blkid's 2 = nothing found)
// need the difference: a killed probe proves nothing.
func (e *Error) ExitStatus() int {
	var ee utilexec.ExitError
	if errors.As(e.Err, &ee) && ee.Exited() {
		return ee.ExitStatus()
	}
	return -1
}

// Runner runs each command under a timeout derived from the caller's context, so that a hung
// tool (an nvme connect to an unreachable address, a mount on a dead device) cannot wedge an
// RPC. The zero Timeout means no bound beyond the caller's context.
type Runner struct {
	// Exec runs the commands; tests substitute a recorder.
	Exec utilexec.Interface
	// Timeout bounds each Run.
	Timeout time.Duration
}

// Run runs name with args under r.Timeout and returns its combined output, also on failure.
func (r Runner) Run(ctx context.Context, name string, args ...string) (string, error) {
	return r.RunTimeout(ctx, r.Timeout, name, args...)
}

// RunTimeout is Run with a timeout of its own, for the commands whose time scales with the
// volume (mkfs, filesystem growth).
func (r Runner) RunTimeout(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	out, err := r.Exec.CommandContext(ctx, name, args...).CombinedOutput()
	klog.V(4).InfoS("Ran command", "command", name, "args", args, "duration", time.Since(start), "err", err)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The timeout or the caller's cancel is the cause, and errors.Is finds it; what exec
			// saw ("signal: killed") is only its symptom, kept as text.
			err = fmt.Errorf("%w (%s)", ctxErr, err.Error())
		}
		return string(out), &Error{Argv: append([]string{name}, args...), Output: string(out), Err: err}
	}
	return string(out), nil
}
