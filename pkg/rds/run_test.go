package rds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const diskListing = "Flags: B - BLOCK-DEVICE; t - NVME-TCP-EXPORT\r\n" +
	" 0 Bt type=file slot=\"pvc-1\" model=\"/pool/k8s/pvc-1/disk.img\" size=1 073 741 824\r\n" +
	"      nvme-tcp-export=yes nvme-tcp-server-port=4420\r\n" +
	"      nvme-tcp-server-nqn=\"nqn.2000-02.com.mikrotik:pvc-1\" file-path=/pool/k8s/pvc-1/disk.img\r\n" +
	"      file-size=1.0GiB mount-filesystem=no\r\n"

// fakeRouterOS answers command lines by prefix, and records which ones it was asked.
type fakeRouterOS struct {
	mu      sync.Mutex
	asked   []string
	answers map[string]string // prefix -> output of a command that succeeds
	fails   map[string]string // prefix -> output of a command that fails (stops the script)
}

func (f *fakeRouterOS) respond(cmd string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, cmd)
	for p, out := range f.fails {
		if strings.HasPrefix(cmd, p) {
			return out, true
		}
	}
	for p, out := range f.answers {
		if strings.HasPrefix(cmd, p) {
			return out, false
		}
	}
	return "", false
}

func (f *fakeRouterOS) askedCmds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

func createCmds(t *testing.T) (steps []Cmd, read Cmd) {
	t.Helper()
	sub, err := AddSubvolume("pool", "k8s/pvc-1")
	if err != nil {
		t.Fatal(err)
	}
	add, err := AddFileDisk(FileDiskSpec{Slot: "pvc-1", FilePath: "pool/k8s/pvc-1/disk.img", SizeBytes: 1 << 30,
		NQN: "nqn.2000-02.com.mikrotik:pvc-1"})
	if err != nil {
		t.Fatal(err)
	}
	read, err = PrintDisks(Eq("slot", "pvc-1"))
	if err != nil {
		t.Fatal(err)
	}
	return []Cmd{sub, add}, read
}

func deleteCmds(t *testing.T) []Cmd {
	t.Helper()
	rd, _ := RemoveDisk("pvc-1")
	rf, _ := RemoveFile("pool/k8s/pvc-1/disk.img")
	rs, _ := RemoveSubvolume("pool", "k8s/pvc-1")
	return []Cmd{rd, rf, rs}
}

type observation struct{ verb, outcome string }

