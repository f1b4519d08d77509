package attachment

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rds-csi/rds-csi/internal/testenv"
	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// view is ListAttachments without the times, which legitimately differ between a manager that
// saw an attach happen and one that rebuilt it after a restart.
type view map[string]string

func viewOf(m *Manager) view {
	out := view{}
	for id, a := range m.ListAttachments() {
		out[id] = a.Mode.String() + ":" + strings.Join(a.NodeNames(), ",")
	}
	return out
}

// checkStatsAgree fails unless Stats, computed without building the list, counts what
// ListAttachments lists.
func checkStatsAgree(tb testing.TB, m *Manager) {
	tb.Helper()
	var want Stats
	for _, a := range m.ListAttachments() {
		want.Volumes++
		want.NodeAttachments += len(a.Nodes)
		if len(a.Nodes) >= 2 {
			want.Migrations++
		}
	}
	got := m.Stats()
	got.MigrationsOverWindow = 0
	if got != want {
		tb.Fatalf("Stats %+v disagree with ListAttachments %+v", got, want)
	}
}

// startManager starts a manager on driver through a client whose requests are counted.
func startManager(tb testing.TB, driver string) (*Manager, *kubeenv.RequestCounter) {
	tb.Helper()
	counter := kubeenv.NewRequestCounter()
	client := kubeenv.NewClient(tb, counter.Wrap(kubeenv.RestConfig(tb)))
	m := NewManager(Options{})
	// The context bounds the informers' life, not only the start-up: it ends with the test.
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	if err := m.StartKubernetes(ctx, client, driver); err != nil {
		tb.Fatal(err)
	}
	return m, counter
}

