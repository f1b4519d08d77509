package attachment_test

import (
	"context"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/observability"
)

// Example_controllerWiring shows how a controller puts the pieces together: state from the
// informers on every replica, one event broadcaster, gauges derived at scrape time, and the
// migration watcher on the leader only.
func Example_controllerWiring() {
	run := func(ctx context.Context, client kubernetes.Interface, metrics *observability.Metrics) error {
		m := attachment.NewManager(attachment.Options{MigrationWindow: 5 * time.Minute})
		recorder, stopEvents := attachment.NewEventRecorder(client, "rds-csi-controller")
		defer stopEvents()
		m.SetEventSink(&attachment.RecorderEventSink{Recorder: recorder, Claims: m})
		if err := m.StartKubernetes(ctx, client, "rds.csi.srvlab.io"); err != nil {
			return err
		}
		metrics.SetAttachmentManager(func() int { return len(m.ListAttachments()) })
		metrics.SetAttachmentStats(func() observability.AttachmentStats {
			s := m.Stats()
			return observability.AttachmentStats{NodeAttachments: s.NodeAttachments,
				Migrations: s.Migrations, MigrationsOverWindow: s.MigrationsOverWindow}
		})
		le := &attachment.LeaderElection{Client: client, Namespace: "kube-system", LeaseName: "rds-csi-controller"}
		go func() {
			if err := le.Run(ctx, func(ctx context.Context) { m.RunMigrationWatcher(ctx, 30*time.Second) }); err != nil {
				klog.ErrorS(err, "Leader election")
			}
		}()
		// ControllerPublishVolume calls m.Attach (a *ConflictError becomes FailedPrecondition),
		// ControllerUnpublishVolume calls m.Detach.
		return nil
	}
	_ = run
}
