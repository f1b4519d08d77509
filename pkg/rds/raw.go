package rds

import (
	"context"
	"fmt"
	"time"
)

// RawOutput is what one exec printed and how it ended, uninterpreted.
type RawOutput struct {
	Stdout, Stderr string
	// ExitStatus is the exec's exit status, or -1 when the RDS closed the session without one.
	ExitStatus int
}

// Exec runs script as one exec and returns what RouterOS printed, without judging it: no markers, no
// error classification, no retry once the script may have been sent. It is for diagnostics (rds-csi
// doctor) that must see the box's own answer; the driver's operations go through Run. The error is
// only about reaching the RDS (ErrUnavailable, ErrPermission, a *HostKeyError inside).
func (c *Client) Exec(ctx context.Context, script string) (RawOutput, error) {
	if script == "" {
		return RawOutput{}, fmt.Errorf("an empty script: %w", ErrInvalid)
	}
	start := time.Now()
	res, err := c.exec(ctx, execRequest{script: script})
	c.observe("raw", start, err)
	if err != nil {
		return RawOutput{}, err
	}
	return RawOutput{Stdout: res.stdout, Stderr: res.stderr, ExitStatus: res.exit}, nil
}

// SendOneCommandPerExec makes every later Run send each command in an exec of its own, as the client does
// by itself once a script showed that the RDS went on after a failed command. The controller's start-up
// check calls it when its own probe shows that, before any mutation is sent.
func (c *Client) SendOneCommandPerExec() { c.goesOn.Store(true) }

// ScriptsStop tells whether Run sends scripts that stop at a failed command: false with one command per
// exec (configured, or learned from the RDS), where a block of commands could run past a failure.
func (c *Client) ScriptsStop() bool { return !c.cfg.OneCommandPerExec && !c.goesOn.Load() }
