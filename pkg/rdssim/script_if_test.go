package rdssim

import (
	"os"
	"strings"
	"testing"
)

func TestScriptIf(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, `/disk add type=file file-path=pool/a.img file-size=1G slot=a`)
	tests := []struct{ name, script, want string }{
		{"absent runs do", `:if ([:len [/disk find where slot="b"]] = 0) do={:put "none"} else={:put "some"}`, "none\r\n"},
		{"present runs else", `:if ([:len [/disk find where slot="a"]] = 0) do={:put "none"} else={:put "some"}`, "some\r\n"},
		{"no else", `:if ([:len [/disk find slot="a"]] = 0) do={:put "none"}` + "\n:put after", "after\r\n"},
		{"count", `:if ([:len [/disk find where slot="a" or slot="pool"]] = 2) do={:put two}`, "two\r\n"},
		{"and", `:if ([:len [/disk find where slot="b"]] = 0 && [:len [/file find where name="pool/a.img"]] = 1) do={:put both}`, "both\r\n"},
		{"and word, short circuit false", `:if ([:len [/disk find where slot="a"]] = 0 and [:len [/disk find where slot="b"]] = 0) do={:put x} else={:put y}`, "y\r\n"},
		{"or", `:if ([:len [/disk find where slot="a"]] = 0 || 1 = 1) do={:put x}`, "x\r\n"},
		{"not and parens", `:if (!([:len [/disk find where slot="a"]] > 0)) do={:put x} else={:put y}`, "y\r\n"},
		{"subvolume and file finds", `:if ([:len [/disk/btrfs/subvolume find where name~"zz"]] = 0 && [:len [/file find where name="pool/nothing"]] = 0) do={:put clear}`, "clear\r\n"},
		{"block of several lines", ":if (1 = 1) do={\n:put one\n:put two\n}\n:put three", "one\r\ntwo\r\nthree\r\n"},
		{"nested", `:if (1 = 1) do={:if (2 < 1) do={:put inner} else={:put other}; :put outer}`, "other\r\nouter\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, status := run(t, c, tc.script)
			if status != 0 || out != tc.want {
				t.Errorf("status %d output %q, want 0 %q", status, out, tc.want)
			}
		})
	}
}

func TestScriptIfBodyRunsAndStopsAtError(t *testing.T) {
	s := startSim(t, Config{Faults: []Fault{{Kind: FaultDiskFull, Match: "slot=c"}}})
	c := dial(t, s)
	guard := func(slot string) string {
		return `:if ([:len [/disk find where slot="` + slot + `"]] = 0) do={/disk add type=file file-path=pool/` + slot +
			`.img file-size=1G slot=` + slot + `; :put "added-` + slot + `"}` + "\n:put end"
	}
	if out, status := run(t, c, guard("b")); status != 0 || out != "added-b\r\nend\r\n" {
		t.Fatalf("first guarded add: status %d output %q", status, out)
	}
	if _, err := os.Stat(s.poolDir() + "/b.img"); err != nil {
		t.Fatalf("the block did not run: %v", err)
	}
	// Taken: the block does not run, the rest of the script does.
	s.ResetCommands()
	if out, status := run(t, c, guard("b")); status != 0 || out != "end\r\n" {
		t.Fatalf("repeated guarded add: status %d output %q", status, out)
	}
	if cmds := s.Commands(); len(cmds) != 2 || !strings.HasPrefix(cmds[0], `:if ([:len`) || strings.Contains(cmds[0], "/disk add") {
		t.Errorf("commands = %q, want the :if by its condition and the :put", cmds)
	}
	// A runtime error inside the block stops the whole script.
	out, status := run(t, c, guard("c"))
	if status != 1 || !strings.Contains(out, "not enough space") || strings.Contains(out, "end") {
		t.Errorf("failing block: status %d output %q", status, out)
	}
}

func TestScriptIfSyntax(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	for _, tc := range []struct{ script, want string }{
		{`:if (1 = 1) do={:put x`, "syntax error (line 1 column 16)"},
		{`:if (1 = 1) do={:put x}}`, "syntax error (line 1 column 24)"},
		{`:if (1 = 1) {:put x}`, "expected end of command (line 1 column 13)"},
		{`:if (1 = 1)`, "syntax error (line 1 column 11)"},
		{`:if () do={:put x}`, "syntax error (line 1 column 6)"},
		{`:if ((1 = 1) && ()) do={:put x}`, "syntax error (line 1 column 18)"},
		{`:if 1 = 1 do={:put x}`, "syntax error (line 1 column 1)"},
		{`:if ([:len [/disk print]] = 0) do={:put x}`, "syntax error (line 1 column 13)"},
		{`:if ([:count [/disk find]] = 0) do={:put x}`, "syntax error (line 1 column 6)"},
		{`:if (1 = 1) do={/disk addd}`, "bad command name addd (line 1 column 23)"},
		{`:if (1 = 1) do={:put x} then={:put y}`, "expected end of command (line 1 column 25)"},
		{`:if (1 = 1) do= {:put x}`, "expected end of command (line 1 column 13)"},
		{`:if ($a = 1) do={:put x}`, "syntax error (line 1 column 6)"},
		{`:put [:len [/disk find]]`, "expected end of command (line 1 column 7)"},
	} {
		out, status := run(t, c, tc.script)
		if status != 1 || out != tc.want+crlf {
			t.Errorf("%q: status %d output %q, want %q", tc.script, status, out, tc.want)
		}
	}
}

func TestScriptIfRefusedWithoutIt(t *testing.T) {
	s := startSim(t, Config{ScriptIf: ScriptIfNo})
	c := dial(t, s)
	out, status := run(t, c, `:put first`+"\n"+`:if (1 = 1) do={:put x}`)
	if status != 1 || out != "bad command name if (line 2 column 2)\r\n" {
		t.Errorf("status %d output %q", status, out)
	}
}
