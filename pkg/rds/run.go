package rds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

const (
	pingWord   = "ping"
	pingScript = `:put "` + pingWord + `"`
)

// Ping tells whether the RDS runs commands. RouterOS does not answer keepalive@openssh.com, so this opens
// a session and runs `:put "ping"`.
func (c *Client) Ping(ctx context.Context) error {
	start := time.Now()
	res, err := c.exec(ctx, execRequest{script: pingScript, pureRead: true, finished: func(r execResult) bool {
		return hasLine(r.stdout, pingWord)
	}})
	if err == nil && !hasLine(res.stdout, pingWord) {
		err = &CommandError{Kind: ErrProtocol, Script: pingScript, Output: res.output(), ExitStatus: res.exit}
	}
	c.observe("ping", start, err)
	return err
}

// Run executes the mutations in steps, in order, then the reads, and returns each read's items. By default
// it costs one exec: a script of the steps and reads, each followed by `:put "<marker>"`, so the output
// shows how far the script got and which output belongs to which read. A missing marker means RouterOS
// stopped at an error: the result is a *CommandError carrying its words. A removal whose target is already
// gone counts as done. With OneCommandPerExec each command is its own exec, stopping at the first failure.
func (c *Client) Run(ctx context.Context, steps []Cmd, reads ...Cmd) ([][]routeros.Item, error) {
	for _, s := range steps {
		if s.text == "" {
			return nil, fmt.Errorf("an empty command was given as a step: %w", ErrInvalid)
		}
	}
	for _, r := range reads {
		if r.text == "" || r.mutates {
			return nil, fmt.Errorf("%q was given as a read but is not one: %w", r.text, ErrInvalid)
		}
	}
	if len(steps)+len(reads) == 0 {
		return [][]routeros.Item{}, nil
	}
	if len(steps) == 0 {
		// Identical reads in flight together share one round trip.
		return c.reads.do(ctx, readKey(reads), func(ctx context.Context) ([][]routeros.Item, error) {
			return c.run(ctx, nil, reads)
		}, func(ctx context.Context) error { return c.ctxError(ctx, "waiting for a read of the RDS") })
	}
	return c.run(ctx, steps, reads)
}

func (c *Client) run(ctx context.Context, steps, reads []Cmd) ([][]routeros.Item, error) {
	if c.cfg.OneCommandPerExec || c.goesOn.Load() {
		return c.runEach(ctx, steps, reads)
	}
	return c.runScript(ctx, steps, reads)
}

// readKey identifies a list of reads: same commands, same answer.
func readKey(reads []Cmd) string {
	var b strings.Builder
	for _, r := range reads {
		fmt.Fprintf(&b, "%d:%d:%s\n", r.format, len(r.text), r.text)
	}
	return b.String()
}

func (c *Client) runScript(ctx context.Context, steps, reads []Cmd) ([][]routeros.Item, error) {
	cmds := append(append([]Cmd{}, steps...), reads...)
	if len(cmds) == 0 {
		return [][]routeros.Item{}, nil
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	script := buildScript(token, cmds)
	verb := "script"
	if len(cmds) == 1 {
		verb = cmds[0].verb
	}
	start := time.Now()
	res, err := c.exec(ctx, execRequest{script: script, pureRead: len(steps) == 0, finished: func(r execResult) bool {
		_, n := splitAtMarkers(r.stdout, token, len(cmds))
		return n == len(cmds)
	}})
	if err != nil {
		c.observe(verb, start, err)
		return nil, err
	}
	klog.V(4).InfoS("ran RouterOS script", "script", script, "output", res.output(), "exit", res.exit)
	out, resumeAt, err := interpretScript(script, token, steps, reads, res)
	if err != nil && len(steps) > 1 && wentOnAfter(err, steps, res.stdout, token, len(cmds)) && !c.goesOn.Swap(true) {
		klog.InfoS("the RDS went on with a script after a command failed; from now on each command runs in an "+
			"exec of its own, so that nothing runs after a failure it depends on", "failed", steps[0].text, "err", err)
	}
	if resumeAt >= 0 {
		// RouterOS may stop at "no such item" for something already removed: that step is done, and the
		// rest of the script runs again as a new one.
		c.observe(verb, start, nil)
		klog.V(2).InfoS("removal target already gone; continuing", "command", steps[resumeAt-1].text)
		return c.runScript(ctx, steps[resumeAt:], reads)
	}
	c.observe(verb, start, err)
	return out, err
}

// wentOnAfter tells whether the script failed at one of its steps and still printed every marker: the RDS ran
// the commands after the failed one.
func wentOnAfter(err error, steps []Cmd, stdout, token string, total int) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	if _, n := splitAtMarkers(stdout, token, total); n < total {
		return false
	}
	for _, s := range steps[:len(steps)-1] { // a failure of the last step ran nothing after it
		if s.text == ce.Step {
			return true
		}
	}
	return false
}

