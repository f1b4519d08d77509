package attachment

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// recordingSink keeps the events it receives.
type recordingSink struct {
	mu     sync.Mutex
	events []recordedEvent
}

type recordedEvent struct {
	VolumeID, Reason, Message string
	Warning                   bool
}

func (s *recordingSink) Event(volumeID, reason, message string, warning bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, recordedEvent{volumeID, reason, message, warning})
}

func (s *recordingSink) reasons() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Reason)
	}
	return out
}

func (s *recordingSink) take() []recordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func newTestManager() (*Manager, *testingclock.FakeClock, *recordingSink) {
	clk := testingclock.NewFakeClock(t0)
	sink := &recordingSink{}
	return NewManager(Options{Clock: clk, Events: sink}), clk, sink
}

// op is one step of a rules scenario: attach (mode != 0) or detach (mode == 0) of a node.
type op struct {
	node string
	mode Mode
	// wantConflict lists the holders the conflict must name; nil means success.
	wantConflict []string
	// wantHolders after the step, oldest first.
	wantHolders []string
}

func attach(node string, mode Mode, holders ...string) op {
	return op{node: node, mode: mode, wantHolders: holders}
}

func conflict(node string, mode Mode, holders ...string) op {
	return op{node: node, mode: mode, wantConflict: holders, wantHolders: holders}
}

func detach(node string, holders ...string) op {
	return op{node: node, wantHolders: holders}
}

func TestAttachRules(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
	}{
		{"single-node: same node again is idempotent", []op{
			attach("a", SingleNode, "a"),
			attach("a", SingleNode, "a"),
		}},
		{"single-node: second node conflicts naming the holder", []op{
			attach("a", SingleNode, "a"),
			conflict("b", SingleNode, "a"),
			conflict("b", SingleNode, "a"),
		}},
		{"single-node: after detach another node may attach", []op{
			attach("a", SingleNode, "a"),
			detach("a"),
			attach("b", SingleNode, "b"),
		}},
		{"multi-node block: two nodes for a migration, a third conflicts", []op{
			attach("src", MultiNodeBlock, "src"),
			attach("dst", MultiNodeBlock, "src", "dst"),
			attach("dst", MultiNodeBlock, "src", "dst"),
			conflict("third", MultiNodeBlock, "src", "dst"),
			detach("src", "dst"),
			attach("third", MultiNodeBlock, "dst", "third"),
		}},
		{"the stricter mode wins: single-node holder, multi-node request", []op{
			attach("a", SingleNode, "a"),
			conflict("b", MultiNodeBlock, "a"),
		}},
		{"the stricter mode wins: multi-node holder, single-node request", []op{
			attach("a", MultiNodeBlock, "a"),
			conflict("b", SingleNode, "a"),
		}},
		{"detach of a node that does not hold it changes nothing", []op{
			attach("a", SingleNode, "a"),
			detach("zzz", "a"),
			detach("a"),
			detach("a"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, clk, _ := newTestManager()
			for i, o := range tc.ops {
				clk.Step(time.Second)
				var err error
				if o.mode == 0 {
					m.Detach("vol", o.node)
				} else {
					err = m.Attach("vol", o.node, o.mode)
				}
				var cerr *ConflictError
				switch {
				case o.wantConflict == nil && err != nil:
					t.Fatalf("step %d (%s): unexpected error %v", i, o.node, err)
				case o.wantConflict != nil && !errors.As(err, &cerr):
					t.Fatalf("step %d (%s): want a ConflictError, got %v", i, o.node, err)
				case o.wantConflict != nil:
					if !reflect.DeepEqual(cerr.Holders, o.wantConflict) || cerr.Node != o.node || cerr.VolumeID != "vol" {
						t.Fatalf("step %d: conflict %+v, want holders %v for node %s", i, cerr, o.wantConflict, o.node)
					}
					if !errors.Is(err, ErrAttachedElsewhere) {
						t.Fatalf("step %d: errors.Is(ErrAttachedElsewhere) false for %v", i, err)
					}
					for _, h := range o.wantConflict {
						if !strings.Contains(err.Error(), h) {
							t.Fatalf("step %d: message %q does not name holder %s", i, err, h)
						}
					}
				}
				if got := m.Holders("vol"); !reflect.DeepEqual(got, o.wantHolders) {
					t.Fatalf("step %d (%s): holders %v, want %v", i, o.node, got, o.wantHolders)
				}
				checkStatsAgree(t, m)
			}
		})
	}
}