// TestRun runs the same cases as one script per call and as one exec per command, with the RDS sending
// an exit status of 1 on failure, of 0 always, or none at all: the outcome must not depend on it.
func TestRun(t *testing.T) {
	type exitMode struct {
		name      string
		onFailure int
		none      bool
	}
	exits := []exitMode{{"exit 1 on failure", 1, false}, {"exit 0 always", 0, false}, {"no exit status", 0, true}}
	tests := []struct {
		name    string
		answers map[string]string
		fails   map[string]string
		steps   func(t *testing.T) ([]Cmd, []Cmd)
		wantErr error
		// wantAsked are the command lines the RDS must have run, in order.
		wantAsked []string
		wantItems []int
	}{
		{
			name:    "steps then read",
			answers: map[string]string{"/disk print": diskListing},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				s, r := createCmds(t)
				return s, []Cmd{r}
			},
			wantAsked: []string{"/disk/btrfs/subvolume/add", "/disk add", "/disk print"},
			wantItems: []int{1},
		},
		{
			name:    "several reads keep their own output",
			answers: map[string]string{"/disk print": diskListing, "/file print": "Flags: \r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				_, r := createCmds(t)
				f, _ := PrintFiles(Eq("name", "pool/k8s/pvc-1/disk.img"))
				return nil, []Cmd{r, f, r}
			},
			wantAsked: []string{"/disk print", "/file print", "/disk print"},
			wantItems: []int{1, 0, 1},
		},
		{
			name:  "a failing step stops everything after it",
			fails: map[string]string{"/disk add": "failure: not enough space\r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				s, r := createCmds(t)
				return s, []Cmd{r}
			},
			wantErr:   ErrNoSpace,
			wantAsked: []string{"/disk/btrfs/subvolume/add", "/disk add"},
		},
		{
			name:  "an entry that exists",
			fails: map[string]string{"/disk/btrfs/subvolume/add": "failure: already have such entry\r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				s, r := createCmds(t)
				return s, []Cmd{r}
			},
			wantErr:   ErrAlreadyExists,
			wantAsked: []string{"/disk/btrfs/subvolume/add"},
		},
		{
			name:  "removing what is already gone is done, and the rest still runs",
			fails: map[string]string{"/disk remove": "no such item\r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				_, r := createCmds(t)
				return deleteCmds(t), []Cmd{r}
			},
			wantAsked: []string{"/disk remove", "/file remove", "/disk/btrfs/subvolume/remove", "/disk print"},
			wantItems: []int{0},
		},
		{
			name:  "an unknown error text",
			fails: map[string]string{"/disk add": "failure: the moon is in the wrong phase\r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				s, _ := createCmds(t)
				return s, nil
			},
			wantErr:   ErrProtocol,
			wantAsked: []string{"/disk/btrfs/subvolume/add", "/disk add"},
		},
		{
			name:    "a read that prints an error instead of a listing",
			answers: map[string]string{"/disk print": "not enough permissions (9)\r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				_, r := createCmds(t)
				return nil, []Cmd{r}
			},
			wantErr:   ErrPermission,
			wantAsked: []string{"/disk print"},
		},
		{
			name:    "a read that prints garbage",
			answers: map[string]string{"/disk print": "Flags: B\r\n 0 B slot=\"unterminated\r\n"},
			steps: func(t *testing.T) ([]Cmd, []Cmd) {
				_, r := createCmds(t)
				return nil, []Cmd{r}
			},
			wantErr:   ErrProtocol,
			wantAsked: []string{"/disk print"},
		},
	}
	for _, mode := range []bool{false, true} {
		for _, ex := range exits {
			for _, tc := range tests {
				name := fmt.Sprintf("one-per-exec=%v/%s/%s", mode, ex.name, tc.name)
				t.Run(name, func(t *testing.T) {
					srv := newTestServer(t)
					fake := &fakeRouterOS{answers: tc.answers, fails: tc.fails}
					srv.configure(func(s *testServer) { s.respond, s.exitOnFailure, s.noExitStatus = fake.respond, ex.onFailure, ex.none })
					var mu sync.Mutex
					var seen []observation
					c := srv.client(Config{OneCommandPerExec: mode, Observe: func(verb, outcome string, d time.Duration) {
						mu.Lock()
						seen = append(seen, observation{verb, outcome})
						mu.Unlock()
					}})
					steps, reads := tc.steps(t)
					out, err := c.Run(context.Background(), steps, reads...)
					if tc.wantErr == nil && err != nil {
						t.Fatalf("Run: %v", err)
					}
					if tc.wantErr != nil {
						var ce *CommandError
						if !errors.Is(err, tc.wantErr) || !errors.As(err, &ce) {
							t.Fatalf("Run error %v, want a CommandError of kind %v", err, tc.wantErr)
						}
						if ce.Output == "" || ce.Step == "" {
							t.Errorf("CommandError lost the RouterOS text or the step: %#v", ce)
						}
						if last := tc.wantAsked[len(tc.wantAsked)-1]; !strings.HasPrefix(ce.Step, last) {
							t.Errorf("failing step %q, want the one starting %q", ce.Step, last)
						}
					}
					asked := fake.askedCmds()
					if len(asked) != len(tc.wantAsked) {
						t.Fatalf("the RDS ran %q, want commands starting %q", asked, tc.wantAsked)
					}
					for i, p := range tc.wantAsked {
						if !strings.HasPrefix(asked[i], p) {
							t.Errorf("command %d was %q, want %q...", i, asked[i], p)
						}
					}
					if tc.wantErr == nil {
						if len(out) != len(tc.wantItems) {
							t.Fatalf("%d results, want %d", len(out), len(tc.wantItems))
						}
						for i, n := range tc.wantItems {
							if len(out[i]) != n {
								t.Errorf("read %d: %d items, want %d", i, len(out[i]), n)
							}
						}
					}
					execs := len(srv.recorded())
					mu.Lock()
					defer mu.Unlock()
					if len(seen) != execs {
						t.Errorf("Observe was called %d times for %d execs: %v", len(seen), execs, seen)
					}
					if !mode && execs > 2 {
						t.Errorf("a script took %d execs", execs)
					}
				})
			}
		}
	}
}

