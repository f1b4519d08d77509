package rds

import (
	"fmt"
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

// Absence is a condition of a guard: no item of a menu matches a filter.
type Absence struct {
	text string
	err  error
}

// NoDisk holds while no disk matches where.
func NoDisk(where Filter) Absence { return absence("/disk", where) }

// NoFile holds while no file or directory matches where.
func NoFile(where Filter) Absence { return absence("/file", where) }

// NoSubvolume holds while no btrfs subvolume matches where.
func NoSubvolume(where Filter) Absence { return absence("/disk/btrfs/subvolume", where) }

func absence(menu string, where Filter) Absence {
	if where.err != nil {
		return Absence{err: where.err}
	}
	if len(where.conds) == 0 {
		return Absence{err: fmt.Errorf("a guard's find needs a filter: %w", ErrInvalid)}
	}
	return Absence{text: "[:len [" + menu + " find where " + where.String() + "]] = 0"}
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
