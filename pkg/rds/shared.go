package rds

import (
	"context"
	"sync"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// sharedReads lets identical reads that arrive while one is in flight share its round trip (design §3:
// reads of the same state that arrive together can share one exec). Only reads are shared, and only
// with callers that arrived before the answer: each still sees the RDS's state as of a moment after it
// asked. Mutations are never shared.
type sharedReads struct {
	mu    sync.Mutex
	calls map[string]*sharedCall
}

type sharedCall struct {
	done   chan struct{}
	out    [][]routeros.Item
	err    error
	joined int // callers sharing it (for tests)
}

// joined is how many callers share the read in flight for key (0 if none is).
func (s *sharedReads) joined(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if call := s.calls[key]; call != nil {
		return call.joined
	}
	return 0
}

// do runs read for key, or waits for the same key's read in flight. The read runs detached from any one
// caller's context (so the first caller giving up does not fail the others) but never longer than the
// client's own bounds; each caller stops waiting when its own context ends. The items returned are shared
// between callers and must not be changed.
func (s *sharedReads) do(ctx context.Context, key string, read func(context.Context) ([][]routeros.Item, error),
	ended func(context.Context) error) ([][]routeros.Item, error) {
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]*sharedCall{}
	}
	call, ok := s.calls[key]
	if !ok {
		call = &sharedCall{done: make(chan struct{})}
		s.calls[key] = call
		go func() {
			call.out, call.err = read(context.WithoutCancel(ctx))
			s.mu.Lock()
			delete(s.calls, key)
			s.mu.Unlock()
			close(call.done)
		}()
	}
	call.joined++
	s.mu.Unlock()
	select {
	case <-call.done:
		return call.out, call.err
	case <-ctx.Done():
		return nil, ended(ctx)
	}
}
