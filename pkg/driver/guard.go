package driver

import (
	"fmt"
	"sync"
)

// guard admits one operation per key at a time. A second one is refused at once (the CSI sidecars retry
// on Aborted) instead of queueing behind a slow SSH call and piling up.
type guard struct {
	mu       sync.Mutex
	inFlight map[string]struct{}
}

func newGuard() *guard { return &guard{inFlight: map[string]struct{}{}} }

// acquire takes the key or returns errBusy; the returned func releases it.
func (g *guard) acquire(key string) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, busy := g.inFlight[key]; busy {
		return nil, fmt.Errorf("%q: %w", key, errBusy)
	}
	g.inFlight[key] = struct{}{}
	return func() {
		g.mu.Lock()
		delete(g.inFlight, key)
		g.mu.Unlock()
	}, nil
}
