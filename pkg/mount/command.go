package mount

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"
)

// CommandError is a failed external command with its combined output.
type CommandError struct {
	Argv   []string
	Output string
	Err    error
}

func (e *CommandError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Argv, " "), e.Err, out)
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitStatus returns the command's exit status, or -1 if it did not exit
// normally (not found, killed at the timeout).
func (e *CommandError) ExitStatus() int {
	var ee utilexec.ExitError
	if errors.As(e.Err, &ee) && ee.Exited() {
		return ee.ExitStatus()
	}
	return -1
}

// commandRunner runs each command under a timeout derived from the
// caller's context, so a hung mount or mkfs cannot wedge an RPC.
type commandRunner struct {
	exec utilexec.Interface
}

func (r commandRunner) do(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	out, err := r.exec.CommandContext(ctx, name, args...).CombinedOutput()
	klog.V(4).InfoS("Ran command", "command", name, "args", args, "duration", time.Since(start), "err", err)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return string(out), &CommandError{Argv: append([]string{name}, args...), Output: string(out), Err: err}
	}
	return string(out), nil
}
