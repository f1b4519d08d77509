package nvme

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"
)

// recordingExec is an exec seam that runs nothing: it records each argv,
// whether the command got a context with a deadline, and answers through
// respond, which may also change a fake sysfs tree the way the real command
// would change the kernel's.
type recordingExec struct {
	t       *testing.T
	mu      sync.Mutex
	calls   [][]string
	respond func(argv []string) (string, error)
}

var _ utilexec.Interface = (*recordingExec)(nil)

func newRecordingExec(t *testing.T, respond func(argv []string) (string, error)) *recordingExec {
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
	action := func() ([]byte, []byte, error) {
		if r.respond == nil {
			return nil, nil, nil
		}
		out, err := r.respond(argv)
		return []byte(out), nil, err
	}
	fc := &testingexec.FakeCmd{
		CombinedOutputScript: []testingexec.FakeAction{action},
		OutputScript:         []testingexec.FakeAction{action},
		RunScript:            []testingexec.FakeAction{action},
	}
	return testingexec.InitFakeCmd(fc, cmd, args...)
}

func (r *recordingExec) LookPath(file string) (string, error) { return file, nil }

func (r *recordingExec) recorded() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.calls...)
}

// expectCalls fails the test unless exactly want was run, in order.
func (r *recordingExec) expectCalls(want ...[]string) {
	r.t.Helper()
	got := r.recorded()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		r.t.Errorf("commands run:\n  got  %q\n  want %q", got, want)
	}
}
