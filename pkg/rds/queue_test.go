package rds

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestSessionBoundHoldsOnTheServer: however many Runs are in flight, the server never has more than
// MaxSessions sessions open at once (counted on its side, from accepting a session to answering it).
func TestSessionBoundHoldsOnTheServer(t *testing.T) {
	for _, limit := range []int{1, 3} {
		srv := newTestServer(t)
		srv.setHook(func(int, string) action {
			time.Sleep(10 * time.Millisecond) // keep each session busy so that callers pile up
			return actRun
		})
		c := srv.client(Config{MaxSessions: limit})
		const callers = 24
		var wg sync.WaitGroup
		for i := 0; i < callers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Run(context.Background(), []Cmd{mutation(t)}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := srv.mostOpen(); got > limit || got < 1 {
			t.Errorf("MaxSessions %d: the server saw %d sessions open at once", limit, got)
		}
		if got := len(srv.recorded()); got != callers {
			t.Errorf("MaxSessions %d: %d execs, want %d", limit, got, callers)
		}
	}
}

// TestQueuedCommandDoesNotTimeOutWhileWaiting: with one session and a command timeout shorter than the
// queue, every command still succeeds, because its timeout starts when it is sent.
func TestQueuedCommandDoesNotTimeOutWhileWaiting(t *testing.T) {
	srv := newTestServer(t)
	const hold, timeout, callers = 60 * time.Millisecond, 250 * time.Millisecond, 8 // the queue takes 8*60ms > 250ms
	srv.setHook(func(int, string) action {
		time.Sleep(hold)
		return actRun
	})
	c := srv.client(Config{MaxSessions: 1, CommandTimeout: timeout})
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Run(context.Background(), []Cmd{mutation(t)}); err != nil {
				t.Errorf("a queued command failed: %v", err)
			}
		}()
	}
	wg.Wait()
	// The timeout still bounds a command once sent.
	srv.setHook(func(int, string) action { return actHang })
	if _, err := c.Run(context.Background(), []Cmd{mutation(t)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a hung command: %v, want ErrUnavailable after the command timeout", err)
	}
}

// TestSessionQueueIsFIFO: free sessions go to waiters in arrival order; a waiter that gives up leaves
// the queue, and one handed a session as it gives up passes it on.
func TestSessionQueueIsFIFO(t *testing.T) {
	q := newSessionQueue(1)
	if err := q.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	gone, cancel := context.WithCancel(context.Background())
	for i := 0; i < 6; i++ {
		ctx := context.Background()
		if i == 2 {
			ctx = gone
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.acquire(ctx); err != nil {
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			q.release()
		}()
		for q.waiting() != i+1 { // wait until this caller is queued before starting the next
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	for q.waiting() != 5 {
		time.Sleep(time.Millisecond)
	}
	q.release()
	wg.Wait()
	want := []int{0, 1, 3, 4, 5}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	if err := q.acquire(context.Background()); err != nil || q.free != 0 {
		t.Errorf("after everyone left: acquire %v, free %d", err, q.free)
	}
}

// TestIdenticalReadsShareOneExec: reads of the same thing that arrive while one is in flight get its
// answer; a read that arrives after the answer asks again; mutations are never shared.
func TestIdenticalReadsShareOneExec(t *testing.T) {
	srv := newTestServer(t)
	srv.configure(func(s *testServer) {
		s.respond = (&fakeRouterOS{answers: map[string]string{"/disk print": diskListing}}).respond
	})
	release := make(chan struct{})
	srv.setHook(func(n int, _ string) action {
		if n == 1 {
			<-release
		}
		return actRun
	})
	c := srv.client(Config{})
	read := readCmd(t)
	const callers = 10
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Run(context.Background(), nil, read)
			if err != nil || len(out) != 1 || len(out[0]) != 1 {
				t.Errorf("shared read: %v %v", out, err)
			}
		}()
	}
	for c.reads.joined(readKey([]Cmd{read})) != callers {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got := len(srv.recorded()); got != 1 {
		t.Errorf("%d identical reads in flight together cost %d execs, want 1", callers, got)
	}
	if _, err := c.Run(context.Background(), nil, read); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.recorded()); got != 2 {
		t.Errorf("a later read was answered from the earlier one: %d execs, want 2", got)
	}
	// A caller that gives up does not take the others down with it.
	srv.setHook(func(n int, _ string) action {
		if n == 3 {
			time.Sleep(100 * time.Millisecond)
		}
		return actRun
	})
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	errs := make(chan error, 2)
	go func() { _, err := c.Run(short, nil, read); errs <- err }()
	go func() { _, err := c.Run(context.Background(), nil, read); errs <- err }()
	var failed, ok int
	for i := 0; i < 2; i++ {
		if err := <-errs; err == nil {
			ok++
		} else if errors.Is(err, context.DeadlineExceeded) {
			failed++
		} else {
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 || failed != 1 {
		t.Errorf("%d succeeded and %d hit their own deadline, want 1 and 1", ok, failed)
	}
}