// TestKubeStateFollowsVolumeAttachments is the attachment manager against a real API server:
// rebuilt from VolumeAttachments of our driver only, enforcing the rules with that state,
// rebuilt identically by a new manager (a restarted controller), and following changes.
func TestKubeStateFollowsVolumeAttachments(t *testing.T) {
	cl := kubeenv.NewFixtures(t)
	ours, other := kubeenv.DriverName(t), kubeenv.DriverName(t)
	n := func(s string) string { return kubeenv.UniqueName(t, s) }
	n1, n2, n3 := n("node1"), n("node2"), n("node3")
	for _, node := range []string{n1, n2, n3} {
		cl.Node(node)
	}
	volA, volB, volC, volD, volX := n("vol-a"), n("vol-b"), n("vol-c"), n("vol-d"), n("vol-x")
	pvA, pvB, pvC, pvD, pvX := "pv-"+volA, "pv-"+volB, "pv-"+volC, "pv-"+volD, "pv-"+volX
	cl.PV(kubeenv.PVSpec{Name: pvA, Driver: ours, Handle: volA, ClaimNamespace: "default", ClaimName: "claim-a"}) // RWO filesystem
	cl.PV(kubeenv.PVSpec{Name: pvB, Driver: ours, Handle: volB})                                                  // RWO filesystem
	cl.PV(kubeenv.PVSpec{Name: pvC, Driver: ours, Handle: volC, Block: true, RWX: true})                          // RWX block (VM disk)
	cl.PV(kubeenv.PVSpec{Name: pvD, Driver: ours, Handle: volD, Block: true})                                     // RWO block
	cl.PV(kubeenv.PVSpec{Name: pvX, Driver: other, Handle: volX})                                                 // another driver's
	vaA, vaB, vaC1, vaC2, vaX, vaOtherOnOurPV := n("va-a"), n("va-b"), n("va-c1"), n("va-c2"), n("va-x"), n("va-x-ours")
	cl.VA(vaA, ours, pvA, n1, true)
	cl.VA(vaB, ours, pvB, n2, false)            // being attached: the external-attacher is publishing it
	cl.VA(vaC1, ours, pvC, n1, true)            // live migration source
	cl.VA(vaC2, ours, pvC, n2, true)            // and target
	cl.VA(vaX, other, pvX, n1, true)            // another driver's volume
	cl.VA(vaOtherOnOurPV, other, pvA, n3, true) // another attacher on our PV: not ours either

	m, _ := startManager(t, ours)
	want := view{volA: "single-node:" + n1, volC: "multi-node-block:" + n1 + "," + n2}
	if got := viewOf(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt state:\n got %v\nwant %v", got, want)
	}

	conflicts := []struct {
		name         string
		volume, node string
		mode         Mode
		wantHolders  []string // nil: success
	}{
		{"RWO volume to a second node", volA, n2, SingleNode, []string{n1}},
		{"RWO volume to its node again", volA, n1, SingleNode, nil},
		{"the VolumeAttachment being published does not conflict with itself", volB, n2, SingleNode, nil},
		{"third node during a migration", volC, n3, MultiNodeBlock, []string{n1, n2}},
		{"migration target again", volC, n2, MultiNodeBlock, nil},
		{"PV mode wins over a request that asks for more", volD, n1, SingleNode, nil},
		{"RWO block volume asked as multi-node", volD, n2, MultiNodeBlock, []string{n1}},
	}
	checkConflicts := func(t *testing.T, m *Manager) {
		for _, c := range conflicts {
			err := m.Attach(c.volume, c.node, c.mode)
			var cerr *ConflictError
			switch {
			case c.wantHolders == nil && err != nil:
				t.Errorf("%s: %v", c.name, err)
			case c.wantHolders != nil && !errors.As(err, &cerr):
				t.Errorf("%s: want a conflict, got %v", c.name, err)
			case c.wantHolders != nil && !reflect.DeepEqual(cerr.Holders, c.wantHolders):
				t.Errorf("%s: conflict names %v, want %v", c.name, cerr.Holders, c.wantHolders)
			}
		}
	}
	checkConflicts(t, m)
	// The external-attacher records the successful publishes.
	cl.SetAttached(vaB, true)
	vaD := n("va-d")
	cl.VA(vaD, ours, pvD, n1, true)
	want[volB] = "single-node:" + n2
	want[volD] = "single-node:" + n1
	eventually(t, "the first manager to see the attacher's updates", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.vols) == 0 // every local grant confirmed by an attached VolumeAttachment
	}, func() string {
		m.mu.Lock()
		defer m.mu.Unlock()
		var b strings.Builder
		for k, v := range m.vols {
			fmt.Fprintf(&b, "%s=%+v ", k, *v)
		}
		return b.String()
	})
	if got := viewOf(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after publishes:\n got %v\nwant %v", got, want)
	}

	// A restarted controller (or a standby turned leader) rebuilds the same state, with no local
	// grant of its own, and makes the same decisions.
	restarted, _ := startManager(t, ours)
	if got := viewOf(restarted); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after restart:\n got %v\nwant %v", got, want)
	}
	checkConflicts(t, restarted)
	checkStatsAgree(t, m)
	checkStatsAgree(t, restarted)

	// Changes to VolumeAttachments are followed, by both managers.
	steps := []struct {
		name   string
		change func()
		update func(view)
	}{
		{"migration source detached", func() { cl.SetAttached(vaC1, false) },
			func(v view) { v[volC] = "multi-node-block:" + n2 }},
		{"its VolumeAttachment deleted", func() { cl.DeleteVA(vaC1) }, func(view) {}},
		{"RWO volume detached and deleted", func() { cl.DeleteVA(vaA) }, func(v view) { delete(v, volA) }},
		{"a new attached VolumeAttachment", func() { cl.VA(n("va-a2"), ours, pvA, n3, true) },
			func(v view) { v[volA] = "single-node:" + n3 }},
		{"another driver's VolumeAttachment changes nothing", func() { cl.VA(n("va-x2"), other, pvX, n2, true) }, func(view) {}},
	}
	for _, s := range steps {
		s.change()
		s.update(want)
		for name, mgr := range map[string]*Manager{"first": m, "restarted": restarted} {
			eventually(t, fmt.Sprintf("%s manager to follow %q", name, s.name), func() bool {
				return reflect.DeepEqual(viewOf(mgr), want)
			}, func() string { return fmt.Sprintf("state %v, want %v", viewOf(mgr), want) })
			checkStatsAgree(t, mgr)
		}
	}
	if err := restarted.Attach(volA, n1, SingleNode); !errors.Is(err, ErrAttachedElsewhere) {
		t.Fatalf("after the moves, attaching %s to %s: %v, want a conflict naming %s", volA, n1, err, n3)
	}
}

// TestKubeDetachMasksTheStillAttachedVolumeAttachment: between ControllerUnpublish and the
// attacher clearing status.attached, the node must not count as a holder any more.
func TestKubeDetachMasksTheStillAttachedVolumeAttachment(t *testing.T) {
	cl := kubeenv.NewFixtures(t)
	ours := kubeenv.DriverName(t)
	vol, n1, n2 := kubeenv.UniqueName(t, "vol"), kubeenv.UniqueName(t, "n1"), kubeenv.UniqueName(t, "n2")
	cl.PV(kubeenv.PVSpec{Name: "pv-" + vol, Driver: ours, Handle: vol})
	va1 := kubeenv.UniqueName(t, "va")
	cl.VA(va1, ours, "pv-"+vol, n1, true)
	m, _ := startManager(t, ours)
	m.Detach(vol, n1)
	checkStatsAgree(t, m)
	if err := m.Attach(vol, n2, SingleNode); err != nil {
		t.Fatalf("attach after detach, before the VolumeAttachment update: %v", err)
	}
	checkStatsAgree(t, m)
	// The attacher then records the detach, and the new attach; the state stays on n2 only.
	cl.SetAttached(va1, false)
	cl.DeleteVA(va1)
	va2 := kubeenv.UniqueName(t, "va")
	cl.VA(va2, ours, "pv-"+vol, n2, true)
	eventually(t, "the state to settle on the new node", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.vols) == 0 && reflect.DeepEqual(nodeNames(m.holdersLocked(vol)), []string{n2})
	}, func() string { return fmt.Sprintf("holders %v, all %+v", m.Holders(vol), m.ListAttachments()) })
}

