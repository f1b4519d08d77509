package nvme

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	nqnA       = NQNPrefix + "pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	nqnB       = NQNPrefix + "pvc-b"
	nqnB10     = NQNPrefix + "pvc-b10" // shares nqnB as a prefix
	sampleNQN  = "nqn.2024-01.io.example:e2e-shell"
	foreignNQN = "nqn.2014-08.org.nvmexpress:uuid:0c4b6f0e-boot-disk"
)

// TestFakeSysfsMatchesCapturedSample checks the fake tree against the sysfs
// view captured from a real multipath connection, so the lookup tests run
// on the layout the kernel really has.
func TestFakeSysfsMatchesCapturedSample(t *testing.T) {
	f := newFakeSysfs(t)
	f.addController("nvme0", 0, sampleNQN, StateLive)
	f.addMultipathNamespace(0, "nvme0", 0, 1)

	// "nvme0c0n1: device -> ../../nvme0" followed by "    key = value" lines.
	blocks := 0
	var name string
	for _, line := range readSampleLines(t, "per_block_device_sysfs_view_works_with_and_without_multipath.txt") {
		if !strings.HasPrefix(line, " ") {
			n, link, ok := strings.Cut(line, ": device -> ")
			if !ok {
				t.Fatalf("unexpected sample line %q", line)
			}
			name = n
			blocks++
			got, err := os.Readlink(filepath.Join(f.sys, "block", name, "device"))
			if err != nil || got != link {
				t.Errorf("%s/device -> %q (%v), captured %q", name, got, err, link)
			}
			continue
		}
		key, want, _ := strings.Cut(strings.TrimSpace(line), " = ")
		if key != "device/subsysnqn" && key != "nsid" {
			continue // identifiers the lookup does not use
		}
		got, err := readAttr(filepath.Join(f.sys, "block", name, key))
		if err != nil || got != want {
			t.Errorf("%s/%s = %q (%v), captured %q", name, key, got, err, want)
		}
	}
	if blocks != 2 {
		t.Fatalf("sample lists %d block devices, want 2", blocks)
	}

	for _, line := range readSampleLines(t, "sysfs_controller_attributes.txt") {
		path, want, ok := strings.Cut(strings.TrimSpace(line), " = ")
		attr := filepath.Base(path)
		if !ok || !strings.HasPrefix(path, "/sys/class/nvme/nvme0/") ||
			(attr != "transport" && attr != "address" && attr != "state" && attr != "hostnqn") {
			continue
		}
		got, err := readAttr(filepath.Join(f.sys, "class/nvme/nvme0", attr))
		if err != nil || got != want {
			t.Errorf("controller %s = %q (%v), captured %q", attr, got, err, want)
		}
	}

	// Entries the lookup walks through must exist where `ls` showed them.
	for sample, dir := range map[string]string{
		"ls_sys_class_nvme_nvme0.txt":     filepath.Join(f.sys, "class/nvme/nvme0"),
		"ls_sys_class_nvme_subsystem.txt": filepath.Join(f.sys, "class/nvme-subsystem/nvme-subsys0"),
	} {
		for _, line := range readSampleLines(t, sample) {
			for _, entry := range strings.Fields(line) {
				if entry != "subsysnqn" && entry != "state" && !strings.HasPrefix(entry, "nvme") {
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, entry)); err != nil {
					t.Errorf("%s lists %s, fake tree lacks it: %v", sample, entry, err)
				}
			}
		}
	}
}

