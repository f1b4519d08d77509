package rdssim

import (
	"slices"
	"sync"
)

// keyLocks serialises the commands that touch the same disk slot or pool path, so that their file work (a
// sparse file made, a snapshot copied) can run outside the state lock: commands on different disks then run
// side by side, and only their short commits queue on the state lock (exec.go mutate).
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*nameLock
}

type nameLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the locks of keys (in a fixed order, so that two commands never wait for each other) and
// returns the function that releases them.
func (n *keyLocks) lock(keys ...string) (unlock func()) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	locks := make([]*nameLock, len(keys))
	n.mu.Lock()
	if n.held == nil {
		n.held = map[string]*nameLock{}
	}
	for i, k := range keys {
		l := n.held[k]
		if l == nil {
			l = &nameLock{}
			n.held[k] = l
		}
		l.refs++
		locks[i] = l
	}
	n.mu.Unlock()
	for _, l := range locks {
		l.mu.Lock()
	}
	return func() {
		for _, l := range locks {
			l.mu.Unlock()
		}
		n.mu.Lock()
		for i, k := range keys {
			if locks[i].refs--; locks[i].refs == 0 {
				delete(n.held, k)
			}
		}
		n.mu.Unlock()
	}
}