// buildScript puts a marker after every command: command i is on line 2i+1, its marker on line 2i+2.
func buildScript(token string, cmds []Cmd) string {
	var b strings.Builder
	for i, cmd := range cmds {
		fmt.Fprintf(&b, "%s\n:put \"%s\"\n", cmd.text, marker(token, i))
	}
	return b.String()
}

// interpretScript decides from a script's output and exit status whether it ran to its end, and parses
// the reads. When a removal stopped the script only because its target was already gone, resumeAt is the
// index of the step to continue from; otherwise it is -1.
func interpretScript(script, token string, steps, reads []Cmd, res execResult) (out [][]routeros.Item, resumeAt int, err error) {
	cmds := append(append([]Cmd{}, steps...), reads...)
	sections, n := splitAtMarkers(res.stdout, token, len(cmds))
	if n < len(cmds) {
		failed, cerr := scriptFailure(script, cmds, n, sections[n], res)
		if failed == n && failed < len(steps) && cmds[failed].missingOK && errors.Is(cerr, ErrNotFound) {
			return nil, failed + 1, nil
		}
		return nil, -1, cerr
	}
	// Every marker is there: the script reached its end, but a RouterOS that goes on after an error
	// (UNVERIFIED which way a box behaves) prints the error where it happened. A mutation prints nothing on
	// success, so any text of a step is its failure, of the kind the text names, as in runEach; only "no such
	// item" of a removal whose target is already gone is done.
	tolerated := false
	for i := range steps {
		text := strings.TrimSpace(sections[i])
		if text == "" {
			continue
		}
		kind, _ := classify(text)
		if steps[i].missingOK && errors.Is(kind, ErrNotFound) {
			klog.V(2).InfoS("removal target already gone", "command", steps[i].text, "output", text)
			tolerated = true
			continue
		}
		return nil, -1, &CommandError{Kind: kind, Script: script, Step: steps[i].text, Output: text, ExitStatus: res.exit}
	}
	if res.exit > 0 && !tolerated {
		// Every command ran and none said a word; still, the RDS says something failed.
		return nil, -1, &CommandError{Kind: ErrProtocol, Script: script, ExitStatus: res.exit,
			Output: fmt.Sprintf("the script ran to its end but exited with status %d: %s", res.exit, res.output())}
	}
	out = make([][]routeros.Item, len(reads))
	for j, r := range reads {
		items, err := parseRead(r, sections[len(steps)+j])
		if err != nil {
			return nil, -1, readError(script, r, sections[len(steps)+j], res.exit, err)
		}
		out[j] = items
	}
	return out, -1, nil
}

// scriptFailure explains a script that stopped after n commands. RouterOS reports parse errors with
// "(line L column C)"; command i sits on line 2i+1 of the script, which names the culprit even when the
// whole script was refused before anything ran.
func scriptFailure(script string, cmds []Cmd, n int, tail string, res execResult) (int, error) {
	text := strings.TrimSpace(tail)
	if res.stderr != "" {
		text = strings.TrimSpace(text + "\n" + res.stderr)
	}
	failed := n
	if m := errorLine.FindStringSubmatch(text); m != nil {
		if line, err := strconv.Atoi(m[1]); err == nil && line >= 1 && (line-1)/2 < len(cmds) && (line-1)/2 >= n {
			failed = (line - 1) / 2
		}
	}
	kind, _ := classify(text)
	if text == "" {
		// Stopped without a word (and the connection is up): what ran is unknown.
		kind = ErrUnavailable
		text = "the script stopped without a message"
	}
	return failed, &CommandError{Kind: kind, Script: script, Step: cmds[failed].text, Output: text, ExitStatus: res.exit}
}

