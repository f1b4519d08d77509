package rds

import (
	"errors"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// fuzzToken is the marker token of the fuzzed scripts; seeds in testdata/fuzz/FuzzInterpretScript use it.
const fuzzToken = "0123456789abcdef"

func fuzzScript(t *testing.T) (steps, reads []Cmd) {
	steps = append(deleteCmds(t), mutation(t))
	read, _ := PrintDisks(Eq("slot", "pvc-1"))
	mon, _ := MonitorTraffic("pvc-1")
	return steps, []Cmd{read, mon}
}

// FuzzInterpretScript feeds arbitrary output and exit status to the interpretation of a script's run.
// Beyond not panicking, the safety property: the script counts as done only if its last marker is there.
func FuzzInterpretScript(f *testing.F) {
	f.Add("rds-csi-0123456789abcdef-0\r\nrds-csi-0123456789abcdef-1\r\nrds-csi-0123456789abcdef-2\r\n"+
		"rds-csi-0123456789abcdef-3\r\nFlags: B\r\nrds-csi-0123456789abcdef-4\r\nread-ops: 1\r\n"+
		"rds-csi-0123456789abcdef-5\r\n", 0)
	f.Add("no such item\r\n", 1)
	// A RouterOS that goes on after an error: every marker, the error where it happened.
	f.Add("rds-csi-0123456789abcdef-0\r\nfailure: not enough space\r\nrds-csi-0123456789abcdef-1\r\n"+
		"rds-csi-0123456789abcdef-2\r\nrds-csi-0123456789abcdef-3\r\nFlags: B\r\nrds-csi-0123456789abcdef-4\r\n"+
		"read-ops: 1\r\nrds-csi-0123456789abcdef-5\r\n", 0)
	f.Fuzz(func(t *testing.T, stdout string, exit int) {
		if exit < -1 {
			exit = -1
		}
		steps, reads := fuzzScript(t)
		script := buildScript(fuzzToken, append(append([]Cmd{}, steps...), reads...))
		out, resumeAt, err := interpretScript(script, fuzzToken, steps, reads, execResult{stdout: stdout, exit: exit})
		switch {
		case resumeAt >= 0:
			if resumeAt == 0 || resumeAt > len(steps) || err != nil || !steps[resumeAt-1].missingOK {
				t.Fatalf("resume at %d (err %v)", resumeAt, err)
			}
		case err == nil:
			if len(out) != len(reads) {
				t.Fatalf("%d results for %d reads", len(out), len(reads))
			}
			last := marker(fuzzToken, len(steps)+len(reads)-1)
			if !hasLine(stdout, last) {
				t.Fatalf("success without the last marker in %q", stdout)
			}
			// Strict: a mutation that printed anything failed, unless it is a removal of what is gone.
			sections, _ := splitAtMarkers(stdout, fuzzToken, len(steps)+len(reads))
			for i := range steps {
				text := strings.TrimSpace(sections[i])
				if kind, _ := classify(text); text != "" && !(steps[i].missingOK && errors.Is(kind, ErrNotFound)) {
					t.Fatalf("success although step %d printed %q", i, text)
				}
			}
		default:
			known := false
			for _, k := range []error{ErrNotFound, ErrAlreadyExists, ErrNoSpace, ErrInvalid, ErrPermission, ErrUnavailable, ErrProtocol} {
				known = known || errors.Is(err, k)
			}
			if !known {
				t.Fatalf("error of no known kind: %v", err)
			}
		}
	})
}

func FuzzParseHostKeyLine(f *testing.F) {
	f.Add("[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDf2b0M5BzQaZ1m3tCCqEfmxk2ZK0yX8bK6hD4b5g1nV rds")
	f.Add("@revoked * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDf2b0M5BzQaZ1m3tCCqEfmxk2ZK0yX8bK6hD4b5g1nV")
	f.Fuzz(func(t *testing.T, line string) {
		key, err := parseHostKeyLine(strings.TrimSpace(line))
		if (key == nil) == (err == nil) {
			t.Fatalf("key %v with error %v", key, err)
		}
	})
}

// FuzzFilesystemsFrom: whatever a /disk/btrfs/filesystem listing holds, the devices read from it are single,
// non-empty names, each once.
func FuzzFilesystemsFrom(f *testing.F) {
	f.Add(" 0   label=\"raid10-fs\" devs=raid10 present-devs=raid10\r\n")
	f.Add(" 0   label=\"BtrfsRAID\" devs=sata1,sata2 present-devs=sata1,\r\n")
	f.Fuzz(func(t *testing.T, out string) {
		items, err := routeros.ParseDetail(out)
		if err != nil {
			return
		}
		for _, fs := range FilesystemsFrom(items) {
			seen := map[string]bool{}
			for _, d := range fs.Devices {
				if d == "" || strings.ContainsAny(d, ", \t\r\v\f") || seen[d] {
					t.Fatalf("device %q of %+v", d, fs)
				}
				seen[d] = true
			}
		}
	})
}
