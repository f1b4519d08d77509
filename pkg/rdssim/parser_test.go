package rdssim

import (
	"strings"
	"testing"
)

func TestParseScriptCommands(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []string // canonical commands
	}{
		{"slash menus", "/disk/add type=file file-path=pool/a.img file-size=1G slot=a",
			[]string{"/disk add type=file file-path=pool/a.img file-size=1G slot=a"}},
		{"spaced menus", "/disk btrfs subvolume add fs=pool name=k8s/a",
			[]string{"/disk btrfs subvolume add fs=pool name=k8s/a"}},
		{"mixed menus", "/disk/btrfs subvolume/add fs=pool name=x", []string{"/disk btrfs subvolume add fs=pool name=x"}},
		{"semicolons and newlines", "/disk print; :put \"a;b\"\n/file print detail\n\n",
			[]string{"/disk print", `:put "a;b"`, "/file print detail"}},
		{"crlf line ends", "/disk print\r\n:put x\r\n", []string{"/disk print", ":put x"}},
		{"menu change applies to later lines", "/disk\nprint detail\nbtrfs subvolume print",
			[]string{"/disk print detail", "/disk btrfs subvolume print"}},
		{"line continuation", "/disk add type=file \\\n  file-path=pool/a.img file-size=1G",
			[]string{"/disk add type=file \\\n  file-path=pool/a.img file-size=1G"}},
		{"comment lines", "# a comment; with a semicolon\n/disk print", []string{"/disk print"}},
		{"find in brackets", `/disk remove [find slot="a"]`, []string{`/disk remove [find slot="a"]`}},
		{"find where", `/disk set [find where slot="a"] file-size=2G`, []string{`/disk set [find where slot="a"] file-size=2G`}},
		{"absolute find", `/disk remove [/disk find slot=a]`, []string{`/disk remove [/disk find slot=a]`}},
		{"numbers=", `/disk remove numbers=[find slot=a]`, []string{`/disk remove numbers=[find slot=a]`}},
		{"where with and/or/not/parens", `/disk print detail where (slot~"^pvc-" or slot=x) and not !nvme-tcp-export`,
			[]string{`/disk print detail where (slot~"^pvc-" or slot=x) and not !nvme-tcp-export`}},
		{"escaped quotes", `:put "say \"hi\" \\ there"`, []string{`:put "say \"hi\" \\ there"`}},
		{"empty script", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stmts, err := parseScript(tc.script)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var got []string
			for _, s := range stmts {
				got = append(got, s.canonical)
			}
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
				t.Errorf("commands = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseScriptErrors(t *testing.T) {
	tests := []struct {
		script string
		want   string
	}{
		{"/disk addd", "bad command name addd (line 1 column 7)"},
		{"/disk/addd x=1", "bad command name addd (line 1 column 7)"},
		{":put ok\n/ip address print", "bad command name ip (line 2 column 2)"},
		{"addd", "bad command name addd (line 1 column 1)"},
		{"/disk print\n  /disk frob", "bad command name frob (line 2 column 9)"},
		{":foo", "bad command name foo (line 1 column 2)"},
		{"/disk add type=file file-path=pool/a file-size=1G colour=red", "expected end of command (line 1 column 51)"},
		{"/disk print detail where colour=red", "expected end of command (line 1 column 26)"},
		{"/disk print detail where !colour", "expected end of command (line 1 column 27)"},
		{"/disk print detail extra", "expected end of command (line 1 column 20)"},
		{"/disk add file-size=abc", "invalid value for argument file-size"},
		{"/disk add file-size=1.5G", "invalid value for argument file-size"},
		{"/disk add file-size=0", "invalid value for argument file-size"},
		{"/disk add nvme-tcp-server-port=99999", "invalid value for argument nvme-tcp-server-port"},
		{"/disk add nvme-tcp-export=maybe", "input does not match any value of nvme-tcp-export"},
		{"/disk add type=floppy", "input does not match any value of type"},
		{`:put "unterminated`, "syntax error (line 1 column 6)"},
		{`/disk remove [find slot=a`, "syntax error (line 1 column 14)"},
		{`/disk remove find slot=a]`, "syntax error (line 1 column 25)"},
		{`/disk print where (slot=a`, "syntax error (line 1 column 19)"},
		{`/disk print where slot~"("`, "syntax error (line 1 column 24)"},
		{`/disk print where`, "syntax error (line 1 column 13)"},
		{`:put $x`, "syntax error (line 1 column 6)"},
		{`:put "a $x"`, "syntax error (line 1 column 9)"},
		{`/disk remove [find slot=a; :put x]`, "syntax error (line 1 column 26)"},
		{`/disk remove []`, "syntax error (line 1 column 14)"},
		{`/disk remove [/file find]`, "syntax error (line 1 column 15)"},
		{`:put a b`, "expected end of command (line 1 column 8)"},
		{`/disk set a b`, "expected end of command (line 1 column 13)"},
	}
	for _, tc := range tests {
		t.Run(tc.script, func(t *testing.T) {
			_, err := parseScript(tc.script)
			if err == nil {
				t.Fatalf("parse succeeded, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q, want %q", err.Error(), tc.want)
			}
		})
	}
}

func TestLexQuotedEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"plain"`, "plain"},
		{`"q\"uote"`, `q"uote`},
		{`"back\\slash"`, `back\slash`},
		{`"tab\tnl\n"`, "tab\tnl\n"},
		{`"a\_b"`, "a b"},
		{`"hex\41\42"`, "hexAB"},
		{`"dollar\$"`, "dollar$"},
		{`"regex ^pvc\.x"`, `regex ^pvc\.x`},
	}
	for _, tc := range tests {
		toks, err := lex(tc.in)
		if err != nil {
			t.Fatalf("lex %s: %v", tc.in, err)
		}
		if len(toks) != 1 || toks[0].kind != tokString || toks[0].text != tc.want {
			t.Errorf("lex %s = %+v, want one string %q", tc.in, toks, tc.want)
		}
	}
}