// TestRunScriptShape checks the script itself: the commands in order, each followed by its own marker,
// in one exec.
func TestRunScriptShape(t *testing.T) {
	srv := newTestServer(t)
	fake := &fakeRouterOS{answers: map[string]string{"/disk print": diskListing}}
	srv.configure(func(s *testServer) { s.respond = fake.respond })
	c := srv.client(Config{})
	steps, read := createCmds(t)
	out, err := c.Run(context.Background(), steps, read)
	if err != nil {
		t.Fatal(err)
	}
	disks, err := DisksFrom(out[0])
	if err != nil || len(disks) != 1 || disks[0].SizeBytes != 1<<30 || disks[0].FilePath != "pool/k8s/pvc-1/disk.img" {
		t.Fatalf("read-back: %+v, %v", disks, err)
	}
	scripts := srv.recorded()
	if len(scripts) != 1 {
		t.Fatalf("%d execs, want 1", len(scripts))
	}
	lines := strings.Split(strings.TrimSpace(scripts[0]), "\n")
	want := []string{steps[0].String(), steps[1].String(), read.String()}
	if len(lines) != 2*len(want) {
		t.Fatalf("script has %d lines, want %d:\n%s", len(lines), 2*len(want), scripts[0])
	}
	markers := map[string]bool{}
	for i, w := range want {
		if lines[2*i] != w {
			t.Errorf("line %d = %q, want %q", 2*i+1, lines[2*i], w)
		}
		if !strings.HasPrefix(lines[2*i+1], `:put "rds-csi-`) || markers[lines[2*i+1]] {
			t.Errorf("line %d = %q, want a fresh marker", 2*i+2, lines[2*i+1])
		}
		markers[lines[2*i+1]] = true
	}
	// Markers differ between calls, so an old output can never pass for a new one.
	if _, err := c.Run(context.Background(), steps, read); err != nil {
		t.Fatal(err)
	}
	if second := srv.recorded()[1]; strings.Contains(second, strings.TrimPrefix(lines[1], ":put ")) {
		t.Errorf("marker reused across calls")
	}
}

func TestRunCompleteButFailedExit(t *testing.T) {
	srv := newTestServer(t)
	srv.configure(func(s *testServer) { s.exitOnSuccess = 1 })
	c := srv.client(Config{})
	steps, _ := createCmds(t)
	_, err := c.Run(context.Background(), steps)
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "exited with status 1") {
		t.Fatalf("Run = %v, want ErrProtocol about the exit status", err)
	}
}

// TestRunStrictWhenTheScriptGoesOn: a RouterOS that goes on after an error prints every marker, with the
// error where it happened. Any text of a mutation is then its failure, of the kind the text names, whatever
// the exit status; only "no such item" of a removal is done.
func TestRunStrictWhenTheScriptGoesOn(t *testing.T) {
	for _, exit := range []int{0, 1} {
		for _, tc := range []struct {
			name     string
			fails    map[string]string
			answers  map[string]string
			steps    func(t *testing.T) []Cmd
			wantErr  error
			wantStep int // index of the step the error names
		}{
			{"no space at the disk", map[string]string{"/disk add": "failure: not enough space\r\n"}, nil,
				func(t *testing.T) []Cmd { s, _ := createCmds(t); return s }, ErrNoSpace, 1},
			{"unknown fs at the subvolume", map[string]string{"/disk/btrfs/subvolume/add": "input does not match any value of fs\r\n"}, nil,
				func(t *testing.T) []Cmd { s, _ := createCmds(t); return s }, ErrInvalid, 0},
			{"a word that is no known error", nil, map[string]string{"/disk add": "warning: disk is slow\r\n"},
				func(t *testing.T) []Cmd { s, _ := createCmds(t); return s }, ErrProtocol, 1},
			{"removal of what is gone", map[string]string{"/disk remove": "no such item\r\n"}, nil,
				deleteCmds, nil, 0},
		} {
			t.Run(fmt.Sprintf("%s/exit %d", tc.name, exit), func(t *testing.T) {
				srv := newTestServer(t)
				fake := &fakeRouterOS{fails: tc.fails, answers: tc.answers}
				srv.configure(func(s *testServer) { s.respond, s.goOn, s.exitOnFailure = fake.respond, true, exit })
				c := srv.client(Config{})
				steps := tc.steps(t)
				_, err := c.Run(context.Background(), steps)
				if tc.wantErr == nil {
					if err != nil {
						t.Fatalf("Run = %v, want success", err)
					}
					return
				}
				var ce *CommandError
				if !errors.Is(err, tc.wantErr) || !errors.As(err, &ce) || ce.Step != steps[tc.wantStep].String() {
					t.Fatalf("Run = %v, want %v at %q", err, tc.wantErr, steps[tc.wantStep])
				}
			})
		}
	}
}

