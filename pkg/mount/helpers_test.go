package mount

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// recordingExec records every command (and fails the test if one runs
// without a deadline). respond may answer a command itself; otherwise, when
// real is set, the real command runs.
type recordingExec struct {
	t       *testing.T
	real    utilexec.Interface
	respond func(argv []string) (out string, err error, handled bool)
	mu      sync.Mutex
	calls   [][]string
}

func newSpyExec(t *testing.T) *recordingExec {
	return &recordingExec{t: t, real: utilexec.New()}
}

func newFakeExec(t *testing.T, respond func(argv []string) (string, error, bool)) *recordingExec {
	return &recordingExec{t: t, respond: respond}
}

func (r *recordingExec) Command(cmd string, args ...string) utilexec.Cmd {
	r.t.Errorf("%s %s run without a context: every exec must be under a timeout", cmd, strings.Join(args, " "))
	return r.CommandContext(context.Background(), cmd, args...)
}

func (r *recordingExec) CommandContext(ctx context.Context, cmd string, args ...string) utilexec.Cmd {
	argv := append([]string{cmd}, args...)
	if _, ok := ctx.Deadline(); !ok {
		r.t.Errorf("%s run without a deadline", strings.Join(argv, " "))
	}
	r.mu.Lock()
	r.calls = append(r.calls, argv)
	r.mu.Unlock()
	if r.respond != nil {
		out, err, handled := r.respond(argv)
		if handled {
			action := func() ([]byte, []byte, error) { return []byte(out), nil, err }
			return testingexec.InitFakeCmd(&testingexec.FakeCmd{
				CombinedOutputScript: []testingexec.FakeAction{action},
				OutputScript:         []testingexec.FakeAction{action},
				RunScript:            []testingexec.FakeAction{action},
			}, cmd, args...)
		}
	}
	if r.real == nil {
		r.t.Errorf("unexpected command %q", argv)
		return testingexec.InitFakeCmd(&testingexec.FakeCmd{CombinedOutputScript: []testingexec.FakeAction{
			func() ([]byte, []byte, error) { return nil, nil, errors.New("unexpected command") },
		}}, cmd, args...)
	}
	return r.real.CommandContext(ctx, cmd, args...)
}

func (r *recordingExec) LookPath(file string) (string, error) { return exec.LookPath(file) }

// ran reports the commands whose program is name.
func (r *recordingExec) ran(name string) [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, c := range r.calls {
		if c[0] == name || strings.HasPrefix(c[0], name+".") {
			out = append(out, c)
		}
	}
	return out
}

func (r *recordingExec) reset() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

// requireRoot stops tests that need real loop devices and mounts (testenv.Missing) where they cannot run.
func requireRoot(t testing.TB, tools ...string) {
	t.Helper()
	testenv.RequireLoopDevices(t, "loop devices and mounts")
	testenv.RequireTools(t, "apt-get install -y util-linux e2fsprogs xfsprogs",
		append([]string{"losetup", "blkid", "mount", "umount"}, tools...)...)
}

// loopDevice attaches a sparse file of size bytes to a loop device that is
// detached when the test ends. It returns the device and the file.
func loopDevice(t testing.TB, size int64) (string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--direct-io=off", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detaching %s: %v: %s", dev, err, out)
		}
	})
	return dev, file
}

// unmountOnCleanup makes sure a failing test leaves no mount behind; it is
// registered after loopDevice so it runs before the detach.
func unmountOnCleanup(t testing.TB, target string) {
	t.Cleanup(func() {
		for range maxStackedMounts {
			if err := exec.Command("umount", target).Run(); err != nil {
				return
			}
		}
	})
}

// run runs a setup command and fails the test if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// blkidType is the filesystem type blkid sees on dev, read independently of
// the code under test.
func blkidType(t *testing.T, dev string) string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-s", "TYPE", "-o", "value", dev).Output()
	return strings.TrimSpace(string(out))
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func isEROFS(err error) bool { return errors.Is(err, syscall.EROFS) }
