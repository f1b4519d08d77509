package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// variants are the simulator settings for the RouterOS behaviours that are still unverified (every one of
// rdssim.Dialects, plus an xfs pool and a label unlike the mount point): doctor must pass on each and say
// which adaptation it chose.
func variants() []struct {
	name  string
	cfg   rdssim.Config
	wants []string // lines the report must contain
} {
	type variant = struct {
		name  string
		cfg   rdssim.Config
		wants []string
	}
	var out []variant
	for _, d := range rdssim.Dialects {
		names, parent, script, exit, label := "leaf", "leaf", "script mode: markers behave", "failing commands exit with status 1", "pool-fs"
		if d.SubvolumeNames == rdssim.NamePath {
			names = "path"
		}
		if d.SubvolumeParent == rdssim.NamePath {
			parent = "path"
		}
		if d.OnError == rdssim.OnErrorContinue {
			script = "script mode: falls back to one command per exec"
		}
		if d.ExitZero {
			exit = "failing commands exit with status 0: failures are told from their text only"
		}
		if d.LabelIsMountPoint {
			label = "pool"
		}
		out = append(out, variant{d.Name, d.Apply(rdssim.Config{}), []string{script, exit,
			`pool filesystem: btrfs, btrfs commands use fs="` + label + `"`, "subvolume names print as " + names,
			"subvolume parent= takes the " + parent, "PASS subvolume:", "PASS disk:", "PASS cleanup:"}})
	}
	return append(out,
		variant{"label-unlike-mount-point", rdssim.Config{PoolLabel: "ocp-storage"}, []string{
			`btrfs label "ocp-storage": subvolume commands use fs="ocp-storage"`}},
		variant{"xfs-pool", rdssim.Config{PoolFS: "xfs"}, []string{"SKIP subvolume: the pool is not btrfs",
			"pool filesystem: xfs: volumes are flat files, no snapshots", "PASS disk:"}},
		variant{"parent-by-path-tried-after-leaf", rdssim.Config{SubvolumeParent: rdssim.NamePath}, []string{
			"parent= by the leaf failed: no such item"}},
		variant{"script-goes-on", rdssim.Config{OnError: rdssim.OnErrorContinue}, []string{
			"WARN script: markers do not prove success", "failing commands exit with status 1"}},
	)
}

func mustFault(spec string) rdssim.Fault {
	f, err := rdssim.ParseFault(spec)
	if err != nil {
		panic(err)
	}
	return f
}

func TestDoctorPassesOnEveryVariant(t *testing.T) {
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			sim := prepared(t, v.cfg)
			rep, out := runDoctor(t, context.Background(), newClient(t, sim), Options{})
			if !rep.OK() {
				t.Errorf("required checks failed: %v\n%s", rep.Failed(), out)
			}
			for _, want := range v.wants {
				if !strings.Contains(out, want) {
					t.Errorf("the report lacks %q:\n%s", want, out)
				}
			}
			if !strings.Contains(out, "result: every required check passed") {
				t.Errorf("no passing result line:\n%s", out)
			}
			assertNothingLeft(t, sim)
		})
	}
}

// TestDoctorFailsWithoutACapability: a box lacking something the driver needs fails on the check that
// names it, and the run as a whole fails.
func TestDoctorFailsWithoutACapability(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      rdssim.Config
		basePath string
		line     string // the FAIL line's start
	}{
		{"no rose-storage", rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageMissing}}, "",
			"FAIL rose-storage: the rose-storage package is not installed"},
		{"rose-storage disabled", rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageDisabled}}, "",
			`FAIL rose-storage: the rose-storage package is listed but not active (flags "X")`},
		{"rose-storage only available", rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageAvailable}}, "",
			`FAIL rose-storage: the rose-storage package is listed but not active (flags "XA")`},
		{"RouterOS 6", rdssim.Config{System: rdssim.System{Version: "6.49.17"}}, "",
			"FAIL routeros: RouterOS 6.49.17 (stable) on RDS2216 (arm64): older than RouterOS 7"},
		{"no such pool", rdssim.Config{}, "raid10/k8s", `FAIL pool: 0 disks are mounted at "raid10"`},
		{"disk full", rdssim.Config{Faults: []rdssim.Fault{mustFault("disk-full@/disk add")}}, "",
			"FAIL disk: adding a 1 GiB file disk failed: failure: not enough space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := prepared(t, tc.cfg)
			opts := Options{}
			if tc.basePath != "" {
				opts.Location = location(t, tc.basePath)
			}
			rep, out := runDoctor(t, context.Background(), newClient(t, sim), opts)
			if rep.OK() {
				t.Errorf("doctor passed a box without the capability:\n%s", out)
			}
			if !strings.Contains(out, "\n"+tc.line) {
				t.Errorf("the report lacks the line %q:\n%s", tc.line, out)
			}
			if !strings.Contains(out, "result: FAILED:") {
				t.Errorf("no failing result line:\n%s", out)
			}
			assertNothingLeft(t, sim)
		})
	}
}

