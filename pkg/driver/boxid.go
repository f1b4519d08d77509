package driver

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// Volume and snapshot ids name the RDS box they live on (docs/architecture.md §8): "<box>/<name>" on a named
// box, a plain "<name>" on the default box, so the ids of existing volumes keep meaning what they meant. The
// name is the CSI name and the RDS disk slot; rds.ValidName never allows a '/', so the two forms cannot be
// confused. This file is the one place that reads and writes the form.

// MaxBoxNameLen is the longest box name.
const MaxBoxNameLen = 32

var boxNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidBoxName checks a box name: lower-case letters, digits and '-', starting and ending with a letter or
// digit, at most MaxBoxNameLen characters. The error wraps rds.ErrInvalid.
func ValidBoxName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("box name is empty: %w", rds.ErrInvalid)
	case len(s) > MaxBoxNameLen:
		return fmt.Errorf("box name %q is %d characters long, at most %d are allowed: %w", s, len(s), MaxBoxNameLen, rds.ErrInvalid)
	case !boxNameRE.MatchString(s):
		return fmt.Errorf("box name %q may hold only a-z, 0-9 and '-', and must start and end with a letter or digit: %w",
			s, rds.ErrInvalid)
	}
	return nil
}

// ParseID splits a volume or snapshot id into its box ("" for the default box) and its name on that box.
// Both parts are checked; the error wraps rds.ErrInvalid.
func ParseID(id string) (box, name string, err error) {
	box, name, prefixed := strings.Cut(id, "/")
	if !prefixed {
		box, name = "", id
	} else if err := ValidBoxName(box); err != nil {
		return "", "", err
	}
	if err := rds.ValidName(name); err != nil {
		return "", "", err
	}
	return box, name, nil
}

// JoinID is the id of name on box ("" for the default box): the inverse of ParseID.
func JoinID(box, name string) string {
	if box == "" {
		return name
	}
	return box + "/" + name
}
