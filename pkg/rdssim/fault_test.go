package rdssim

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestFaultMatchingAndCounts(t *testing.T) {
	s := &Simulator{}
	s.SetFaults(
		Fault{Kind: FaultLatency, Latency: 10 * time.Millisecond, Match: "/disk add", Count: 2},
		Fault{Kind: FaultLatency, Latency: time.Millisecond},
		Fault{Kind: FaultHang, Match: "/disk print", Count: 1},
	)
	s.SetLatency(100 * time.Millisecond)
	for i, want := range []time.Duration{111, 111, 101} {
		if got := s.commandDelay("/disk add type=file"); got != want*time.Millisecond {
			t.Errorf("call %d: delay %v, want %v", i+1, got, want*time.Millisecond)
		}
	}
	if got := s.commandDelay(":put x"); got != 101*time.Millisecond {
		t.Errorf("unmatched command delay %v", got)
	}
	if _, hit := s.takeFault(FaultHang, "/disk add x"); hit {
		t.Error("hang matched a command without its substring")
	}
	if _, hit := s.takeFault(FaultHang, "/disk print detail"); !hit {
		t.Error("hang did not match")
	}
	if _, hit := s.takeFault(FaultHang, "/disk print detail"); hit {
		t.Error("hang#1 fired twice")
	}
	s.SetFaults()
	if _, hit := s.takeFault(FaultHang, "/disk print"); hit {
		t.Error("SetFaults() did not clear the faults")
	}
}

func TestFaultLatencyDelaysEachCommand(t *testing.T) {
	s := startSim(t, Config{Latency: 40 * time.Millisecond})
	c := dial(t, s)
	start := time.Now()
	mustRun(t, c, ":put a; :put b")
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("two commands at 40ms each took only %v", d)
	}
	s.SetLatency(0)
	s.SetFaults(Fault{Kind: FaultLatency, Latency: 60 * time.Millisecond, Match: ":put b"})
	start = time.Now()
	mustRun(t, c, ":put a; :put b")
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("latency fault on :put b: took only %v", d)
	}
}

func TestFaultDiskFull(t *testing.T) {
	s := startSim(t, Config{Faults: []Fault{{Kind: FaultDiskFull, Count: 1}}})
	c := dial(t, s)
	if out, status := run(t, c, addPVC1); status != 1 || out != "failure: not enough space"+crlf {
		t.Errorf("add under disk-full: %d %q", status, out)
	}
	if _, err := os.Stat(s.poolDir() + "/k8s/pvc-1/disk.img"); err == nil {
		t.Error("a refused add created the file")
	}
	mustRun(t, c, addPVC1) // the #1 count is used up
	s.SetFaults(Fault{Kind: FaultDiskFull})
	for _, script := range []string{
		`/disk set pvc-1 file-size=11G`,
		`/disk add type=file file-path=pool/b.img file-size=1M slot=b`,
		`/disk/btrfs/subvolume/add fs=pool-fs name=k8s/x`,
	} {
		if out, status := run(t, c, script); status != 1 || out != "failure: not enough space"+crlf {
			t.Errorf("%s under disk-full: %d %q", script, status, out)
		}
	}
	mustRun(t, c, `/disk set pvc-1 file-size=9G`) // shrinking allocates nothing
	mustRun(t, c, `/disk print detail`)
}

func TestFaultDropBefore(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	s.SetFaults(Fault{Kind: FaultDropBefore, Match: "/disk add", Count: 1})
	out, status, _ := runErr(c, ":put before; "+addPVC1+"; :put after")
	if status != noStatus || out != "before\r\n" {
		t.Errorf("drop-before: status %d output %q", status, out)
	}
	if _, _, err := runErr(c, ":put x"); err == nil {
		t.Error("the connection survived a drop")
	}
	c2 := dial(t, s)
	if out := mustRun(t, c2, `/disk print detail where slot=pvc-1`); strings.Contains(out, "pvc-1") {
		t.Errorf("the command ran although the connection dropped before it:\n%s", out)
	}
	for _, cmd := range s.Commands() {
		if strings.HasPrefix(cmd, "/disk add") {
			t.Errorf("dropped command recorded as run: %q", cmd)
		}
	}
}

func TestFaultDropAfter(t *testing.T) {
	s := startSim(t, Config{Faults: []Fault{{Kind: FaultDropAfter, Match: "/disk add", Count: 1}}})
	c := dial(t, s)
	out, status, _ := runErr(c, addPVC1+"\n:put \"marker\"\n/disk print detail where slot=pvc-1")
	if status != noStatus || out != "" {
		t.Errorf("drop-after: status %d output %q", status, out)
	}
	// The add happened: a retry must converge by reading state.
	c2 := dial(t, s)
	if out := mustRun(t, c2, `/disk print detail where slot=pvc-1`); !strings.Contains(out, `slot="pvc-1"`) {
		t.Errorf("the command before the drop did not take effect:\n%s", out)
	}
	if out, _ := run(t, c2, addPVC1); out != "failure: already have such entry"+crlf {
		t.Errorf("retry: %q", out)
	}
}

func TestFaultHang(t *testing.T) {
	s := startSim(t, Config{Faults: []Fault{{Kind: FaultHang, Match: "/disk print"}}})
	c := dial(t, s)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	sess.Stdout = &stdout
	done := make(chan error, 1)
	if err := sess.Start(":put first; /disk print detail; :put never"); err != nil {
		t.Fatal(err)
	}
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("hung command answered: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// Other sessions on the same connection still work while one hangs.
	if out := mustRun(t, c, ":put alive"); out != "alive\r\n" {
		t.Errorf("concurrent session: %q", out)
	}
	sess.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the hung command reported success once its session was closed; it never finished")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing the session did not end the hung command")
	}
	if got := stdout.String(); got != "first\r\n" {
		t.Errorf("output before the hang: %q", got)
	}
}

func TestFaultHangDoesNotBlockClose(t *testing.T) {
	s := startSim(t, Config{Faults: []Fault{{Kind: FaultHang}}})
	c := dial(t, s)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(":put x"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung behind a hung command")
	}
}

func TestFaultExitZero(t *testing.T) {
	s := startSim(t, Config{Faults: []Fault{{Kind: FaultExitZero}}})
	c := dial(t, s)
	for _, tc := range []struct{ script, want string }{
		{`/disk remove nothing`, "no such item"},
		{`/disk addd`, "bad command name addd (line 1 column 7)"},
		{addPVC1 + "; " + addPVC1, "failure: already have such entry"},
	} {
		out, status := run(t, c, tc.script)
		if status != 0 || out != tc.want+crlf {
			t.Errorf("%q: status %d output %q, want status 0 and %q", tc.script, status, out, tc.want)
		}
	}
	s.SetFaults(Fault{Kind: FaultExitZero, Match: "/file"})
	if _, status := run(t, c, `/disk remove nothing`); status != 1 {
		t.Errorf("exit-zero@/file applied to a /disk command: status %d", status)
	}
	if _, status := run(t, c, `/file remove nothing`); status != 0 {
		t.Errorf("exit-zero@/file not applied: status %d", status)
	}
}
