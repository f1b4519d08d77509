package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// startupTimeout bounds the start-up checks: five reads.
const startupTimeout = 30 * time.Second

// StartupCheck runs the read-only checks (ssh, routeros, rose-storage, pool, script) before the
// controller serves, and returns how the driver must adapt. It fails, naming the check, when a required
// capability is missing: a host key that does not match, a refused login, RouterOS older than 7, no
// active rose-storage package, or no usable pool at the default base path. An RDS that does not answer
// is not an error (it may be rebooting): the configured mode is kept, Adaptation.Checked is false, and
// Probe reports not ready until it answers.
func StartupCheck(ctx context.Context, ex Execer, loc volume.Location) (Adaptation, error) {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	r, err := newRunner(ex, Options{Location: loc})
	if err != nil {
		return Adaptation{}, err
	}
	r.readOnlyChecks(ctx)
	rep := &r.report
	for _, c := range rep.Checks {
		logCheck(c)
	}
	if len(rep.Checks) > 0 && rep.Checks[0].Status == Fail {
		ssh := rep.Checks[0]
		var x Exchange
		if len(ssh.Exchanges) > 0 {
			x = ssh.Exchanges[0]
		}
		var hk *rds.HostKeyError
		switch {
		case errors.As(x.Err, &hk), errors.Is(x.Err, rds.ErrPermission):
			return rep.Adaptation, fmt.Errorf("start-up check ssh failed: %s (%s): %w", ssh.Summary, ssh.Hint, x.Err)
		case x.Err != nil:
			klog.ErrorS(x.Err, "the RDS does not answer yet; serving anyway, Probe reports not ready until it does")
			return Adaptation{}, nil
		}
	}
	if err := lostDuringChecks(rep); err != nil {
		// A check that failed because the RDS stopped answering (a reboot, a dropped connection) proves
		// nothing about a capability: serve with the configured mode, as when it does not answer at all.
		klog.ErrorS(err, "the RDS stopped answering during the start-up checks; serving with the configured mode, Probe reports not ready until it answers")
		return Adaptation{}, nil
	}
	if failed := rep.Failed(); len(failed) > 0 {
		var why []string
		for _, c := range rep.Checks {
			if c.Required && c.Status == Fail {
				why = append(why, c.Name+": "+c.Summary)
			}
		}
		return rep.Adaptation, fmt.Errorf("start-up check %s failed (run `rds-csi doctor` for details): %s",
			strings.Join(failed, ", "), strings.Join(why, "; "))
	}
	if ctx.Err() != nil {
		klog.ErrorS(ctx.Err(), "the start-up checks did not finish; serving with the configured mode")
		return Adaptation{}, nil
	}
	for _, l := range rep.Adaptation.lines() {
		klog.InfoS("RDS adaptation", "decision", l)
	}
	return rep.Adaptation, nil
}

// lostDuringChecks returns the error of a failed required check's exchange that the RDS did not answer
// (rds.ErrUnavailable, a timeout), or nil.
func lostDuringChecks(rep *Report) error {
	for _, c := range rep.Checks {
		if !c.Required || c.Status != Fail {
			continue
		}
		for _, x := range c.Exchanges {
			if errors.Is(x.Err, rds.ErrUnavailable) || errors.Is(x.Err, context.DeadlineExceeded) {
				return fmt.Errorf("check %s: %w", c.Name, x.Err)
			}
		}
	}
	return nil
}

func logCheck(c Check) {
	kv := []any{"check", c.Name, "status", string(c.Status), "summary", c.Summary}
	for _, x := range c.Exchanges {
		kv = append(kv, "command", x.Script, "output", x.Out.Stdout, "exit", x.Out.ExitStatus)
	}
	if c.Status == Pass {
		klog.V(2).InfoS("start-up check", kv...)
		return
	}
	klog.InfoS("start-up check", kv...)
}
