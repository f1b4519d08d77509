package rdssim

import (
	"context"
	"sync"
	"testing"
	"time"
)

// sleepRecorder stands in for the simulator's sleep and records every delay it is asked for.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *sleepRecorder) sleep(ctx context.Context, d time.Duration) bool {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	return ctx.Err() == nil
}

func (r *sleepRecorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.delays
	r.delays = nil
	return out
}

// startRecordingSim starts a simulator whose delays are recorded instead of slept.
func startRecordingSim(t *testing.T, cfg Config) (*Simulator, *sleepRecorder) {
	t.Helper()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sleepRecorder{}
	s.sleep = rec.sleep // before Start: every session goroutine starts after this write
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

// TestLatencyModel checks what each exec is charged: --latency once per exec whatever the script holds
// (even a script that does not parse: the round trip happened), --command-latency once per command run,
// latency faults on top of the command latency for the commands they match.
func TestLatencyModel(t *testing.T) {
	const rtt, cmd = 30 * time.Millisecond, 2 * time.Millisecond
	for _, tc := range []struct {
		name        string
		latency     time.Duration
		cmdLatency  time.Duration
		faults      []Fault
		script      string
		wantDelays  []time.Duration
		wantFailure bool
	}{
		{name: "one command, round trip only", latency: rtt, script: ":put a",
			wantDelays: []time.Duration{rtt}},
		{name: "five commands, round trip once", latency: rtt, script: ":put a; :put b; :put c\n:put d\n:put e",
			wantDelays: []time.Duration{rtt}},
		{name: "per command on top", latency: rtt, cmdLatency: cmd, script: ":put a; :put b; :put c",
			wantDelays: []time.Duration{rtt, cmd, cmd, cmd}},
		{name: "per command alone", cmdLatency: cmd, script: ":put a; :put b",
			wantDelays: []time.Duration{cmd, cmd}},
		{name: "stops at the failing command", latency: rtt, cmdLatency: cmd,
			script: ":put a; /disk remove nothing; :put c", wantDelays: []time.Duration{rtt, cmd, cmd}, wantFailure: true},
		{name: "parse error still pays the round trip", latency: rtt, cmdLatency: cmd, script: ":put a; /disk addd",
			wantDelays: []time.Duration{rtt}, wantFailure: true},
		{name: "latency fault adds to its command", latency: rtt, cmdLatency: cmd,
			faults: []Fault{{Kind: FaultLatency, Latency: 50 * time.Millisecond, Match: ":put b"}},
			script: ":put a; :put b", wantDelays: []time.Duration{rtt, cmd, cmd + 50*time.Millisecond}},
		{name: "no latency, no sleep", script: ":put a; :put b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec := startRecordingSim(t, Config{Latency: tc.latency, CommandLatency: tc.cmdLatency, Faults: tc.faults})
			c := dial(t, s)
			_, status := run(t, c, tc.script)
			if (status != 0) != tc.wantFailure {
				t.Fatalf("status %d, want failure %v", status, tc.wantFailure)
			}
			var got []time.Duration
			for _, d := range rec.take() {
				if d > 0 {
					got = append(got, d)
				}
			}
			if len(got) != len(tc.wantDelays) {
				t.Fatalf("delays %v, want %v", got, tc.wantDelays)
			}
			for i := range got {
				if got[i] != tc.wantDelays[i] {
					t.Errorf("delay %d: %v, want %v (all: %v)", i, got[i], tc.wantDelays[i], got)
				}
			}
		})
	}
}

// TestLatencyIsReallySlept: with the real sleep an exec takes at least its round trip, and a script of many
// commands at zero command latency is not charged the round trip per command (a lower bound only: the
// upper bound would be a timed assertion on a shared machine).
func TestLatencyIsReallySlept(t *testing.T) {
	const rtt = 40 * time.Millisecond
	s := startSim(t, Config{Latency: rtt})
	c := dial(t, s)
	start := time.Now()
	mustRun(t, c, ":put a; :put b; :put c")
	if d := time.Since(start); d < rtt {
		t.Errorf("an exec at --latency %v took only %v", rtt, d)
	}
	s.SetLatency(0)
	s.SetCommandLatency(rtt)
	start = time.Now()
	mustRun(t, c, ":put a; :put b")
	if d := time.Since(start); d < 2*rtt {
		t.Errorf("two commands at --command-latency %v took only %v", rtt, d)
	}
}

// TestLatencyHonoursClosedSession: a client that gives up during the round trip ends the exec; nothing
// runs after it.
func TestLatencyHonoursClosedSession(t *testing.T) {
	s := startSim(t, Config{Latency: time.Hour})
	c := dial(t, s)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(`/disk add type=file file-path=pool/x.img file-size=1M slot=x`); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	s.Close()
	for _, cmd := range s.Commands() {
		t.Errorf("command ran after the client left during the round trip: %s", cmd)
	}
}