func TestAttachRejectsBadInput(t *testing.T) {
	m, _, _ := newTestManager()
	tests := []struct {
		volumeID, node string
		mode           Mode
	}{{"", "n", SingleNode}, {"v", "", SingleNode}, {"v", "n", 0}, {"v", "n", Mode(9)}}
	for _, tc := range tests {
		err := m.Attach(tc.volumeID, tc.node, tc.mode)
		if err == nil || errors.Is(err, ErrAttachedElsewhere) {
			t.Errorf("Attach(%q, %q, %v) = %v, want an input error", tc.volumeID, tc.node, tc.mode, err)
		}
	}
	if len(m.ListAttachments()) != 0 {
		t.Fatal("bad input left state behind")
	}
}

func TestListAttachmentsIsACopy(t *testing.T) {
	m, clk, _ := newTestManager()
	if err := m.Attach("v1", "a", MultiNodeBlock); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute)
	if err := m.Attach("v1", "b", MultiNodeBlock); err != nil {
		t.Fatal(err)
	}
	if err := m.Attach("v2", "a", SingleNode); err != nil {
		t.Fatal(err)
	}
	want := map[string]Attachment{
		"v1": {VolumeID: "v1", Mode: MultiNodeBlock, Nodes: []NodeAttachment{{"a", t0}, {"b", t0.Add(time.Minute)}}},
		"v2": {VolumeID: "v2", Mode: SingleNode, Nodes: []NodeAttachment{{"a", t0.Add(time.Minute)}}},
	}
	got := m.ListAttachments()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListAttachments:\n got %+v\nwant %+v", got, want)
	}
	got["v1"].Nodes[0].Node = "mutated"
	delete(got, "v2")
	if again := m.ListAttachments(); !reflect.DeepEqual(again, want) {
		t.Fatalf("changing the returned map changed the manager: %+v", again)
	}
	if s := m.Stats(); s != (Stats{Volumes: 2, NodeAttachments: 3, Migrations: 1}) {
		t.Fatalf("Stats %+v", s)
	}
}

func TestMigrationEventsAndWindow(t *testing.T) {
	m, clk, sink := newTestManager()
	must(t, m.Attach("vm-disk", "src", MultiNodeBlock))
	if got := sink.take(); len(got) != 0 {
		t.Fatalf("a first attach made events %+v", got)
	}
	clk.Step(10 * time.Second)
	must(t, m.Attach("vm-disk", "dst", MultiNodeBlock))
	evs := sink.take()
	if len(evs) != 1 || evs[0].Reason != ReasonMigrationStarted || evs[0].Warning ||
		!strings.Contains(evs[0].Message, "src") || !strings.Contains(evs[0].Message, "dst") {
		t.Fatalf("want one normal MigrationStarted naming both nodes, got %+v", evs)
	}

	// Inside the window: nothing to report.
	clk.Step(DefaultMigrationWindow - time.Second)
	if got := m.CheckMigrations(); len(got) != 0 {
		t.Fatalf("reported %+v inside the window", got)
	}
	migs := m.Migrations()
	want := []Migration{{VolumeID: "vm-disk", Source: NodeAttachment{"src", t0}, Target: NodeAttachment{"dst", t0.Add(10 * time.Second)},
		Duration: DefaultMigrationWindow - time.Second}}
	if !reflect.DeepEqual(migs, want) {
		t.Fatalf("Migrations:\n got %+v\nwant %+v", migs, want)
	}

	// Past the window: one warning, once, and both nodes still hold the volume.
	clk.Step(2 * time.Second)
	if got := m.CheckMigrations(); len(got) != 1 || !got[0].OverWindow {
		t.Fatalf("CheckMigrations past the window = %+v", got)
	}
	evs = sink.take()
	if len(evs) != 1 || evs[0].Reason != ReasonMigrationWindowExceeded || !evs[0].Warning {
		t.Fatalf("want one MigrationWindowExceeded warning, got %+v", evs)
	}
	if got := m.CheckMigrations(); len(got) != 0 || len(sink.take()) != 0 {
		t.Fatalf("the same overrun was reported twice")
	}
	if h := m.Holders("vm-disk"); !reflect.DeepEqual(h, []string{"src", "dst"}) {
		t.Fatalf("holders after the overrun %v: the manager must never detach", h)
	}
	if s := m.Stats(); s.Migrations != 1 || s.MigrationsOverWindow != 1 {
		t.Fatalf("Stats %+v, want 1 migration over the window", s)
	}

	// The source detaches: the migration ends.
	m.Detach("vm-disk", "src")
	evs = sink.take()
	if len(evs) != 1 || evs[0].Reason != ReasonMigrationEnded || !strings.Contains(evs[0].Message, "dst") {
		t.Fatalf("want MigrationEnded naming the remaining node, got %+v", evs)
	}
	if s := m.Stats(); s != (Stats{Volumes: 1, NodeAttachments: 1}) {
		t.Fatalf("Stats after the migration %+v", s)
	}

	// A new migration of the same volume is a new story: it is reported again when it overruns.
	must(t, m.Attach("vm-disk", "src", MultiNodeBlock))
	sink.take()
	clk.Step(DefaultMigrationWindow + time.Second)
	if got := m.CheckMigrations(); len(got) != 1 {
		t.Fatalf("a second overrun of the same volume was not reported: %+v", got)
	}
}

