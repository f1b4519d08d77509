// Package doctor checks an RDS against every RouterOS behaviour the driver relies on (docs/routeros.md),
// on the box itself: `rds-csi doctor` runs all checks, including ones that create and remove scratch
// items under a recognisable unique prefix; the controller runs the read-only ones at start-up
// (StartupCheck) and adapts to what it finds. Each check prints PASS, WARN, FAIL or SKIP with the raw
// RouterOS output it judged, so a user can send the report and the project learns what real boxes do.
package doctor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Execer runs one RouterOS script as one SSH exec and returns its raw output. *rds.Client is one.
type Execer interface {
	Exec(ctx context.Context, script string) (rds.RawOutput, error)
}

// ScratchPrefix starts the name of everything doctor creates on the RDS; each run adds a random suffix,
// and doctor touches nothing whose name does not carry its own run's prefix.
const ScratchPrefix = "rds-csi-doctor-"

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "PASS"
	// Warn: a check the driver does not need failed; the driver adapts (the line says how).
	Warn Status = "WARN"
	Fail Status = "FAIL"
	// Skip: not run, because a check it depends on failed, the pool does not need it, or the run was
	// interrupted.
	Skip Status = "SKIP"
)

// Exchange is one command and what the RDS answered.
type Exchange struct {
	Label  string
	Script string
	Out    rds.RawOutput
	Err    error // the RDS could not be asked (or the run was interrupted)
}

// Check is the result of one check.
type Check struct {
	Name   string
	Status Status
	// Required: the driver cannot work without it, so a FAIL makes doctor exit non-zero and the
	// controller refuse to start.
	Required  bool
	Summary   string
	Notes     []string // details and adaptations, one line each
	Hint      string   // what to do about a FAIL or WARN
	Exchanges []Exchange
}

// Options configure a doctor run.
type Options struct {
	// Location is the base path the controller would use (--base-path).
	Location volume.Location
	// ReadOnly runs only the checks that change nothing (those the controller runs at start-up).
	ReadOnly bool
	// HostKeyUnverified: the client accepts any host key (--rds-insecure-skip-host-key-check).
	HostKeyUnverified bool
	// CaptureDir, when set, receives every command and its raw output verbatim.
	CaptureDir string
	// Out receives the report as checks finish; nil discards it.
	Out io.Writer
	// Address and User name the RDS in the report.
	Address, User string
	// Connector, when set, is an NVMe/TCP initiator the host-access check tries the export with, at
	// NVMeAddress (the RDS's data address).
	Connector   Connector
	NVMeAddress string
}

// Report is the outcome of a run.
type Report struct {
	Checks     []Check
	Adaptation Adaptation
	// Interrupted: the context ended before every check ran (cleanup still ran).
	Interrupted bool
}

// Failed lists the required checks that failed.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Required && c.Status == Fail {
			out = append(out, c.Name)
		}
	}
	return out
}

// OK tells whether every required capability is there and the run was not interrupted.
func (r *Report) OK() bool { return len(r.Failed()) == 0 && !r.Interrupted }

// runner carries one run's state.
type runner struct {
	ex       Execer
	opts     Options
	out      io.Writer
	capture  *capture
	id       string // the run's scratch prefix: ScratchPrefix + random hex
	report   Report
	cleanups []*cleanup
}

func newRunner(ex Execer, opts Options) (*runner, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("making a scratch name: %w", err)
	}
	r := &runner{ex: ex, opts: opts, out: opts.Out, id: ScratchPrefix + hex.EncodeToString(b[:])}
	if r.out == nil {
		r.out = io.Discard
	}
	if opts.CaptureDir != "" {
		c, err := newCapture(opts.CaptureDir)
		if err != nil {
			return nil, err
		}
		r.capture = c
	}
	return r, nil
}

