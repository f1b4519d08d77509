package rds

import (
	"fmt"
	"strconv"
	"strings"
)

// A guard runs commands only while nothing of a kind exists, in the exec that also reads the result back:
//
//	:if ([:len [/disk find where slot="x"]] = 0 && [:len [/file find where name="p"]] = 0) do={CMD; CMD}
//
// (MikroTik manual, "Scripting": `:if (<condition>) do={<commands>}`; `:len` counts an array, `find`
// returns the array of matching items). It prints nothing either way: whether the block ran is told by
// what the read-back shows. The whole guard is one line, so that RouterOS's "(line L column C)" of a
// parse error still names the command it belongs to (run.go), and the block's commands stop the script
// at their first error like any other command.

// Absence is a condition of a guard: how many items of a menu match a filter (none, for the constructors
// named No...; exactly one for One...).
type Absence struct {
	text string
	err  error
}

// NoDisk holds while no disk matches where.
func NoDisk(where Filter) Absence { return count("/disk", where, 0) }

// NoFile holds while no file or directory matches where.
func NoFile(where Filter) Absence { return count("/file", where, 0) }

// NoSubvolume holds while no btrfs subvolume matches where.
func NoSubvolume(where Filter) Absence { return count("/disk/btrfs/subvolume", where, 0) }

// OneDisk holds while exactly one disk matches where.
func OneDisk(where Filter) Absence { return count("/disk", where, 1) }

// OneFile holds while exactly one file or directory matches where.
func OneFile(where Filter) Absence { return count("/file", where, 1) }

func count(menu string, where Filter, n int) Absence {
	if where.err != nil {
		return Absence{err: where.err}
	}
	if len(where.conds) == 0 {
		return Absence{err: fmt.Errorf("a guard's find needs a filter: %w", ErrInvalid)}
	}
	return Absence{text: "[:len [" + menu + " find where " + where.String() + "]] = " + strconv.Itoa(n)}
}

// Unless returns one command that runs body, in order, only while every condition holds.
func Unless(conds []Absence, body ...Cmd) (Cmd, error) {
	if len(conds) == 0 || len(body) == 0 {
		return Cmd{}, fmt.Errorf("a guard needs conditions and commands: %w", ErrInvalid)
	}
	texts := make([]string, 0, len(conds))
	for _, c := range conds {
		if c.err != nil {
			return Cmd{}, c.err
		}
		texts = append(texts, c.text)
	}
	cmds := make([]string, 0, len(body))
	verbs := make([]string, 0, len(body))
	for _, b := range body {
		if b.text == "" || !b.mutates || strings.ContainsAny(b.text, "\n;{}") {
			return Cmd{}, fmt.Errorf("%q cannot be guarded: %w", b.text, ErrInvalid)
		}
		cmds = append(cmds, b.text)
		verbs = append(verbs, b.verb)
	}
	return Cmd{
		text:    ":if (" + strings.Join(texts, " && ") + ") do={" + strings.Join(cmds, "; ") + "}",
		verb:    "guarded." + strings.Join(verbs, "+"),
		mutates: true,
	}, nil
}

// GuardProbe is a script that prints yes when every condition holds and no otherwise, for a check that the
// RDS runs guards at all (pkg/doctor). It changes nothing.
func GuardProbe(conds []Absence, yes, no string) (string, error) {
	if err := ValidName(yes); err != nil {
		return "", err
	}
	if err := ValidName(no); err != nil {
		return "", err
	}
	put := func(w string) Cmd { return Cmd{text: ":put " + quote(w), verb: "put", mutates: true} }
	c, err := Unless(conds, put(yes))
	if err != nil {
		return "", err
	}
	return c.text + " else={:put " + quote(no) + "}", nil
}