func TestDoctorWrongHostKey(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	other := startSim(t, rdssim.Config{})
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	hk, err := rds.LoadHostKey(other.KnownHostsFile()) // another box's key
	if err != nil {
		t.Fatal(err)
	}
	c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, out := runDoctor(t, context.Background(), c, Options{})
	if rep.OK() || !strings.Contains(out, "FAIL ssh: the RDS's SSH host key does not match --rds-host-key") {
		t.Errorf("a wrong host key was not reported:\n%s", out)
	}
	for _, n := range []string{"routeros", "rose-storage", "pool", "script", "subvolume", "disk"} {
		if c := checkNamed(rep, n); c == nil || c.Status != Skip {
			t.Errorf("check %s ran without a connection: %+v", n, c)
		}
	}
}

// cancelAfter cancels the run's context once the n-th command has returned: an interruption at that
// point of the run.
type cancelAfter struct {
	ex     Execer
	n      int
	cancel context.CancelFunc
	mu     sync.Mutex
	calls  int
}

func (c *cancelAfter) Exec(ctx context.Context, script string) (rds.RawOutput, error) {
	out, err := c.ex.Exec(ctx, script)
	c.mu.Lock()
	c.calls++
	if c.calls == c.n {
		c.cancel()
	}
	c.mu.Unlock()
	return out, err
}

// TestDoctorInterruptedLeavesNothing interrupts a run after each of its commands in turn and checks,
// from the simulator's own state, that nothing doctor made is left.
func TestDoctorInterruptedLeavesNothing(t *testing.T) {
	for _, d := range rdssim.Dialects {
		t.Run(d.Name, func(t *testing.T) { interruptEverywhere(t, d.Apply(rdssim.Config{})) })
	}
}

func interruptEverywhere(t *testing.T, cfg rdssim.Config) {
	sim := prepared(t, cfg)
	client := newClient(t, sim)
	full, _ := runDoctor(t, context.Background(), client, Options{})
	total := 0
	for _, c := range full.Checks {
		if c.Name != "cleanup" {
			total += len(c.Exchanges)
		}
	}
	if total < 20 {
		t.Fatalf("the full run sent only %d commands", total)
	}
	t.Logf("interrupting after each of %d commands", total)
	cleaned := 0 // interruptions after which the cleanup had scratch items to remove
	defer func() {
		t.Logf("%d interruptions left scratch items that the cleanup removed", cleaned)
		if !t.Failed() && cleaned < 10 {
			t.Errorf("only %d interruptions left scratch items for the cleanup: the test does not exercise it", cleaned)
		}
	}()
	for n := 1; n <= total; n++ {
		ctx, cancel := context.WithCancel(context.Background())
		rep, out := runDoctor(t, ctx, &cancelAfter{ex: client, n: n, cancel: cancel}, Options{})
		cancel()
		if n < total && !rep.Interrupted {
			t.Errorf("interrupted after command %d: the report does not say so:\n%s", n, out)
		}
		if n < total && rep.OK() {
			t.Errorf("interrupted after command %d: the run counts as passed", n)
		}
		if c := checkNamed(rep, "cleanup"); c != nil && c.Status != Pass {
			t.Errorf("interrupted after command %d: cleanup %s: %s\n%s", n, c.Status, c.Summary, out)
		} else if c != nil && strings.HasPrefix(c.Summary, "removed what the interrupted checks left") {
			cleaned++
		}
		assertNothingLeft(t, sim)
		if t.Failed() {
			return
		}
	}
}

