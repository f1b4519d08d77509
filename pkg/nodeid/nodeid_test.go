package nodeid

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

const nqn = "nqn.2014-08.org.nvmexpress:uuid:5a1e0000-e2e0-4e2e-9000-000000000001"

func TestFormat(t *testing.T) {
	long := strings.Repeat("n", MaxLen-len(nqn)) // one byte too long with the ','
	for _, tc := range []struct {
		name, host, want string
		dropped          bool
	}{
		{"node-a", nqn, "node-a," + nqn, false},
		{"node-a", "", "node-a", true},
		{"node-a", "not-an-nqn", "node-a", true},
		{"node-a", "nqn.2014-08.org.nvmexpress:uuid:a b", "node-a", true},
		{"node-a", "nqn.2014-08.org.nvmexpress:" + strings.Repeat("x", 200), "node-a", true},
		{long, nqn, long, true},
		{long[1:], nqn, long[1:] + "," + nqn, false},
	} {
		got, why := Format(tc.name, tc.host)
		if got != tc.want || (why != "") != tc.dropped {
			t.Errorf("Format(%q, %q) = %q, %q; want %q, dropped %v", tc.name, tc.host, got, why, tc.want, tc.dropped)
		}
		if len(got) > MaxLen {
			t.Errorf("Format(%q, %q) is %d bytes long", tc.name, tc.host, len(got))
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		id, name, host string
		bad            bool
	}{
		{"node-a", "node-a", "", false},
		{"node-a," + nqn, "node-a", nqn, false},
		{"node-a,garbage", "node-a", "", true},
		{"," + nqn, "", "", true},
		{"node-a," + nqn + ",x", "node-a", "", true},
	} {
		name, host, err := Parse(tc.id)
		if name != tc.name || host != tc.host || (err != nil) != tc.bad {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, error %v", tc.id, name, host, err, tc.name, tc.host, tc.bad)
		}
		if Name(tc.id) != strings.SplitN(tc.id, ",", 2)[0] {
			t.Errorf("Name(%q) = %q", tc.id, Name(tc.id))
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("node-a," + nqn)
	f.Add("node-a")
	f.Add(",")
	f.Fuzz(func(t *testing.T, id string) {
		name, host, err := Parse(id)
		if err != nil {
			return
		}
		if host != "" {
			if ValidHostNQN(host) != nil {
				t.Fatalf("Parse(%q) returned an invalid host NQN %q", id, host)
			}
			if got, _ := Format(name, host); len(got) <= MaxLen && got != id {
				t.Fatalf("Format(Parse(%q)) = %q", id, got)
			}
		}
		if Name(id) != name {
			t.Fatalf("Name(%q) = %q, Parse says %q", id, Name(id), name)
		}
	})
}

func TestReadHostNQN(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content, want string
		bad           bool
	}{
		{nqn + "\n", nqn, false},
		{"  " + nqn + " \n", nqn, false},
		{"", "", true},
		{"hello\n", "", true},
	} {
		p := dir + "/hostnqn"
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadHostNQN(p)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("ReadHostNQN(%q) = %q, %v; want %q, error %v", tc.content, got, err, tc.want, tc.bad)
		}
	}
	if _, err := ReadHostNQN(dir + "/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}
