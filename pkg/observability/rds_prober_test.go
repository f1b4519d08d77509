package observability

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedProbe answers from a list of results, one per call, and reports each call on a channel
// so the test can step the prober deterministically.
type scriptedProbe struct {
	mu      sync.Mutex
	results []probeResult
	calls   int
	called  chan int
}

type probeResult struct {
	pool PoolStatus
	err  error
}

func (p *scriptedProbe) probe(ctx context.Context) (PoolStatus, error) {
	p.mu.Lock()
	i := p.calls
	p.calls++
	p.mu.Unlock()
	defer func() { p.called <- i }()
	if i < len(p.results) {
		return p.results[i].pool, p.results[i].err
	}
	<-ctx.Done() // past the script: hang like an unreachable RDS until the timeout
	return PoolStatus{}, ctx.Err()
}

func TestRDSProberGauges(t *testing.T) {
	m := NewMetrics()
	if family(t, m, "rds_csi_rds_reachable") != nil {
		t.Fatal("reachability gauge present before any prober runs")
	}
	p := &scriptedProbe{called: make(chan int), results: []probeResult{
		{PoolStatus{}, nil}, // reachable, pool not read
		{PoolStatus{}, errors.New("ssh: handshake failed")},
		{PoolStatus{TotalBytes: 1000, FreeBytes: 400}, nil},
		{PoolStatus{}, nil}, // reachable again, pool not read: keeps the last capacity
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proberDone := make(chan struct{})
	go func() { m.RunRDSProber(ctx, time.Millisecond, 50*time.Millisecond, p.probe); close(proberDone) }()

	steps := []struct {
		reachable          float64
		poolSize, poolFree float64 // -1: absent
	}{
		{1, -1, -1},
		{0, -1, -1},
		{1, 1000, 400},
		{1, 1000, 400},
		{0, 1000, 400}, // the hanging probe times out
	}
	for i, s := range steps {
		<-p.called
		// The gauges are written right after the probe returns; wait for that write.
		waitFor(t, func() bool { return gaugeValue(t, m, "rds_csi_rds_reachable") == s.reachable })
		for name, want := range map[string]float64{"rds_csi_rds_pool_size_bytes": s.poolSize, "rds_csi_rds_pool_free_bytes": s.poolFree} {
			mf := family(t, m, name)
			switch {
			case want < 0 && mf != nil:
				t.Errorf("step %d: %s present before a probe read the pool", i, name)
			case want >= 0 && (mf == nil || mf.GetMetric()[0].GetGauge().GetValue() != want):
				t.Errorf("step %d: %s = %v, want %v", i, name, mf, want)
			}
		}
	}
	cancel()
	// The prober may be blocked handing over its next call; let it finish and exit.
	go func() {
		for range p.called {
		}
	}()
	<-proberDone

	// Scrapes only read cached values: they never call the probe.
	p.mu.Lock()
	before := p.calls
	p.mu.Unlock()
	for i := 0; i < 5; i++ {
		if body := scrape(t, m); !strings.Contains(body, "rds_csi_rds_reachable") {
			t.Fatal("scrape lacks rds_csi_rds_reachable")
		}
	}
	p.mu.Lock()
	after := p.calls
	p.mu.Unlock()
	if after != before {
		t.Fatalf("scrapes called the probe %d times", after-before)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
