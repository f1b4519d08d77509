package attachment

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// LeaderElection runs the controller's own background loops (the migration watcher, RDS probes
// that warn) on one replica at a time, through a coordination.k8s.io Lease. The attachment state
// itself needs no leader: every replica follows the informers.
type LeaderElection struct {
	Client    kubernetes.Interface
	Namespace string
	// LeaseName is shared by all replicas, e.g. "rds-csi-controller".
	LeaseName string
	// Identity must differ between replicas; hostname plus a random suffix when empty.
	Identity string
	// Durations of client-go's leader election; 15s, 10s and 2s when zero.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// OnNewLeader, when set, is told the identity of each leader this replica observes (its own
	// included), as client-go reports them; a standby's first call is proof it has read the lease.
	OnNewLeader func(identity string)

	// Leadership is true while this replica holds the lease and runs the loops (IsLeader).
	Leadership
}

// Leadership says whether this process runs the controller's background loops right now. It is the one
// definition of "leading": LeaderElection keeps one, a controller without leader election runs its loops
// under its own, and the rds_csi_controller_leader gauge reads whichever the process has.
type Leadership struct {
	leading atomic.Bool
}

// IsLeader reports whether this process runs the background loops right now.
func (l *Leadership) IsLeader() bool { return l.leading.Load() }

// Lead runs loops as the leader: IsLeader is true from now until loops returns (or the lease is lost).
func (l *Leadership) Lead(ctx context.Context, loops func(ctx context.Context)) {
	l.leading.Store(true)
	defer l.leading.Store(false)
	loops(ctx)
}

// stepDown ends the leadership at once, before the loops have wound down; it reports whether this
// process was leading.
func (l *Leadership) stepDown() bool { return l.leading.Swap(false) }

// Run campaigns for the lease until ctx ends. Each time this replica becomes leader it calls
// lead with a context that ends when leadership is lost, waits for lead to return, and campaigns
// again, so the loops never run twice in one process. On ctx's end the lease is released, letting
// a standby take over without waiting for the lease to expire.
func (le *LeaderElection) Run(ctx context.Context, lead func(ctx context.Context)) error {
	if le.Client == nil || le.Namespace == "" || le.LeaseName == "" {
		return fmt.Errorf("leader election needs a client, a namespace and a lease name")
	}
	id := le.Identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + rand.String(6)
	}
	lock := &resourcelock.LeaseLock{
		Client:     le.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	lock.LeaseMeta.Namespace = le.Namespace
	lock.LeaseMeta.Name = le.LeaseName
	cfg := leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   orDefault(le.LeaseDuration, 15*time.Second),
		RenewDeadline:   orDefault(le.RenewDeadline, 10*time.Second),
		RetryPeriod:     orDefault(le.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            le.LeaseName,
	}
	for ctx.Err() == nil {
		// client-go starts OnStartedLeading in a goroutine and does not wait for it; track it
		// here so that the next campaign starts only after lead has returned.
		var mu sync.Mutex
		var running chan struct{}
		stopped := false
		cfg.Callbacks = leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				mu.Lock()
				if stopped {
					mu.Unlock()
					return
				}
				running = make(chan struct{})
				done := running
				mu.Unlock()
				defer close(done)
				klog.InfoS("Became leader", "lease", le.Namespace+"/"+le.LeaseName, "identity", id)
				le.Lead(leadCtx, lead)
			},
			OnNewLeader: func(identity string) {
				if le.OnNewLeader != nil {
					le.OnNewLeader(identity)
				}
			},
			OnStoppedLeading: func() {
				if le.stepDown() {
					klog.InfoS("Not leader any more", "lease", le.Namespace+"/"+le.LeaseName, "identity", id)
				}
			},
		}
		elector, err := leaderelection.NewLeaderElector(cfg)
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		elector.Run(ctx)
		mu.Lock()
		stopped = true
		done := running
		mu.Unlock()
		if done != nil {
			<-done
		}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