func readError(script string, r Cmd, out string, exit int, err error) error {
	kind, known := classify(out)
	if !known {
		kind = ErrProtocol
	}
	return &CommandError{Kind: kind, Script: script, Step: r.text, ExitStatus: exit,
		Output: fmt.Sprintf("%s (%v)", strings.TrimSpace(out), err)}
}

// runEach runs every command as its own exec (Config.OneCommandPerExec).
func (c *Client) runEach(ctx context.Context, steps, reads []Cmd) ([][]routeros.Item, error) {
	for _, s := range steps {
		start := time.Now()
		res, err := c.exec(ctx, execRequest{script: s.text, pureRead: !s.mutates})
		if err == nil {
			err = stepError(s, res)
		}
		c.observe(s.verb, start, err)
		if err != nil {
			return nil, err
		}
	}
	out := make([][]routeros.Item, len(reads))
	for j, r := range reads {
		start := time.Now()
		res, err := c.exec(ctx, execRequest{script: r.text, pureRead: true})
		if err == nil && res.exit > 0 {
			kind, _ := classify(res.output())
			err = &CommandError{Kind: kind, Script: r.text, Step: r.text, Output: res.output(), ExitStatus: res.exit}
		}
		if err == nil {
			out[j], err = parseRead(r, res.stdout)
			if err != nil {
				err = readError(r.text, r, res.output(), res.exit, err)
			}
		}
		c.observe(r.verb, start, err)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// stepError decides whether a mutation run on its own failed. It prints nothing on success; any text is
// treated as a failure (RouterOS errors go to stdout), except "no such item" for a removal.
func stepError(s Cmd, res execResult) error {
	text := strings.TrimSpace(res.output())
	if text == "" && res.exit <= 0 {
		return nil
	}
	kind, _ := classify(text)
	if text == "" {
		kind = ErrProtocol
	}
	if s.missingOK && errors.Is(kind, ErrNotFound) {
		return nil
	}
	return &CommandError{Kind: kind, Script: s.text, Step: s.text, Output: text, ExitStatus: res.exit}
}

func parseRead(r Cmd, out string) ([]routeros.Item, error) {
	if r.format == formatKeyValue {
		kv, err := routeros.ParseKeyValueLines(out)
		if err != nil {
			return nil, err
		}
		it := routeros.Item{Index: -1, Props: kv, Keys: make([]string, 0, len(kv))}
		for k := range kv {
			it.Keys = append(it.Keys, k)
		}
		sort.Strings(it.Keys)
		return []routeros.Item{it}, nil
	}
	return routeros.ParseDetail(out)
}

// splitAtMarkers cuts out at the marker lines of token, which must appear in order. It returns the text
// before each marker (sections[i] precedes marker i; sections[n] is what follows the last one found) and
// how many markers were found.
func splitAtMarkers(out, token string, total int) ([]string, int) {
	sections := make([]string, 0, total+1)
	var cur strings.Builder
	next := marker(token, 0)
	for rest := out; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if len(sections) < total && strings.TrimSpace(line) == next {
			sections = append(sections, cur.String())
			cur.Reset()
			next = marker(token, len(sections))
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	n := len(sections)
	sections = append(sections, cur.String())
	for len(sections) < total+1 {
		sections = append(sections, "")
	}
	return sections, n
}

func marker(token string, i int) string { return "rds-csi-" + token + "-" + strconv.Itoa(i) }

func newToken() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a script marker: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func hasLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

func (c *Client) observe(verb string, start time.Time, err error) {
	if c.cfg.Observe == nil {
		return
	}
	outcome := "ok"
	switch {
	case errors.Is(err, ErrUnavailable):
		outcome = "unavailable"
	case err != nil:
		outcome = "error"
	}
	c.cfg.Observe(verb, outcome, time.Since(start))
}
