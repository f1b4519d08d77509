package doctor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/**/*.golden from the parsers' current output")

// TestPackagesGolden parses every testdata/packages/*.txt (shapes of `/system package print` from
// RouterOS 7 and 6 consoles) and compares the result with its .golden.
func TestPackagesGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/packages/*.txt")
	if err != nil || len(inputs) < 5 {
		t.Fatalf("found %d golden inputs (%v), expected at least 5", len(inputs), err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			type row struct{ Flags, Version string }
			got := map[string]row{}
			for name, p := range parsePackages(string(raw)) {
				got[name] = row{p.flags, p.version}
			}
			js, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			js = append(js, '\n')
			golden := strings.TrimSuffix(in, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, js, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestPackagesGolden -update to create it)", err)
			}
			if !bytes.Equal(js, want) {
				t.Errorf("%s differs from its golden:\n%s", in, js)
			}
		})
	}
}

func TestMajorVersion(t *testing.T) {
	for _, tc := range []struct {
		in    string
		major int
		ok    bool
	}{
		{"7.20.6 (stable)", 7, true}, {"7.1beta4 (testing)", 7, true}, {"6.49.17 (long-term)", 6, true},
		{" 7.16 ", 7, true}, {"", 0, false}, {"stable", 0, false}, {"0.1", 0, false}, {"-7.1", 0, false},
	} {
		major, ok := majorVersion(tc.in)
		if major != tc.major && tc.ok || ok != tc.ok {
			t.Errorf("majorVersion(%q) = %d, %v; want %d, %v", tc.in, major, ok, tc.major, tc.ok)
		}
	}
}

func TestLooksLikeError(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{"bad command name filesystem (line 1 column 13)\r\n", true},
		{"not enough permissions (9)\r\n", true},
		{"failure: not enough space\r\n", true},
		{"Flags: B - BLOCK-DEVICE\r\n 0 B type=raid\r\n", false},
		{"", false},
	} {
		if got := looksLikeError(tc.out); got != tc.want {
			t.Errorf("looksLikeError(%q) = %v", tc.out, got)
		}
	}
}

func FuzzParsePackages(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/packages/*.txt")
	for _, in := range inputs {
		raw, err := os.ReadFile(in)
		if err == nil {
			f.Add(string(raw))
		}
	}
	f.Fuzz(func(t *testing.T, out string) {
		for name, p := range parsePackages(out) {
			if name == "" || strings.ContainsAny(name, " \t\r\n") {
				t.Fatalf("package name %q", name)
			}
			if p.version != "" && !versionWord.MatchString(p.version) {
				t.Fatalf("version %q", p.version)
			}
			if !isFlags(p.flags) && p.flags != "" {
				t.Fatalf("flags %q", p.flags)
			}
		}
		_, _ = majorVersion(out)
	})
}
