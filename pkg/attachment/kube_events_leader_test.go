package attachment

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// eventsFor lists the events recorded on an object, by kind and name, in a namespace.
func eventsFor(tb testing.TB, c kubernetes.Interface, namespace, kind, name string) []corev1.Event {
	tb.Helper()
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}.AsSelector().String()
	list, err := c.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		tb.Fatal(err)
	}
	return list.Items
}

// TestKubeEventsLandOnTheClaim records events through a real broadcaster: on the PVC named by
// the PV's claimRef when there is one, on the PV otherwise, at one request per event.
func TestKubeEventsLandOnTheClaim(t *testing.T) {
	cl := kubeenv.NewFixtures(t)
	ours := kubeenv.DriverName(t)
	claim := kubeenv.UniqueName(t, "claim")
	volRWO, volRWX := kubeenv.UniqueName(t, "vol"), kubeenv.UniqueName(t, "vol")
	cl.PV(kubeenv.PVSpec{Name: "pv-" + volRWO, Driver: ours, Handle: volRWO, ClaimNamespace: "default", ClaimName: claim})
	cl.PV(kubeenv.PVSpec{Name: "pv-" + volRWX, Driver: ours, Handle: volRWX, Block: true, RWX: true})
	cl.VA(kubeenv.UniqueName(t, "va"), ours, "pv-"+volRWO, "node-a", true)
	m, _ := startManager(t, ours)

	counter := kubeenv.NewRequestCounter()
	recorder, stop := NewEventRecorder(kubeenv.NewClient(t, counter.Wrap(kubeenv.RestConfig(t))), "rds-csi-test")
	defer stop()
	m.SetEventSink(&RecorderEventSink{Recorder: recorder, Claims: m})

	if err := m.Attach(volRWO, "node-b", SingleNode); err == nil {
		t.Fatal("no conflict")
	}
	must(t, m.Attach(volRWX, "node-a", MultiNodeBlock))
	must(t, m.Attach(volRWX, "node-b", MultiNodeBlock))
	must(t, m.Attach("no-such-volume", "node-a", SingleNode)) // no PV: logged only

	tests := []struct {
		kind, name, reason, eventType, mentions string
	}{
		{"PersistentVolumeClaim", claim, ReasonAttachConflict, corev1.EventTypeWarning, "node-a"},
		{"PersistentVolume", "pv-" + volRWX, ReasonMigrationStarted, corev1.EventTypeNormal, "node-b"},
	}
	for _, tc := range tests {
		var got []corev1.Event
		eventually(t, tc.reason+" event on "+tc.kind+" "+tc.name, func() bool {
			got = eventsFor(t, cl.Client, "default", tc.kind, tc.name)
			return len(got) > 0
		}, func() string { return "none" })
		e := got[0]
		if len(got) != 1 || e.Reason != tc.reason || e.Type != tc.eventType || !strings.Contains(e.Message, tc.mentions) ||
			e.Source.Component != "rds-csi-test" {
			t.Errorf("events on %s %s: %+v", tc.kind, tc.name, got)
		}
	}
	if c := counter.Counts(); c["POST events"] != 2 || counter.Total() != 2 {
		t.Errorf("requests for two events: %v; want two POSTs and no lookup", c)
	}
}