func TestExpressionMatching(t *testing.T) {
	it := &item{index: 3, fields: []field{
		{key: "slot", value: "pvc-1", quoted: true},
		{key: "file-path", value: "/pool/k8s/pvc-1/disk.img"},
		{key: "size", value: "10 737 418 240", raw: "10737418240"},
		{key: "nvme-tcp-export", value: "yes"},
		{key: "mount-filesystem", value: "no"},
	}, hidden: map[string]string{"disabled": "no"}}
	tests := []struct {
		where string
		want  bool
	}{
		{`slot=pvc-1`, true},
		{`slot="pvc-1"`, true},
		{`slot=pvc-2`, false},
		{`slot!=pvc-2`, true},
		{`slot~"^pvc-"`, true},
		{`slot~"^vm-"`, false},
		{`file-path=pool/k8s/pvc-1/disk.img`, true},
		{`file-path="/pool/k8s/pvc-1/disk.img"`, true},
		{`size=10G`, true},
		{`size=10737418240`, true},
		{`size>1G`, true},
		{`size<1G`, false},
		{`nvme-tcp-export`, true},
		{`!nvme-tcp-export`, false},
		{`!mount-filesystem`, true},
		{`!disabled`, true},
		{`not slot=pvc-1`, false},
		{`slot=pvc-1 and nvme-tcp-export=yes`, true},
		{`slot=pvc-1 nvme-tcp-export=no`, false},
		{`slot=x or slot=pvc-1`, true},
		{`slot=x or slot=y and slot=pvc-1`, false},
		{`(slot=x or slot=pvc-1) and !mount-filesystem`, true},
		{`! (slot=pvc-1)`, false},
	}
	disk := buildMenus().children["disk"]
	p := &parser{root: buildMenus()}
	for _, tc := range tests {
		t.Run(tc.where, func(t *testing.T) {
			toks, err := lex(tc.where)
			if err != nil {
				t.Fatal(err)
			}
			p.src = tc.where
			e, err := p.expression(toks, disk)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := e.match(it); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}