func TestDoctorCapture(t *testing.T) {
	sim := prepared(t, rdssim.Config{})
	dir := filepath.Join(t.TempDir(), "capture")
	rep, _ := runDoctor(t, context.Background(), newClient(t, sim), Options{CaptureDir: dir})
	var all []Exchange
	for _, c := range rep.Checks {
		all = append(all, c.Exchanges...)
	}
	log, err := os.ReadFile(filepath.Join(dir, "capture.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != len(all) {
		t.Fatalf("capture.log has %d lines for %d commands", len(lines), len(all))
	}
	sawCRLF, parsed := false, 0
	for i, x := range all {
		base, _, _ := strings.Cut(lines[i], "\t")
		cmd, err := os.ReadFile(filepath.Join(dir, base+".cmd"))
		if err != nil {
			t.Fatal(err)
		}
		if string(cmd) != x.Script {
			t.Errorf("%s.cmd = %q, sent %q", base, cmd, x.Script)
		}
		out, err := os.ReadFile(filepath.Join(dir, base+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != x.Out.Stdout {
			t.Errorf("%s.txt is not the output verbatim:\n%q\n%q", base, out, x.Out.Stdout)
		}
		sawCRLF = sawCRLF || strings.Contains(string(out), "\r\n")
		if strings.Contains(x.Script, " print detail") && !strings.Contains(x.Script, "\n") {
			// Ready to be a golden input: the project's parser reads the captured bytes as they are.
			if _, err := routeros.ParseDetail(string(out)); err != nil {
				t.Errorf("%s.txt does not parse as a listing: %v", base, err)
			}
			parsed++
		}
		if !strings.Contains(base, x.Label) {
			t.Errorf("file %s does not carry the step's label %s", base, x.Label)
		}
	}
	if !sawCRLF {
		t.Error("no captured output kept RouterOS's \\r\\n line ends")
	}
	if parsed < 10 {
		t.Errorf("only %d captured listings were parsed", parsed)
	}
	if _, err := os.Stat(filepath.Join(dir, "03-rose-storage-package-print.txt")); err != nil {
		t.Errorf("the package listing is not where its name says: %v", err)
	}
}

func TestDoctorReadOnlyChangesNothing(t *testing.T) {
	sim := prepared(t, rdssim.Config{})
	rep, out := runDoctor(t, context.Background(), newClient(t, sim), Options{ReadOnly: true})
	if !rep.OK() {
		t.Fatalf("failed: %v\n%s", rep.Failed(), out)
	}
	for _, cmd := range sim.Commands() {
		for _, verb := range []string{" add", " set", " remove"} {
			if strings.Contains(cmd, verb) {
				t.Errorf("a read-only run sent %q", cmd)
			}
		}
	}
	if checkNamed(rep, "disk") != nil || checkNamed(rep, "cleanup") != nil {
		t.Errorf("a read-only run ran the scratch checks:\n%s", out)
	}
}

// TestDoctorConnectionLostAfterCreate: the RDS runs the add, then the connection drops before the answer
// (the crash between a mutation and its read-back). Doctor cannot know the add happened, so its
// registered removal must still clean up.
func TestDoctorConnectionLostAfterCreate(t *testing.T) {
	for _, match := range []string{"/disk btrfs subvolume add", "/disk add", "/disk set"} {
		t.Run(match, func(t *testing.T) {
			sim := prepared(t, rdssim.Config{Faults: []rdssim.Fault{mustFault("drop-after=" + match + "#1")}})
			rep, out := runDoctor(t, context.Background(), newClient(t, sim), Options{})
			if rep.OK() {
				t.Errorf("a lost answer to %s passed:\n%s", match, out)
			}
			if c := checkNamed(rep, "cleanup"); c == nil || c.Status != Pass {
				t.Errorf("cleanup did not pass:\n%s", out)
			}
			assertNothingLeft(t, sim)
		})
	}
}

// TestDoctorDoesNotCreateTheBaseDirectory: with no base directory, the scratch checks would leave one
// behind, outside doctor's own names; doctor fails on the line that says so and creates nothing.
func TestDoctorDoesNotCreateTheBaseDirectory(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	rep, out := runDoctor(t, context.Background(), newClient(t, sim), Options{})
	if rep.OK() || !strings.Contains(out, "\nFAIL base-dir: pool/k8s does not exist") ||
		!strings.Contains(out, `/disk/btrfs/subvolume/add fs="pool-fs" name="k8s"`) {
		t.Errorf("a missing base directory was not reported:\n%s", out)
	}
	inv, err := sim.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Files)+len(inv.Disks)+len(inv.Subvolumes) != 0 {
		t.Errorf("doctor changed the box: %+v", inv)
	}
}
