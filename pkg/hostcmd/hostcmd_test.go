package hostcmd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// requireTools stops a test that runs real programs the machine lacks (testenv.Missing).
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	testenv.RequireTools(t, "apt-get install -y coreutils dash", tools...)
}

// TestRunRealCommands runs real programs: what a tool prints and how it exits must reach the
// caller unchanged, and a tool that never exited must not look like one that answered.
func TestRunRealCommands(t *testing.T) {
	requireTools(t, "sh", "sleep")
	tests := []struct {
		name       string
		timeout    time.Duration
		argv       []string
		wantOut    string
		wantErr    bool
		wantStatus int
		wantIs     error
		wantInMsg  []string
	}{
		{name: "success returns the combined output", timeout: 10 * time.Second,
			argv: []string{"sh", "-c", "echo out; echo err >&2"}, wantOut: "out\nerr\n"},
		{name: "exit status and output are kept", timeout: 10 * time.Second,
			argv:    []string{"sh", "-c", "echo 'Failed to write to /dev/nvme-fabrics: Input/output error'; exit 3"},
			wantOut: "Failed to write to /dev/nvme-fabrics: Input/output error\n", wantErr: true, wantStatus: 3,
			wantInMsg: []string{"sh -c", "exit status 3", "Input/output error"}},
		{name: "a missing program did not exit", timeout: 10 * time.Second,
			argv: []string{"rds-csi-no-such-tool", "--version"}, wantErr: true, wantStatus: -1,
			wantInMsg: []string{"rds-csi-no-such-tool --version"}},
		{name: "a killed program did not exit, and the timeout is the cause", timeout: 100 * time.Millisecond,
			argv: []string{"sleep", "30"}, wantErr: true, wantStatus: -1, wantIs: context.DeadlineExceeded,
			wantInMsg: []string{"sleep 30", "deadline exceeded", "killed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Runner{Exec: utilexec.New(), Timeout: tc.timeout}
			start := time.Now()
			out, err := r.Run(context.Background(), tc.argv[0], tc.argv[1:]...)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Run took %s: the timeout did not stop the command", took)
			}
			if out != tc.wantOut {
				t.Errorf("output = %q, want %q", out, tc.wantOut)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) {
				t.Fatalf("Run error = %v (%T), want an *Error", err, err)
			}
			if got := he.ExitStatus(); got != tc.wantStatus {
				t.Errorf("ExitStatus() = %d, want %d", got, tc.wantStatus)
			}
			if strings.Join(he.Argv, " ") != strings.Join(tc.argv, " ") || he.Output != tc.wantOut {
				t.Errorf("Error kept argv %q and output %q, want %q and %q", he.Argv, he.Output, tc.argv, tc.wantOut)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.wantIs)
			}
			for _, s := range tc.wantInMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not say %q", err.Error(), s)
				}
			}
		})
	}
}

// TestRunTimeoutOverridesTimeout: mkfs and filesystem growth get the long timeout, not the
// Runner's, and the Runner's still applies to Run.
func TestRunTimeoutOverridesTimeout(t *testing.T) {
	requireTools(t, "sleep")
	r := Runner{Exec: utilexec.New(), Timeout: 50 * time.Millisecond}
	if _, err := r.RunTimeout(context.Background(), 10*time.Second, "sleep", "0.3"); err != nil {
		t.Errorf("RunTimeout with a long timeout: %v", err)
	}
	if _, err := r.Run(context.Background(), "sleep", "0.3"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with the Runner's 50ms timeout = %v, want a deadline error", err)
	}
}

// TestRunHonoursCallerContext: a caller that gives up (the gRPC request was cancelled) stops the
// command, and the error says so.
func TestRunHonoursCallerContext(t *testing.T) {
	requireTools(t, "sleep")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Runner{Exec: utilexec.New(), Timeout: time.Minute}.Run(ctx, "sleep", "30")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after the caller cancelled = %v, want context.Canceled", err)
	}
	var he *Error
	if !errors.As(err, &he) || he.ExitStatus() != -1 {
		t.Errorf("Run after the caller cancelled = %#v, want an *Error with ExitStatus -1", err)
	}
}

// deadlineExec records whether each command got a deadline and how far away it was.
type deadlineExec struct {
	testingexec.FakeExec
	hadDeadline bool
	remaining   time.Duration
}

func (d *deadlineExec) CommandContext(ctx context.Context, cmd string, args ...string) utilexec.Cmd {
	var dl time.Time
	dl, d.hadDeadline = ctx.Deadline()
	d.remaining = time.Until(dl)
	return testingexec.InitFakeCmd(&testingexec.FakeCmd{CombinedOutputScript: []testingexec.FakeAction{
		func() ([]byte, []byte, error) { return nil, nil, nil },
	}}, cmd, args...)
}

// TestTimeoutBecomesDeadline checks the deadline each command is given, without running one.
func TestTimeoutBecomesDeadline(t *testing.T) {
	callerBound, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	tests := []struct {
		name         string
		ctx          context.Context
		timeout      time.Duration
		wantDeadline bool
		wantAtMost   time.Duration
	}{
		{name: "the Runner's timeout bounds the command", ctx: context.Background(), timeout: time.Minute,
			wantDeadline: true, wantAtMost: time.Minute},
		{name: "a nearer caller deadline wins", ctx: callerBound, timeout: 2 * time.Hour,
			wantDeadline: true, wantAtMost: time.Hour},
		{name: "zero timeout leaves the caller's context alone", ctx: context.Background(), timeout: 0,
			wantDeadline: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &deadlineExec{}
			if _, err := (Runner{Exec: fake, Timeout: tc.timeout}).Run(tc.ctx, "true"); err != nil {
				t.Fatal(err)
			}
			if fake.hadDeadline != tc.wantDeadline {
				t.Fatalf("command had a deadline: %v, want %v", fake.hadDeadline, tc.wantDeadline)
			}
			if tc.wantDeadline && (fake.remaining > tc.wantAtMost || fake.remaining < tc.wantAtMost-time.Minute) {
				t.Errorf("deadline %s away, want just under %s", fake.remaining, tc.wantAtMost)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	cause := errors.New("exit status 32")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "with output", err: &Error{Argv: []string{"mount", "/dev/loop0", "/mnt"}, Err: cause,
			Output: "mount: /mnt: wrong fs type, bad option.\n"},
			want: "mount /dev/loop0 /mnt: exit status 32: mount: /mnt: wrong fs type, bad option."},
		{name: "blank output is left out", err: &Error{Argv: []string{"umount", "/mnt"}, Err: cause, Output: " \n\t"},
			want: "umount /mnt: exit status 32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, cause) {
				t.Errorf("errors.Is(%v, cause) = false: Unwrap lost the cause", tc.err)
			}
			if got := tc.err.ExitStatus(); got != -1 {
				t.Errorf("ExitStatus() of an error that is no ExitError = %d, want -1", got)
			}
		})
	}
}
