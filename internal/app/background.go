package app

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/observability"
)

// EventComponent is the source component of the events the controller records.
const EventComponent = "rds-csi-controller"

// stopTimeout bounds how long a stopping controller waits for its loops to end and its Lease to be
// released; releasing lets a standby take over at once instead of after the lease duration.
const stopTimeout = 10 * time.Second

// controllerBackground is the controller's life beside its RPCs: the attachment state following the
// cluster (on every replica, so any replica answers publishes with the truth), and the background loops
// (the migration-window watcher) on one replica at a time.
type controllerBackground struct {
	nodes driver.Nodes // nil without Kubernetes
	// leadership is true while this process runs the background loops: the leader election's, or one of
	// its own when there is none.
	leadership *attachment.Leadership
	cancel     context.CancelFunc
	done       chan struct{}
	stopEvents func()
}

// startControllerBackground connects the attachment manager to Kubernetes when there is a cluster (see
// kubeRestConfig) and returns once its state is complete, so the first RPC is answered from the whole
// truth; then it starts the background loops, under leader election when enabled. Without a cluster the
// manager stays in memory and the loops run here: there is no other replica to share them with.
func startControllerBackground(ctx context.Context, cfg Config, m *attachment.Manager, metrics *observability.Metrics) (*controllerBackground, error) {
	restCfg, source, err := kubeRestConfig(cfg.Kubeconfig, cfg.Version)
	if err != nil {
		return nil, err
	}
	logKubeClient(restCfg, source)
	var le *attachment.LeaderElection
	if restCfg != nil && cfg.LeaderElection {
		if le, err = newLeaderElection(cfg, restCfg); err != nil {
			return nil, err
		}
	}
	bgCtx, cancel := context.WithCancel(ctx)
	bg := &controllerBackground{leadership: &attachment.Leadership{}, cancel: cancel, done: make(chan struct{}), stopEvents: func() {}}
	if le != nil {
		bg.leadership = &le.Leadership
	}
	metrics.SetLeader(bg.leadership.IsLeader)
	loops := func(ctx context.Context) {
		m.RunMigrationWatcher(ctx, migrationCheckInterval(m.MigrationWindow()))
	}
	if restCfg == nil {
		go func() {
			defer close(bg.done)
			bg.leadership.Lead(bgCtx, loops)
		}()
		return bg, nil
	}
	if err := bg.startKubernetes(bgCtx, cfg, restCfg, m); err != nil {
		bg.abort()
		return nil, err
	}
	if le == nil {
		klog.InfoS("Leader election is off: this replica runs the background loops; run only one controller replica")
		go func() {
			defer close(bg.done)
			bg.leadership.Lead(bgCtx, loops)
		}()
		return bg, nil
	}
	klog.InfoS("Campaigning for the controller's background loops", "lease", le.Namespace+"/"+le.LeaseName)
	go func() {
		defer close(bg.done)
		if err := le.Run(bgCtx, loops); err != nil {
			klog.ErrorS(err, "Leader election stopped; this replica will not run the background loops")
		}
	}()
	return bg, nil
}

// newLeaderElection is the controller's leader election over a client of its own, so that renewals are not
// queued behind a burst of events by the shared rate limiter: a late renewal loses the lease.
func newLeaderElection(cfg Config, restCfg *rest.Config) (*attachment.LeaderElection, error) {
	leClient, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(restCfg), "leader-election"))
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	ns := cfg.LeaderElectionNamespace
	if ns == "" {
		ns = defaultLeaderElectionNamespace()
	}
	return &attachment.LeaderElection{Client: leClient, Namespace: ns, LeaseName: leaseName(cfg.DriverName),
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod}, nil
}

// startKubernetes wires the attachment manager, its events and the node check to the cluster.
func (bg *controllerBackground) startKubernetes(ctx context.Context, cfg Config, restCfg *rest.Config, m *attachment.Manager) error {
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	meta, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes metadata client: %w", err)
	}
	// One broadcaster for the process: each holds a goroutine and its own rate limits, and the
	// manager is the only source of events.
	recorder, stopEvents := attachment.NewEventRecorder(client, EventComponent)
	bg.stopEvents = stopEvents
	m.SetEventSink(&attachment.RecorderEventSink{Recorder: recorder, Claims: m})
	// The node cache fills while StartKubernetes waits for its own lists.
	nodes := startKubeNodes(ctx, meta)
	if err := m.StartKubernetes(ctx, client, cfg.DriverName); err != nil {
		return err
	}
	if err := nodes.waitSynced(ctx, attachment.DefaultKubeSyncTimeout); err != nil {
		return err
	}
	bg.nodes = nodes
	return nil
}

// abort undoes a start that failed before any loop ran.
func (bg *controllerBackground) abort() {
	bg.cancel()
	bg.stopEvents()
}

// stop ends the background loops and the informers, waits (bounded) for the Lease to be released, and
// flushes the event broadcaster.
func (bg *controllerBackground) stop() {
	bg.cancel()
	select {
	case <-bg.done:
	case <-time.After(stopTimeout):
		klog.InfoS("Background loops did not stop in time; exiting without waiting", "timeout", stopTimeout)
	}
	bg.stopEvents()
}