// exec runs one command, records it in the check and the capture, and returns it.
func (r *runner) exec(ctx context.Context, c *Check, label, script string) Exchange {
	x := Exchange{Label: c.Name + "-" + label, Script: script}
	x.Out, x.Err = r.ex.Exec(ctx, script)
	if r.capture != nil {
		r.capture.write(x)
	}
	c.Exchanges = append(c.Exchanges, x)
	return x
}

// done finishes a check that ran under ctx: a check that failed because the run was interrupted is
// reported as skipped, not as a capability the RDS lacks.
func (r *runner) done(ctx context.Context, c Check) Check {
	if ctx.Err() != nil && (c.Status == Fail || c.Status == Warn) {
		r.report.Interrupted = true
		c.Status, c.Summary = Skip, "interrupted ("+c.Summary+")"
	}
	return r.finish(c)
}

// finish prints a check and records it.
func (r *runner) finish(c Check) Check {
	printCheck(r.out, c)
	r.report.Checks = append(r.report.Checks, c)
	return c
}

func printCheck(w io.Writer, c Check) {
	req := ""
	if !c.Required && c.Status == Fail {
		req = " (optional)"
	}
	fmt.Fprintf(w, "%s %s%s: %s\n", c.Status, c.Name, req, c.Summary)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "     - %s\n", n)
	}
	if c.Hint != "" && c.Status != Pass {
		fmt.Fprintf(w, "     what to do: %s\n", c.Hint)
	}
	for _, x := range c.Exchanges {
		fmt.Fprintf(w, "     > %s\n", strings.ReplaceAll(strings.TrimRight(x.Script, "\n"), "\n", "\n     > "))
		if x.Err != nil {
			fmt.Fprintf(w, "     ! %v\n", x.Err)
			continue
		}
		for _, l := range outputLines(x.Out.Stdout) {
			fmt.Fprintf(w, "     | %s\n", l)
		}
		for _, l := range outputLines(x.Out.Stderr) {
			fmt.Fprintf(w, "     2| %s\n", l)
		}
		fmt.Fprintf(w, "     (exit status %s)\n", exitText(x.Out.ExitStatus))
	}
}

func outputLines(s string) []string {
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func exitText(status int) string {
	if status < 0 {
		return "none sent"
	}
	return fmt.Sprint(status)
}

// failed tells whether a command that should print nothing failed, and why.
func commandFailed(x Exchange) (bool, string) {
	switch {
	case x.Err != nil:
		return true, x.Err.Error()
	case strings.TrimSpace(x.Out.Stdout+x.Out.Stderr) != "":
		return true, firstLine(x.Out.Stdout + x.Out.Stderr)
	case x.Out.ExitStatus > 0:
		return true, fmt.Sprintf("no output, exit status %d", x.Out.ExitStatus)
	}
	return false, ""
}

func firstLine(s string) string {
	for _, l := range outputLines(s) {
		if t := strings.TrimSpace(l); t != "" {
			return t
		}
	}
	return ""
}

// Run runs the checks against ex and prints the report to opts.Out. Whatever it created it removes
// before returning, also when ctx ends early (the removal then runs on a fresh context).
func Run(ctx context.Context, ex Execer, opts Options) (*Report, error) {
	r, err := newRunner(ex, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := r.capture.close(); err != nil {
			fmt.Fprintf(r.out, "capture: %v\n", err)
		}
	}()
	fmt.Fprintf(r.out, "rds-csi doctor: %s as %s, base path %s, scratch names %s*\n", opts.Address, opts.User,
		opts.Location, r.id)
	defer func() {
		r.runCleanup(ctx)
		printAdaptation(r.out, &r.report)
	}()
	r.readOnlyChecks(ctx)
	if opts.ReadOnly {
		return &r.report, nil
	}
	r.scratchChecks(ctx)
	return &r.report, nil
}

// interrupted records that ctx ended and tells whether it did.
func (r *runner) interrupted(ctx context.Context) bool {
	if ctx.Err() != nil {
		r.report.Interrupted = true
		return true
	}
	return false
}

func (r *runner) skip(name, why string) {
	r.finish(Check{Name: name, Status: Skip, Summary: why})
}