func TestConflictEventIsAWarningNamingTheHolder(t *testing.T) {
	m, _, sink := newTestManager()
	must(t, m.Attach("v", "node-a", SingleNode))
	if err := m.Attach("v", "node-b", SingleNode); err == nil {
		t.Fatal("no conflict")
	}
	evs := sink.take()
	if len(evs) != 1 || evs[0].Reason != ReasonAttachConflict || !evs[0].Warning || !strings.Contains(evs[0].Message, "node-a") {
		t.Fatalf("want one AttachConflict warning naming node-a, got %+v", evs)
	}
}

func TestMigrationWindowIsConfigurable(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	sink := &recordingSink{}
	m := NewManager(Options{Clock: clk, Events: sink, MigrationWindow: 30 * time.Second})
	must(t, m.Attach("v", "a", MultiNodeBlock))
	must(t, m.Attach("v", "b", MultiNodeBlock))
	clk.Step(31 * time.Second)
	if got := m.CheckMigrations(); len(got) != 1 {
		t.Fatalf("30s window: overrun not reported after 31s")
	}
	if !strings.Contains(sink.take()[1].Message, "30s") {
		t.Fatal("the warning does not state the window")
	}
}

func TestRunMigrationWatcherWarnsOnTicks(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	sink := &recordingSink{}
	m := NewManager(Options{Clock: clk, Events: sink, MigrationWindow: time.Minute})
	must(t, m.Attach("v", "a", MultiNodeBlock))
	must(t, m.Attach("v", "b", MultiNodeBlock))
	sink.take()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.RunMigrationWatcher(ctx, 10*time.Second); close(done) }()
	// Step the fake clock tick by tick until the watcher has seen the overrun.
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.reasons()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not warn")
		}
		if clk.HasWaiters() {
			clk.Step(10 * time.Second)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if r := sink.reasons(); !reflect.DeepEqual(r, []string{ReasonMigrationWindowExceeded}) {
		t.Fatalf("events %v", r)
	}
}

func TestConcurrentAttachesGrantOneNode(t *testing.T) {
	m, _, _ := newTestManager()
	const nodes = 32
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i := 0; i < nodes; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = m.Attach("v", fmt.Sprintf("n%d", i), SingleNode)
		}(i)
	}
	wg.Wait()
	granted := 0
	for _, err := range errs {
		if err == nil {
			granted++
		} else if !errors.Is(err, ErrAttachedElsewhere) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if granted != 1 || len(m.Holders("v")) != 1 {
		t.Fatalf("%d attaches granted, holders %v; want exactly one", granted, m.Holders("v"))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
