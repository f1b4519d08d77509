package rdssim

import (
	"os"
	"strings"
	"testing"
)

func TestScriptStopsAtFirstRuntimeError(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	s.ResetCommands()
	script := `:put "start"
/disk add type=file file-path=pool/a.img file-size=1G slot=a
/disk add type=file file-path=pool/b.img file-size=1G slot=a
/disk add type=file file-path=pool/c.img file-size=1G slot=c
:put "end-marker"`
	out, status := run(t, c, script)
	if status != 1 {
		t.Errorf("status = %d, want 1", status)
	}
	if want := "start\r\nfailure: already have such entry\r\n"; out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
	if _, err := os.Stat(s.poolDir() + "/a.img"); err != nil {
		t.Errorf("the command before the error did not run: %v", err)
	}
	if _, err := os.Stat(s.poolDir() + "/c.img"); err == nil {
		t.Error("a command after the error ran")
	}
	cmds := s.Commands()
	if len(cmds) != 3 || !strings.HasPrefix(cmds[2], "/disk add type=file file-path=pool/b.img") {
		t.Errorf("commands run = %q", cmds)
	}
	// The same with ';' on one line.
	out, status = run(t, c, `:put "s"; /disk remove nothing; :put "end-marker"`)
	if status != 1 || out != "s\r\nno such item\r\n" {
		t.Errorf("';' script: status %d output %q", status, out)
	}
}

func TestScriptSyntaxErrorRunsNothing(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	for _, tc := range []struct{ script, want string }{
		{":put \"first\"\n/disk add type=file file-path=pool/a.img file-size=1G slot=a\n/disk addd", "bad command name addd (line 3 column 7)"},
		{":put first; /disk add type=file file-path=pool/a.img file-size=1G slot=a; :put \"oops", "syntax error (line 1 column 80)"},
		{"/disk add type=file file-path=pool/a.img file-size=1G slot=a\n/disk print detail where slot=\"a\" colour=red", "expected end of command (line 2 column 35)"},
		{"/disk add type=file file-path=pool/a.img file-size=1G slot=a\n/disk remove [find slot=a", "syntax error (line 2 column 14)"},
		{"/disk add type=file file-path=pool/a.img file-size=1G slot=a; :put $marker", "syntax error (line 1 column 68)"},
	} {
		s.ResetCommands()
		out, status := run(t, c, tc.script)
		if status != 1 || out != tc.want+crlf {
			t.Errorf("%q: status %d output %q, want %q", tc.script, status, out, tc.want)
		}
		if _, err := os.Stat(s.poolDir() + "/a.img"); err == nil {
			t.Fatalf("%q: a command ran although the script did not parse", tc.script)
		}
		// The rejected script is recorded whole, so callers asserting that
		// nothing reached the box see it.
		if cmds := s.Commands(); len(cmds) != 1 || cmds[0] != strings.TrimSpace(tc.script) {
			t.Errorf("commands = %q", cmds)
		}
	}
	if got := s.Scripts(); len(got) != 1 {
		t.Errorf("Scripts() = %d entries after ResetCommands and one exec", len(got))
	}
}

func TestScriptPutAndMenus(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	tests := []struct{ script, want string }{
		{`:put "hello world"`, "hello world\r\n"},
		{`:put hello`, "hello\r\n"},
		{`:put "say \"hi\" \\o/"`, "say \"hi\" \\o/\r\n"},
		{`:put`, "\r\n"},
		{":put a\n\n  :put b ; :put c", "a\r\nb\r\nc\r\n"},
		{"/disk\nfind\n:put in-disk-menu", "in-disk-menu\r\n"},
		{"/disk/btrfs/subvolume\nprint detail", "Flags: S - SNAPSHOT; r - READ-ONLY\r\n"},
		{"/disk btrfs subvolume print detail where name=x", "Flags: S - SNAPSHOT; r - READ-ONLY\r\n"},
	}
	for _, tc := range tests {
		if out := mustRun(t, c, tc.script); out != tc.want {
			t.Errorf("%q: output %q, want %q", tc.script, out, tc.want)
		}
	}
}

func TestPrintForms(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	mustRun(t, c, addPVC1)
	mustRun(t, c, `/disk add type=file file-path=pool/vm-a.img file-size=1G slot=vm-a`)
	detail := mustRun(t, c, `/disk print detail where slot~"^pvc-"`)
	if strings.Count(detail, "slot=") != 1 || !strings.Contains(detail, `slot="pvc-1"`) {
		t.Errorf("regex filter:\n%s", detail)
	}
	terse := mustRun(t, c, `/disk print terse where slot~"^(pvc|vm)-"`)
	lines := strings.Split(strings.TrimSuffix(terse, crlf), crlf)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], " 1 Bt type=file slot=\"pvc-1\"") || !strings.HasPrefix(lines[1], " 2 B  type=file slot=\"vm-a\"") {
		t.Errorf("terse:\n%s", terse)
	}
	table := mustRun(t, c, `/disk print`)
	if !strings.Contains(table, "Columns: SLOT, TYPE, FS, SIZE, FREE, FILE-PATH\r\n") || strings.Count(table, crlf) != 6 {
		t.Errorf("table:\n%s", table)
	}
	both := mustRun(t, c, `/disk print detail where slot=pvc-1 or slot=vm-a`)
	if !strings.Contains(both, crlf+" "+crlf+" 2 B  type=file") {
		t.Errorf("items must be separated by a line holding one space:\n%q", both)
	}
	none := mustRun(t, c, `/disk print detail where slot=missing`)
	if none != "Flags: X - DISABLED; B - BLOCK-DEVICE; M - MOUNTED; F - FORMATTING; r - RAID-MEMBER; t - NVME-TCP-EXPORT"+crlf {
		t.Errorf("empty result must be the full legend only: %q", none)
	}
}