func readSampleLines(t *testing.T, name string) []string {
	t.Helper()
	fh, err := os.Open(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			lines = append(lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestDeviceLookup(t *testing.T) {
	tests := []struct {
		name    string
		build   func(f *fakeSysfs)
		nqn     string
		want    string // device name under /dev; "" with wantErr
		wantErr error  // nil: any error is a failure; errAny: some error
	}{
		{
			name: "multipath: the head, never the hidden path node",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnA, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
			},
			nqn: nqnA, want: "nvme0n1",
		},
		{
			name: "multipath: subsystem and controller numbers differ",
			build: func(f *fakeSysfs) {
				f.addLocalDisk()
				f.addOtherDisks()
				f.addController("nvme0", 0, nqnB, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
				f.addController("nvme1", 2, nqnA, StateLive)
				f.addMultipathNamespace(2, "nvme1", 1, 1)
				f.addController("nvme2", 1, nqnB10, StateLive)
				f.addMultipathNamespace(1, "nvme2", 2, 1)
			},
			nqn: nqnA, want: "nvme2n1",
		},
		{
			name: "NQN that is a prefix of another is matched exactly",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnB10, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
				f.addController("nvme1", 1, nqnB, StateLive)
				f.addMultipathNamespace(1, "nvme1", 1, 1)
			},
			nqn: nqnB, want: "nvme1n1",
		},
		{
			name: "multipath: two paths to one subsystem give one disk",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnA, StateLive)
				f.addController("nvme1", 0, nqnA, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
				f.addPathNode(0, "nvme1", 1, 1)
			},
			nqn: nqnA, want: "nvme0n1",
		},
		{
			name: "multipath: controller reconnecting, the head stays",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnA, StateConnecting)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
			},
			nqn: nqnA, want: "nvme0n1",
		},
		{
			name: "no multipath: the disk hangs off the controller",
			build: func(f *fakeSysfs) {
				f.addLocalDisk()
				f.addController("nvme3", 3, nqnA, StateLive)
				f.addPrivateNamespace("nvme3", 3, 1, 1)
			},
			nqn: nqnA, want: "nvme3n1",
		},
		{
			name: "no multipath: same namespace through two controllers, the live one wins",
			build: func(f *fakeSysfs) {
				f.addController("nvme1", 1, nqnA, StateConnecting)
				f.addPrivateNamespace("nvme1", 1, 1, 1)
				f.addController("nvme4", 1, nqnA, StateLive)
				f.addPrivateNamespace("nvme4", 4, 1, 1)
			},
			nqn: nqnA, want: "nvme4n1",
		},
		{
			name: "several namespaces in one subsystem is an error, not a guess",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnA, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
				f.addMultipathNamespace(0, "nvme0", 0, 2)
			},
			nqn: nqnA, wantErr: errAny,
		},
		{
			name: "NQN not connected",
			build: func(f *fakeSysfs) {
				f.addLocalDisk()
				f.addController("nvme0", 0, nqnB, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
			},
			nqn: nqnA, wantErr: ErrNoDevice,
		},
		{
			name: "controller connected, namespace not there yet",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnA, StateLive)
			},
			nqn: nqnA, wantErr: ErrNoDevice,
		},
		{
			name: "sysfs ahead of /dev",
			build: func(f *fakeSysfs) {
				f.addController("nvme0", 0, nqnA, StateLive)
				f.addMultipathNamespace(0, "nvme0", 0, 1)
				if err := os.Remove(filepath.Join(f.dev, "nvme0n1")); err != nil {
					f.t.Fatal(err)
				}
			},
			nqn: nqnA, wantErr: ErrNoDevice,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSysfs(t)
			tc.build(f)
			cli := NewCLI(CLIOptions{SysfsRoot: f.sys, DevRoot: f.dev, Exec: newRecordingExec(t, nil)})
			got, err := cli.Device(context.Background(), tc.nqn)
			checkErr(t, err, tc.wantErr)
			if tc.wantErr == nil && got != filepath.Join(f.dev, tc.want) {
				t.Errorf("Device = %q, want %q", got, filepath.Join(f.dev, tc.want))
			}
		})
	}
}

// addPathNode adds only a hidden path node, for a second controller of a
// subsystem whose head already exists.
func (f *fakeSysfs) addPathNode(subsys int, ctrl string, ctrlInst, nsid int) {
	f.t.Helper()
	path := "nvme" + itoa(subsys) + "c" + itoa(ctrlInst) + "n" + itoa(nsid)
	dir := filepath.Join(f.ctrlDir(ctrl), path)
	f.write(filepath.Join(dir, "nsid"), itoa(nsid))
	f.symlink("../../"+ctrl, filepath.Join(dir, "device"))
	f.symlink("../devices/virtual/nvme-fabrics/ctl/"+ctrl+"/"+path, filepath.Join(f.sys, "block", path))
}

func TestState(t *testing.T) {
	tests := []struct {
		name      string
		states    []string // one controller per entry, all for nqnA
		want      string
		connected bool
	}{
		{name: "no controller", want: ""},
		{name: "live", states: []string{StateLive}, want: StateLive, connected: true},
		{name: "connecting", states: []string{StateConnecting}, want: StateConnecting},
		{name: "resetting", states: []string{StateResetting}, want: StateResetting},
		{name: "deleting", states: []string{StateDeletingIO}, want: StateDeletingIO},
		{name: "one live path of two", states: []string{StateConnecting, StateLive}, want: StateLive, connected: true},
		{name: "reconnecting beats deleting", states: []string{StateDeleting, StateConnecting}, want: StateConnecting},
		{name: "unknown state kept", states: []string{"weird"}, want: "weird"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSysfs(t)
			f.addLocalDisk()
			f.addController("nvme7", 7, nqnB, StateLive)
			for i, st := range tc.states {
				f.addController("nvme"+itoa(i), 0, nqnA, st)
			}
			cli := NewCLI(CLIOptions{SysfsRoot: f.sys, DevRoot: f.dev, Exec: newRecordingExec(t, nil)})
			got, err := cli.State(context.Background(), nqnA)
			if err != nil || got != tc.want {
				t.Errorf("State = %q, %v; want %q", got, err, tc.want)
			}
			connected, err := cli.IsConnected(context.Background(), nqnA)
			if err != nil || connected != tc.connected {
				t.Errorf("IsConnected = %v, %v; want %v", connected, err, tc.connected)
			}
		})
	}
}

func TestStateWithoutNVMeDriver(t *testing.T) {
	cli := NewCLI(CLIOptions{SysfsRoot: t.TempDir(), Exec: newRecordingExec(t, nil)})
	st, err := cli.State(context.Background(), nqnA)
	if err != nil || st != "" {
		t.Fatalf("State with no /sys/class/nvme = %q, %v; want \"\", nil", st, err)
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil:
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	case errors.Is(want, errAny):
		if err == nil {
			t.Fatal("expected an error, got none")
		}
	case !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
