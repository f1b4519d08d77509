package driver

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/observability"
)

// ControllerLeaderMetric is 1 on the replica running the controller's background loops, 0 on standbys.
const ControllerLeaderMetric = "rds_csi_controller_leader"

// EventComponent is the source component of the events the controller records.
const EventComponent = "rds-csi-controller"

// stopTimeout bounds how long a stopping controller waits for its loops to end and its Lease to be
// released; releasing lets a standby take over at once instead of after the lease duration.
const stopTimeout = 10 * time.Second

// controllerBackground is the controller's life beside its RPCs: the attachment state following the
// cluster (on every replica, so any replica answers publishes with the truth), and the background loops
// (the migration-window watcher) on one replica at a time.
type controllerBackground struct {
	nodes Nodes // nil without Kubernetes
	// leading is true while this process runs the background loops.
	leading    atomic.Bool
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
	bgCtx, cancel := context.WithCancel(ctx)
	bg := &controllerBackground{cancel: cancel, done: make(chan struct{}), stopEvents: func() {}}
	metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: ControllerLeaderMetric,
		Help: "1 while this controller replica runs the background loops (it holds the leader Lease, or leader " +
			"election is off), 0 on a standby.",
	}, func() float64 {
		if bg.leading.Load() {
			return 1
		}
		return 0
	}))
	loops := func(ctx context.Context) {
		bg.leading.Store(true)
		defer bg.leading.Store(false)
		m.RunMigrationWatcher(ctx, migrationCheckInterval(m.MigrationWindow()))
	}
	if restCfg == nil {
		go func() {
			defer close(bg.done)
			loops(bgCtx)
		}()
		return bg, nil
	}
	if err := bg.startKubernetes(bgCtx, cfg, restCfg, m); err != nil {
		bg.abort()
		return nil, err
	}
	if !cfg.LeaderElection {
		klog.InfoS("Leader election is off: this replica runs the background loops; run only one controller replica")
		go func() {
			defer close(bg.done)
			loops(bgCtx)
		}()
		return bg, nil
	}
	// A client of its own, so that renewals are not queued behind a burst of events by the shared rate
	// limiter: a late renewal loses the lease.
	leClient, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(restCfg), "leader-election"))
	if err != nil {
		bg.abort()
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	ns := cfg.LeaderElectionNamespace
	if ns == "" {
		ns = defaultLeaderElectionNamespace()
	}
	le := &attachment.LeaderElection{Client: leClient, Namespace: ns, LeaseName: leaseName(cfg.DriverName),
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod}
	klog.InfoS("Campaigning for the controller's background loops", "lease", ns+"/"+le.LeaseName)
	go func() {
		defer close(bg.done)
		if err := le.Run(bgCtx, loops); err != nil {
			klog.ErrorS(err, "Leader election stopped; this replica will not run the background loops")
		}
	}()
	return bg, nil
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