// TestKubeStartupAPICallsAreConstant counts the requests a manager makes to start, first on a
// handful of volumes, then on hundreds more: the count must not grow with them.
func TestKubeStartupAPICallsAreConstant(t *testing.T) {
	cl := kubeenv.NewFixtures(t)
	ours := kubeenv.DriverName(t)
	addVolumes := func(count int) {
		cl.Parallel(count, func(i int) error {
			vol := kubeenv.UniqueName(t, "vol")
			if err := cl.CreatePV(kubeenv.PVSpec{Name: "pv-" + vol, Driver: ours, Handle: vol}); err != nil {
				return err
			}
			return cl.CreateVA("va-"+vol, ours, "pv-"+vol, "node-"+fmt.Sprint(i%7), true)
		})
	}
	measure := func(wantVolumes int) map[string]int {
		m, counter := startManager(t, ours)
		if got := len(m.ListAttachments()); got != wantVolumes {
			t.Fatalf("rebuilt %d attached volumes, want %d", got, wantVolumes)
		}
		return counter.Counts()
	}
	addVolumes(5)
	small := measure(5)
	addVolumes(300)
	large := measure(305)
	t.Logf("start-up requests with 5 volumes: %v; with 305: %v", small, large)
	if !reflect.DeepEqual(small, large) {
		t.Fatalf("start-up requests grew with the number of volumes: %v, then %v", small, large)
	}
	// client-go first asks for a watch that streams the initial list (WatchList); an API server
	// that cannot serve it (here: Debian's etcd 3.4 lacks the progress requests it needs) fails
	// that watch, and client-go falls back to one LIST then one WATCH. So each resource costs one
	// request on a cluster with a recent etcd and three on this one: never more.
	total := 0
	for kind, count := range large {
		total += count
		if !strings.HasSuffix(kind, " volumeattachments") && !strings.HasSuffix(kind, " persistentvolumes") {
			t.Errorf("start-up made a %q request; only VolumeAttachments and PersistentVolumes are read", kind)
		}
		if strings.HasPrefix(kind, "LIST ") && count > 1 {
			t.Errorf("start-up made %d %q requests: the list was paged or repeated", count, kind)
		}
	}
	if total > 6 {
		t.Errorf("start-up made %d requests, want at most 3 per resource: %v", total, large)
	}
}

// BenchmarkKubeRebuild5000 measures the start-up of a manager (the rebuild of a restarted or
// newly elected controller) with 5,000 attached VolumeAttachments, and the API requests it costs.
// Run: hack/kube/with-apiserver.sh go test -run '^$' -bench KubeRebuild -benchtime 5x ./pkg/attachment
func BenchmarkKubeRebuild5000(b *testing.B) {
	if !kubeenv.Available() {
		testenv.Missing(b, kubeenv.SkipReason)
	}
	_, ours := rebuildFixture(b)
	cfg := kubeenv.RestConfig(b)
	b.ResetTimer()
	var requests int
	for i := 0; i < b.N; i++ {
		counter := kubeenv.NewRequestCounter()
		client := kubernetes.NewForConfigOrDie(counter.Wrap(rest.CopyConfig(cfg)))
		m := NewManager(Options{})
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.StartKubernetes(ctx, client, ours); err != nil {
			b.Fatal(err)
		}
		if got := len(m.ListAttachments()); got != rebuildVolumes {
			b.Fatalf("rebuilt %d volumes, want %d", got, rebuildVolumes)
		}
		cancel()
		requests = counter.Total()
	}
	b.ReportMetric(float64(requests), "apirequests/op")
}

const rebuildVolumes = 5000

// The benchmark function runs several times (b.N = 1, then more); its 10,000 objects are made
// once and deleted by TestMain.
var (
	rebuildOnce    sync.Once
	rebuildCluster *kubeenv.Fixtures
	rebuildDriver  string
)

func rebuildFixture(b *testing.B) (*kubeenv.Fixtures, string) {
	rebuildOnce.Do(func() {
		cl := kubeenv.NewFixturesKept(b)
		driver := kubeenv.DriverName(b)
		setup := time.Now()
		afterTests = append(afterTests, cl.DeleteAll)
		cl.Parallel(rebuildVolumes, func(i int) error {
			vol := fmt.Sprintf("%s-%05d", cl.Label, i)
			if err := cl.CreatePV(kubeenv.PVSpec{Name: "pv-" + vol, Driver: driver, Handle: vol}); err != nil {
				return err
			}
			return cl.CreateVA("va-"+vol, driver, "pv-"+vol, fmt.Sprintf("node-%d", i%50), true)
		})
		rebuildCluster, rebuildDriver = cl, driver
		b.Logf("created %d PVs and attached VolumeAttachments in %s", rebuildVolumes, time.Since(setup).Round(time.Millisecond))
	})
	if rebuildCluster == nil {
		b.Fatal("the fixture of an earlier run failed")
	}
	return rebuildCluster, rebuildDriver
}
