package rds

import (
	"container/list"
	"context"
	"sync"
)

// sessionQueue bounds the exec sessions open at once and hands free ones out in arrival order. RouterOS
// limits the sessions it serves; a burst of 200 CSI calls must wait here, in order, rather than open
// sessions the RDS refuses or make the RDS slower for everyone. A buffered channel as a semaphore would
// bound them too, but the Go spec does not promise its waiters FIFO order.
type sessionQueue struct {
	mu      sync.Mutex
	free    int
	waiters list.List // of chan struct{}, oldest first
}

func newSessionQueue(n int) *sessionQueue { return &sessionQueue{free: n} }

// acquire waits for a free session, in arrival order, until ctx ends.
func (q *sessionQueue) acquire(ctx context.Context) error {
	q.mu.Lock()
	if q.free > 0 && q.waiters.Len() == 0 {
		q.free--
		q.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	e := q.waiters.PushBack(ready)
	q.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		q.mu.Lock()
		select {
		case <-ready:
			// Handed a session just as ctx ended: pass it on.
			q.mu.Unlock()
			q.release()
		default:
			q.waiters.Remove(e)
			q.mu.Unlock()
		}
		return ctx.Err()
	}
}

// release returns a session: to the oldest waiter if there is one.
func (q *sessionQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if front := q.waiters.Front(); front != nil {
		q.waiters.Remove(front)
		close(front.Value.(chan struct{}))
		return
	}
	q.free++
}

// waiting is how many callers wait for a session (for tests and metrics).
func (q *sessionQueue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiters.Len()
}