// TestRunLearnsThatTheRDSGoesOn: once a script showed that the RDS ran commands after a failed one, every
// later command gets an exec of its own, so a failed subvolume add can no longer be followed by a disk add
// in the same script.
func TestRunLearnsThatTheRDSGoesOn(t *testing.T) {
	srv := newTestServer(t)
	fake := &fakeRouterOS{fails: map[string]string{"/disk/btrfs/subvolume/add": "failure: not enough space\r\n"}}
	srv.configure(func(s *testServer) { s.respond, s.goOn, s.exitOnFailure = fake.respond, true, 1 })
	c := srv.client(Config{})
	steps, read := createCmds(t)
	if _, err := c.Run(context.Background(), steps, read); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("first run: %v", err)
	}
	srv.mu.Lock()
	before := len(srv.scripts)
	srv.mu.Unlock()
	fake.mu.Lock()
	fake.fails, fake.answers, fake.asked = nil, map[string]string{"/disk print": diskListing}, nil
	fake.mu.Unlock()
	if _, err := c.Run(context.Background(), steps, read); err != nil {
		t.Fatalf("second run: %v", err)
	}
	srv.mu.Lock()
	execs := len(srv.scripts) - before
	srv.mu.Unlock()
	if execs != 3 {
		t.Fatalf("after the RDS went on, two steps and a read took %d execs, want 3", execs)
	}
}

func TestRunSilentStop(t *testing.T) {
	srv := newTestServer(t)
	srv.configure(func(s *testServer) { s.respond = (&fakeRouterOS{fails: map[string]string{"/disk add": ""}}).respond })
	c := srv.client(Config{})
	steps, _ := createCmds(t)
	_, err := c.Run(context.Background(), steps)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a script that stopped without a word = %v, want ErrUnavailable (outcome unknown)", err)
	}
}

func TestRunScriptRefusedAtParse(t *testing.T) {
	// RouterOS may refuse the whole script before running any of it; the line number names the culprit.
	srv := newTestServer(t)
	srv.configure(func(s *testServer) {
		s.respond = func(cmd string) (string, bool) { return "expected end of command (line 3 column 40)\r\n", true }
	})
	c := srv.client(Config{})
	steps, read := createCmds(t)
	_, err := c.Run(context.Background(), steps, read)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Step != steps[1].String() {
		t.Fatalf("Run = %v, want the failure pinned on line 3, the disk add", err)
	}
}

func TestTrafficAndPing(t *testing.T) {
	srv := newTestServer(t)
	fake := &fakeRouterOS{answers: map[string]string{"/disk monitor-traffic": "" +
		"             slot: pvc-1\r\n         read-ops: 1 234\r\n      write-bytes: 5 056 000\r\n" +
		"        read-rate: 12.8Mbps\r\n    in-flight-ops: 0\r\n"}}
	srv.configure(func(s *testServer) { s.respond = fake.respond })
	c := srv.client(Config{})
	got, err := c.Traffic(context.Background(), "pvc-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"read-ops": 1234, "write-bytes": 5056000, "read-rate": 12800000, "in-flight-ops": 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Traffic = %v, want %v", got, want)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if last := srv.recorded()[1]; last != `:put "ping"` {
		t.Errorf("Ping sent %q", last)
	}
	srv.setHook(func(int, string) action { return actWrongOutput })
	var ce *CommandError
	if err := c.Ping(context.Background()); !errors.Is(err, ErrProtocol) || !errors.As(err, &ce) {
		t.Fatalf("Ping answered with something else = %v, want ErrProtocol", err)
	}
}

func TestObserveVerbs(t *testing.T) {
	tests := []struct {
		oneCmd bool
		steps  int
		want   []observation
	}{
		{false, 2, []observation{{"script", "ok"}}},
		{false, 0, []observation{{"disk.print", "ok"}}},
		{true, 2, []observation{{"subvolume.add", "ok"}, {"disk.add", "ok"}, {"disk.print", "ok"}}},
	}
	for _, tc := range tests {
		srv := newTestServer(t)
		var seen []observation
		var mu sync.Mutex
		c := srv.client(Config{OneCommandPerExec: tc.oneCmd, Observe: func(verb, outcome string, d time.Duration) {
			mu.Lock()
			seen = append(seen, observation{verb, outcome})
			mu.Unlock()
		}})
		steps, read := createCmds(t)
		if _, err := c.Run(context.Background(), steps[:tc.steps], read); err != nil {
			t.Fatal(err)
		}
		srv.setHook(func(int, string) action { return actDropBefore })
		_, _ = c.Run(context.Background(), steps[:1])
		mu.Lock()
		want := append(tc.want, observation{"subvolume.add", "unavailable"})
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("one-per-exec=%v steps=%d: observed %v, want %v", tc.oneCmd, tc.steps, seen, want)
		}
		mu.Unlock()
	}
}
