// Package rds is the RouterOS client of the driver: it builds RouterOS commands from validated values only,
// runs them over one SSH connection to the RDS (many exec sessions at once, reconnecting when the RDS drops
// it), tells from the output whether a script ran to its end, and turns listings into typed views.
package rds

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The kinds of failure a caller acts on. Errors returned by this package match one of them with errors.Is.
var (
	// ErrNotFound: the named item does not exist ("no such item").
	ErrNotFound = errors.New("not found on the RDS")
	// ErrAlreadyExists: an item with that name exists ("already have such entry").
	ErrAlreadyExists = errors.New("already exists on the RDS")
	// ErrNoSpace: the pool cannot hold what was asked ("not enough space").
	ErrNoSpace = errors.New("not enough space on the RDS")
	// ErrInvalid: a value was refused, by this package's validation before anything was sent or by
	// RouterOS ("invalid value for argument", "input does not match any value of type").
	ErrInvalid = errors.New("invalid value")
	// ErrPermission: the SSH user may not log in or run the command ("not enough permissions").
	ErrPermission = errors.New("permission denied by the RDS")
	// ErrUnavailable: the RDS could not be reached, did not answer in time, or dropped the connection
	// after a mutation was sent (its outcome is then unknown: read the state to converge).
	ErrUnavailable = errors.New("RDS unavailable")
	// ErrHostKeyMismatch: the RDS presented an SSH host key that is not the pinned one (reinstalled, or
	// someone in between). Retrying cannot help: a human must check the new key and pin it.
	ErrHostKeyMismatch = errors.New("the RDS's SSH host key is not the pinned one")
	// ErrProtocol: the RDS answered something this client does not understand (an unparsable listing, an
	// unknown error text, a command RouterOS rejected as malformed).
	ErrProtocol = errors.New("unexpected answer from the RDS")
)

// CommandError is a failure reported by RouterOS, with its own words kept.
type CommandError struct {
	// Kind is one of the sentinel errors above.
	Kind error
	// Script is what was sent in the failing exec; Step is the command that failed, when known.
	Script string
	Step   string
	// Output is what RouterOS printed for the failing command (stdout, then stderr).
	Output string
	// ExitStatus is the exec's exit status, or -1 when the RDS sent none.
	ExitStatus int
}

func (e *CommandError) Error() string {
	what := e.Step
	if what == "" {
		what = firstLine(e.Script)
	}
	msg := strings.TrimSpace(e.Output)
	if msg == "" {
		msg = "no output"
		if e.ExitStatus > 0 {
			msg = fmt.Sprintf("no output, exit status %d", e.ExitStatus)
		}
	}
	return fmt.Sprintf("%v: %s: RouterOS said: %s", e.Kind, what, clip(oneLine(msg), 300))
}

// Is makes errors.Is(err, ErrNoSpace) and friends work.
func (e *CommandError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the kind.
func (e *CommandError) Unwrap() error { return e.Kind }

// errorTexts maps what RouterOS prints on a failure (docs/routeros.md §1) to a kind; the first match wins.
var errorTexts = []struct {
	re   *regexp.Regexp
	kind error
}{
	{regexp.MustCompile(`(?i)not enough permissions`), ErrPermission},
	{regexp.MustCompile(`(?i)not enough (free )?space|no space left`), ErrNoSpace},
	{regexp.MustCompile(`(?i)already have|already exists`), ErrAlreadyExists},
	{regexp.MustCompile(`(?i)no such item|no such file|not found`), ErrNotFound},
	{regexp.MustCompile(`(?i)invalid value|does not match any value|value out of range|invalid argument`), ErrInvalid},
	{regexp.MustCompile(`(?i)bad command name|syntax error|expected end of command|expected command name|` +
		`unknown parameter|missing value|ambiguous`), ErrProtocol},
	{regexp.MustCompile(`(?im)^\s*failure:|\(line \d+ column \d+\)`), ErrProtocol},
}

// classify returns the kind of a RouterOS error text, and whether the text is a known error at all.
func classify(output string) (error, bool) {
	for _, e := range errorTexts {
		if e.re.MatchString(output) {
			return e.kind, true
		}
	}
	return ErrProtocol, false
}

// errorLine is the (line N column M) RouterOS appends to errors that it found while parsing a script.
var errorLine = regexp.MustCompile(`\(line (\d+) column \d+\)`)

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
