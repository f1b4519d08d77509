package rds

import (
	"context"
	"errors"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// Whether a RouterOS script stops at a failed command is UNVERIFIED (sim --on-error). A caller that puts a
// mutation after another one it depends on, in one script, may do so safely only where the RDS is known to
// stop: ScriptsStop says so, learning it once per process with a probe (a script's own failure is not taken
// as proof: a whole script refused at parse time also prints no marker).

const (
	onErrorUnknown int32 = iota
	onErrorStops
	onErrorGoesOn
)

// probeScript removes a disk whose name is a fresh random token, which no disk has: RouterOS answers "no
// such item" (as it does for any removal of a name it does not know); the marker after it prints only
// where scripts go on after a failed command.
func probeScript(token string) string {
	return "/disk remove " + quote("rds-csi-probe-"+token) + "\n:put \"" + marker(token, 0) + "\"\n"
}

// ScriptsStop tells whether this RDS is known to stop a script at its first failed command, so that no
// command of a script runs after one that failed. Each command running in an exec of its own
// (OneCommandPerExec) stops too. Until it is known, one probe exec finds out; a probe
// that cannot tell (the RDS unreachable, an answer it does not expect) answers false, and is tried again
// next time.
func (c *Client) ScriptsStop(ctx context.Context) bool {
	if c.cfg.OneCommandPerExec {
		return true
	}
	if c.goesOn.Load() {
		return false
	}
	if v := c.onError.Load(); v != onErrorUnknown {
		return v == onErrorStops
	}
	c.probe.Lock()
	defer c.probe.Unlock()
	if v := c.onError.Load(); v != onErrorUnknown {
		return v == onErrorStops
	}
	token, err := newToken()
	if err != nil {
		return false
	}
	script := probeScript(token)
	start := time.Now()
	res, err := c.exec(ctx, execRequest{script: script, pureRead: true, finished: func(r execResult) bool {
		_, n := splitAtMarkers(r.stdout, token, 1)
		return n == 1
	}})
	c.observe("probe", start, err)
	if err != nil {
		return false
	}
	sections, n := splitAtMarkers(res.stdout, token, 1)
	kind, _ := classify(strings.TrimSpace(sections[0]))
	switch {
	case n == 1 && errors.Is(kind, ErrNotFound):
		// Only recorded: scripts of independent commands keep running as one exec, as before.
		c.onError.Store(onErrorGoesOn)
		klog.InfoS("the RDS goes on with a script after a command failed; a create reads the name's state first")
	case n == 0 && errors.Is(kind, ErrNotFound):
		c.onError.Store(onErrorStops)
		klog.V(2).InfoS("the RDS stops a script at a failed command")
	default:
		klog.InfoS("the probe of how the RDS treats a failed command in a script gave an unexpected answer",
			"output", res.output(), "exit", res.exit)
	}
	return c.onError.Load() == onErrorStops && !c.goesOn.Load()
}

// RunReadFirst runs pre, then steps, then reads, as one script (one exec), and returns the items of pre and
// of reads. The pre reads see the RDS as it was before the steps. When a step fails, preOut is still
// returned (the pre reads ran to their end before it) with the step's error; when a pre read fails, preOut
// is nil. Steps must not be removals whose target may be gone (they would need the script to resume). Where
// this RDS may go on after a failure, or runs each command on its own, callers should not put dependent
// steps in one script: see ScriptsStop; here each command then runs in an exec of its own.
func (c *Client) RunReadFirst(ctx context.Context, pre, steps []Cmd, reads ...Cmd) (preOut, out [][]routeros.Item, err error) {
	for _, s := range steps {
		if s.text == "" || s.missingOK {
			return nil, nil, errors.Join(ErrInvalid, errors.New("RunReadFirst takes no empty step and no removal: "+s.text))
		}
	}
	for _, r := range append(append([]Cmd{}, pre...), reads...) {
		if r.text == "" || r.mutates {
			return nil, nil, errors.Join(ErrInvalid, errors.New("given as a read but is not one: "+r.text))
		}
	}
	if c.cfg.OneCommandPerExec || c.goesOn.Load() {
		if preOut, err = c.runEach(ctx, nil, pre); err != nil {
			return nil, nil, err
		}
		out, err = c.runEach(ctx, steps, reads)
		return preOut, out, err
	}
	cmds := append(append(append([]Cmd{}, pre...), steps...), reads...)
	token, err := newToken()
	if err != nil {
		return nil, nil, err
	}
	script := buildScript(token, cmds)
	start := time.Now()
	res, err := c.exec(ctx, execRequest{script: script, pureRead: len(steps) == 0, finished: func(r execResult) bool {
		_, n := splitAtMarkers(r.stdout, token, len(cmds))
		return n == len(cmds)
	}})
	if err != nil {
		c.observe("script", start, err)
		return nil, nil, err
	}
	klog.V(4).InfoS("ran RouterOS script", "script", script, "output", res.output(), "exit", res.exit)
	sections, n := splitAtMarkers(res.stdout, token, len(cmds))
	if n >= len(pre) {
		preOut = make([][]routeros.Item, len(pre))
		for j, r := range pre {
			items, perr := parseRead(r, sections[j])
			if perr != nil {
				err = readError(script, r, sections[j], res.exit, perr)
				c.observe("script", start, err)
				return nil, nil, err
			}
			preOut[j] = items
		}
	}
	if n < len(cmds) {
		_, err = scriptFailure(script, cmds, n, sections[n], res)
	} else {
		err = c.finishedReadFirst(script, sections[len(pre):], steps, res)
		if err == nil {
			out = make([][]routeros.Item, len(reads))
			for j, r := range reads {
				sec := sections[len(pre)+len(steps)+j]
				items, perr := parseRead(r, sec)
				if perr != nil {
					err = readError(script, r, sec, res.exit, perr)
					break
				}
				out[j] = items
			}
		}
	}
	if err != nil && len(steps) > 1 && wentOnAfter(err, steps, res.stdout, token, len(cmds)) && !c.goesOn.Swap(true) {
		klog.InfoS("the RDS went on with a script after a command failed; from now on each command runs in an "+
			"exec of its own, so that nothing runs after a failure it depends on", "err", err)
	}
	c.observe("script", start, err)
	if err != nil {
		out = nil
	}
	return preOut, out, err
}

// finishedReadFirst checks the steps of a script that printed every marker: a step prints nothing on
// success, so any text of a step is its failure (as in interpretScript), and a non-zero exit status with no
// word is a failure too.
func (c *Client) finishedReadFirst(script string, sections []string, steps []Cmd, res execResult) error {
	for i := range steps {
		if text := strings.TrimSpace(sections[i]); text != "" {
			kind, _ := classify(text)
			return &CommandError{Kind: kind, Script: script, Step: steps[i].text, Output: text, ExitStatus: res.exit}
		}
	}
	if res.exit > 0 {
		return &CommandError{Kind: ErrProtocol, Script: script, ExitStatus: res.exit,
			Output: "the script ran to its end but exited with a non-zero status: " + res.output()}
	}
	return nil
}
