package rds

import (
	"fmt"
	"regexp"
	"strings"
)

// Everything that goes into a RouterOS command is checked against a strict character set first, so no
// value can end a quoted string, start a command substitution ([...]), expand a variable ($x) or start a
// new command (; or a newline). Anything else is refused with ErrInvalid before SSH is touched.

const (
	maxNameLen = 128
	// maxSegmentLen bounds one directory or file name of a path: NAME_MAX of btrfs (and of most
	// filesystems), so that a snapshot's leaf can carry a 128-character snapshot id with its source. What
	// RouterOS itself allows is UNVERIFIED (rds-csi doctor makes such a name).
	maxSegmentLen = 255
	maxPathLen    = 1024
	maxNQNLen     = 223 // NVMe base specification
)

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// nqnRE accepts nqn.yyyy-mm.<reverse domain>:<anything of the safe set>.
	nqnRE = regexp.MustCompile(`^nqn\.[0-9]{4}-[0-9]{2}\.[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._:-]+$`)
	// keyRE is a RouterOS property name.
	keyRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	// valueRE is what a where-clause value may hold: the characters of names, paths and NQNs.
	valueRE = regexp.MustCompile(`^[A-Za-z0-9._:/-]*$`)
	// regexRE is the safe subset of a regular expression: no quote, no $ (a variable inside quotes), no
	// [ ] (command substitution), no ? (help in the console), and a backslash only in `\.`.
	regexRE = regexp.MustCompile(`^(?:[A-Za-z0-9_:/^.*+|()-]|\\\.)*$`)
)

// ValidName checks a slot, volume id, pool or other single name: [A-Za-z0-9][A-Za-z0-9._-]*, at most 128
// characters. The error wraps ErrInvalid.
func ValidName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("name is empty: %w", ErrInvalid)
	case len(s) > maxNameLen:
		return fmt.Errorf("name %s is %d characters long, at most %d are allowed: %w", show(s), len(s), maxNameLen, ErrInvalid)
	case !nameRE.MatchString(s):
		return fmt.Errorf("name %s may hold only letters, digits, '.', '_' and '-', and must start with a letter "+
			"or digit: %w", show(s), ErrInvalid)
	}
	return nil
}

// ValidPath checks a path on the RDS: relative (no leading '/'), made of names that ValidName accepts
// (but up to 255 characters long each) joined by single '/', with no "." or ".." segment. The error wraps ErrInvalid.
func ValidPath(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("path is empty: %w", ErrInvalid)
	case len(s) > maxPathLen:
		return fmt.Errorf("path %s is %d characters long, at most %d are allowed: %w", show(s), len(s), maxPathLen, ErrInvalid)
	case strings.HasPrefix(s, "/"):
		return fmt.Errorf("path %s must be relative to the RDS's file root (no leading '/'): %w", show(s), ErrInvalid)
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("path %s may not contain %q: %w", show(s), seg, ErrInvalid)
		}
		if len(seg) > maxNameLen && len(seg) <= maxSegmentLen && nameRE.MatchString(seg) {
			continue // a long name, checked like a short one
		}
		if err := ValidName(seg); err != nil {
			return fmt.Errorf("path %s: segment %s: %w", show(s), show(seg), err)
		}
	}
	return nil
}

// ValidNQN checks an NVMe qualified name of the form nqn.yyyy-mm.reverse.domain:identifier, at most 223
// characters, using only letters, digits, '.', '-', '_' and ':'. The error wraps ErrInvalid.
func ValidNQN(s string) error {
	switch {
	case len(s) > maxNQNLen:
		return fmt.Errorf("NQN %s is %d characters long, at most %d are allowed: %w", show(s), len(s), maxNQNLen, ErrInvalid)
	case !nqnRE.MatchString(s):
		return fmt.Errorf("NQN %s must look like nqn.2000-02.com.mikrotik:<id> (letters, digits, '.', '-', '_', "+
			"':'): %w", show(s), ErrInvalid)
	}
	return nil
}

func validKey(k string) error {
	if len(k) > 64 || !keyRE.MatchString(k) {
		return fmt.Errorf("property name %s is not a RouterOS property name: %w", show(k), ErrInvalid)
	}
	return nil
}

func validValue(v string) error {
	if len(v) > maxPathLen || !valueRE.MatchString(v) {
		return fmt.Errorf("value %s may hold only letters, digits, '.', '_', '-', ':' and '/': %w", show(v), ErrInvalid)
	}
	return nil
}

func validRegex(r string) error {
	if r == "" || len(r) > 256 || !regexRE.MatchString(r) {
		return fmt.Errorf("pattern %s may hold only letters, digits and _:/^.*+|()- and \\. : %w", show(r), ErrInvalid)
	}
	if _, err := regexp.Compile(r); err != nil {
		return fmt.Errorf("pattern %s: %s: %w", show(r), err.Error(), ErrInvalid)
	}
	return nil
}

// show quotes a refused value for an error message, shortened so a hostile megabyte stays out of logs.
func show(s string) string {
	return fmt.Sprintf("%q", clip(s, 80))
}