// TestKubeLeaderElectionRunsLoopsOnOneReplica runs two replicas, each with its own manager fed by
// the informers and the migration watcher as its leader-only loop. Only the leader warns about a
// migration over its window; when the leader stops, the standby takes over with the same state
// and warns in its turn. The two never lead at once.
func TestKubeLeaderElectionRunsLoopsOnOneReplica(t *testing.T) {
	cl := kubeenv.NewFixtures(t)
	ours := kubeenv.DriverName(t)
	vol := kubeenv.UniqueName(t, "vm-disk")
	cl.PV(kubeenv.PVSpec{Name: "pv-" + vol, Driver: ours, Handle: vol, Block: true, RWX: true})
	cl.VA(kubeenv.UniqueName(t, "va"), ours, "pv-"+vol, "node-src", true)
	cl.VA(kubeenv.UniqueName(t, "va"), ours, "pv-"+vol, "node-dst", true)
	lease := kubeenv.UniqueName(t, "lease")

	var leaders, maxLeaders atomic.Int32
	type replica struct {
		name   string
		sink   *recordingSink
		le     *LeaderElection
		cancel context.CancelFunc
		done   chan struct{}
		// sawLeader is closed when the replica has observed a leader other than itself.
		sawLeader chan struct{}
	}
	start := func(name string) *replica {
		r := &replica{name: name, sink: &recordingSink{}, done: make(chan struct{}), sawLeader: make(chan struct{})}
		var once sync.Once
		m, _ := startManager(t, ours)
		m.window = time.Second // the VolumeAttachments are older than that by the first check
		m.SetEventSink(r.sink)
		// A long lease, so that a loaded CI machine never loses it through late renewals; the
		// fail-over stays fast because a stopping leader releases the lease.
		r.le = &LeaderElection{Client: cl.Client, Namespace: "default", LeaseName: lease, Identity: name,
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 100 * time.Millisecond,
			OnNewLeader: func(identity string) {
				if identity != name {
					once.Do(func() { close(r.sawLeader) })
				}
			}}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() {
			defer close(r.done)
			err := r.le.Run(ctx, func(ctx context.Context) {
				n := leaders.Add(1)
				defer leaders.Add(-1)
				for {
					if old := maxLeaders.Load(); n <= old || maxLeaders.CompareAndSwap(old, n) {
						break
					}
				}
				m.RunMigrationWatcher(ctx, 100*time.Millisecond)
			})
			if err != nil {
				t.Error(err)
			}
		}()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	warnings := func(r *replica) int {
		n := 0
		for _, reason := range r.sink.reasons() {
			if reason == ReasonMigrationWindowExceeded {
				n++
			}
		}
		return n
	}

	time.Sleep(1100 * time.Millisecond) // let the migration outlast the 1 s window
	a := start("replica-a")
	eventually(t, "replica-a to lead", a.le.IsLeader, func() string { return "not leader" })
	b := start("replica-b")
	eventually(t, "the leader to warn", func() bool { return warnings(a) == 1 }, func() string { return strings.Join(a.sink.reasons(), ",") })
	// The standby has read the lease and found replica-a holding it: it campaigned and lost, so it must
	// neither lead nor have run the loops.
	select {
	case <-b.sawLeader:
	case <-time.After(30 * time.Second):
		t.Fatal("replica-b never observed replica-a's lease")
	}
	if b.le.IsLeader() || warnings(b) != 0 {
		t.Fatalf("the standby leads (%v) or warned (%d times)", b.le.IsLeader(), warnings(b))
	}

	failover := time.Now()
	a.cancel()
	<-a.done
	eventually(t, "replica-b to take over", b.le.IsLeader, func() string { return "not leader" })
	t.Logf("fail-over took %s", time.Since(failover).Round(time.Millisecond))
	eventually(t, "the new leader to warn from its own rebuilt state", func() bool { return warnings(b) == 1 },
		func() string { return strings.Join(b.sink.reasons(), ",") })
	if warnings(a) != 1 {
		t.Fatalf("the old leader warned %d times", warnings(a))
	}
	if got := maxLeaders.Load(); got != 1 {
		t.Fatalf("%d replicas led at once", got)
	}
}

// TestLeaderElectionNeedsItsConfig checks the error for a missing client or lease.
func TestLeaderElectionNeedsItsConfig(t *testing.T) {
	for _, le := range []*LeaderElection{{}, {Namespace: "ns", LeaseName: "l"}} {
		if err := le.Run(context.Background(), func(context.Context) {}); err == nil {
			t.Errorf("Run with %+v: no error", le)
		}
	}
}
