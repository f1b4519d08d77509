package kube

import (
	"context"
	"regexp"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"google.golang.org/grpc/codes"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// Leader election timings of the replica test. A SIGKILLed leader does not release its Lease, so the
// standby takes over after leaseDuration; the renew deadline is long enough that a loaded CI machine
// does not lose the lease through a late renewal, which would make the standby lead early.
const (
	leaseDuration = "10s"
	renewDeadline = "8s"
	retryPeriod   = "250ms"
)

// TestTwoControllerReplicasShareTheStateAndOneRunsTheLoops runs two controller processes on one RDS
// (a simulator in the test process, over real SSH) and one API server. Both serve CSI from the same
// state; only the Lease holder runs the migration watcher, so a migration over its window is reported
// once; when the leader is SIGKILLed the standby takes the Lease over, keeps the same state and reports
// the migration in its turn.
func TestTwoControllerReplicasShareTheStateAndOneRunsTheLoops(t *testing.T) {
	cl := newCluster(t)
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ours := kubeenv.DriverName(t)
	args := []string{"--driver-name=" + ours, "--rds-address=" + sim.Addr(), "--rds-user=admin",
		"--rds-key-file=" + sim.ClientKeyFile(), "--rds-host-key=" + sim.KnownHostsFile(),
		"--leader-election-namespace=" + kubeenv.ClaimNamespace, "--leader-election-lease-duration=" + leaseDuration,
		"--leader-election-renew-deadline=" + renewDeadline, "--leader-election-retry-period=" + retryPeriod,
		// The VolumeAttachments below are older than this by the time the leader checks.
		"--migration-window=3s"}
	nodeA, nodeB, nodeC := cl.node("node-a"), cl.node("node-b"), cl.node("node-c")

	leader := startController(t, "replica #1", args...)
	leader.waitGauges(map[string]float64{controllerLeader: 1})
	standby := startController(t, "replica #2", args...)

	// Both replicas serve CSI.
	single := leader.createVolume(kubeenv.UniqueName(t, "single"), fsRWO)
	migrating := standby.createVolume(kubeenv.UniqueName(t, "migrating"), blockMN)
	bs := cl.volume(volumeSpec{driver: ours, handle: single.GetVolumeId(), claim: true})
	bm := cl.volume(volumeSpec{driver: ours, handle: migrating.GetVolumeId(), block: true, rwx: true, claim: true})
	cl.attachment(ours, bs.pv, nodeA, true)
	cl.attachment(ours, bm.pv, nodeA, true)
	cl.attachment(ours, bm.pv, nodeB, true)

	state := map[string]float64{connectionsActive: 2, nodeAttachments: 3, migrationsInProgress: 1}
	sameState := func(p *controllerProcess) {
		t.Helper()
		p.waitGauges(state)
		p.wantRefused(single, nodeB, fsRWO, codes.FailedPrecondition, nodeA)
		p.wantRefused(migrating, nodeC, blockMN, codes.FailedPrecondition, nodeA, nodeB)
	}
	sameState(leader)
	sameState(standby)

	// The leader reports the migration over its window, once; the standby runs no loop at all.
	leader.eventually("a MigrationWindowExceeded event on PVC "+bm.pvc, func() bool {
		return len(cl.claimEvents(bm.pvc, attachment.ReasonMigrationWindowExceeded)) > 0
	})
	leader.waitLog(`reason="MigrationWindowExceeded"`)
	if standby.logged(`"Watching live migrations"`) || standby.logged(`reason="MigrationWindowExceeded"`) {
		t.Errorf("the standby ran the migration watcher while %s led", leader.name)
	}
	if n := len(cl.claimEvents(bm.pvc, attachment.ReasonMigrationWindowExceeded)); n != 1 {
		t.Errorf("%d MigrationWindowExceeded events on %s, want 1 (from the leader only)", n, bm.pvc)
	}
	// Every replica derives the over-window count from the shared state; only the loop warns.
	for _, p := range []*controllerProcess{leader, standby} {
		if got := p.gauges(controllerLeader, migrationsOverWindow); got[migrationsOverWindow] != 1 ||
			got[controllerLeader] != map[*controllerProcess]float64{leader: 1, standby: 0}[p] {
			t.Errorf("%s: %v", p.name, got)
		}
	}

	leader.kill()
	standby.waitGauges(map[string]float64{controllerLeader: 1})
	standby.waitLog(`"Became leader"`)
	standby.waitLog(`reason="MigrationWindowExceeded"`)
	sameState(standby)
	standby.eventually("the new leader's MigrationWindowExceeded event on PVC "+bm.pvc, func() bool {
		return len(cl.claimEvents(bm.pvc, attachment.ReasonMigrationWindowExceeded)) == 2
	})

	// A leader stopped the kubelet's way (SIGTERM) hands the Lease back before it exits, so that a new
	// standby need not wait for the lease to expire.
	third := startController(t, "replica #3", args...)
	sameState(third)
	m := regexp.MustCompile(`"Became leader" lease="([^"/]+)/([^"]+)" identity="([^"]+)"`).FindStringSubmatch(standby.out.String())
	if m == nil {
		t.Fatalf("%s did not log its Lease and identity when it became leader", standby.name)
	}
	standby.terminate()
	lease, err := cl.Client.CoordinationV1().Leases(m[1]).Get(context.Background(), m[2], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h == m[3] {
		t.Errorf("Lease %s/%s still held by %s after it exited on SIGTERM; want it released", m[1], m[2], m[3])
	}
	third.waitGauges(map[string]float64{controllerLeader: 1})
}
