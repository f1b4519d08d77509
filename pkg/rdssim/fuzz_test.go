package rdssim

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseScript feeds arbitrary scripts to the parser: it must never panic
// or hang, and what it accepts must be runnable against a sample item.
// Seeds live in testdata/fuzz/FuzzParseScript.
func FuzzParseScript(f *testing.F) {
	f.Add(addPVC1)
	f.Add(`/disk print detail where slot~"^pvc-" and !nvme-tcp-export or (size>1G)`)
	f.Add(`:if ([:len [/disk find where slot="a"]] = 0 && [:len [/file find where name="p"]] = 0) do={/disk add type=file file-path=p/x slot=a file-size=1G; :put "m"} else={:put n}`)
	f.Add(":if (!(1 < 2) || [:len [/disk/btrfs/subvolume find where name~\"x\"]] != 0) do={\n:if (1 = 1) do={:put a}\n}")
	sample := &item{index: 1, flags: "Bt", fields: []field{
		{key: "slot", value: "pvc-1", quoted: true}, {key: "size", value: "1 024", raw: "1024"},
		{key: "name", value: "k8s/a"}, {key: "file-path", value: "/pool/a"}},
		hidden: map[string]string{"disabled": "no"}}
	f.Fuzz(func(t *testing.T, script string) {
		stmts, err := parseScript(script)
		if err != nil {
			var se *scriptError
			if !errors.As(err, &se) {
				t.Fatalf("parse error of type %T: %v", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "syntax error (line ") && !strings.HasPrefix(msg, "bad command name ") &&
				!strings.HasPrefix(msg, "expected end of command (line ") && !strings.HasPrefix(msg, "invalid value for argument ") &&
				!strings.HasPrefix(msg, "input does not match any value of ") {
				t.Fatalf("unexpected parse error text %q", msg)
			}
			return
		}
		for len(stmts) > 0 {
			st := stmts[0]
			stmts = append(append(stmts[1:], st.then...), st.otherwise...)
			if st.spec == nil || st.canonical == "" {
				t.Fatalf("statement without a command: %+v", st)
			}
			if st.spec.id == cmdIf && (st.cond == nil || st.then == nil) {
				t.Fatalf(":if without a condition or a do= block: %+v", st)
			}
			if st.where != nil {
				st.where.match(sample)
			}
			if st.items != nil && st.items.find != nil {
				st.items.find.match(sample)
			}
		}
	})
}

// FuzzWrap checks the wrapping invariants: no line is wider than the width,
// and no character is lost or invented.
func FuzzWrap(f *testing.F) {
	f.Add(" 1 Bt ", "type=file slot=\"pvc-1\" file-path=/pool/k8s/a-very-long-path/disk.img size=10 737 418 240", 40)
	f.Add(" 0 ", "a", 5)
	f.Fuzz(func(t *testing.T, prefix, text string, width int) {
		if width < 1 || width > 1000 || !utf8.ValidString(prefix) || !utf8.ValidString(text) ||
			strings.ContainsAny(prefix+text, "\r\n") || utf8.RuneCountInString(prefix) >= width {
			return
		}
		tokens := strings.Fields(text)
		lines := wrap(prefix, tokens, width)
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Fatalf("line %q is %d wide, limit %d", l, n, width)
			}
		}
		squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if got, want := squash(strings.Join(lines, "")), squash(prefix+strings.Join(tokens, "")); got != want {
			t.Fatalf("wrapped text %q does not hold %q", got, want)
		}
	})
}

// FuzzParseFileSize: no panic; anything accepted is non-negative and prints
// back as digits that parse to the same value.
func FuzzParseFileSize(f *testing.F) {
	for _, s := range []string{"10G", "512M", "1073741824", "9T", "", "G", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseFileSize(s)
		if !ok {
			return
		}
		if n < 0 {
			t.Fatalf("parseFileSize(%q) = %d", s, n)
		}
		if back, ok := parseFileSize(strings.ReplaceAll(groupDigits(n), " ", "")); !ok || back != n {
			t.Fatalf("round trip of %d gave %d, %v", n, back, ok)
		}
	})
}
