package kube

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	"github.com/rds-csi/rds-csi/internal/app"
	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// TestControllerProcessFollowsKubernetesAcrossRestarts runs the controller binary against the API server
// and its embedded simulator, and checks that its attachment state, the gauges derived from it and the
// attach decisions are Kubernetes' VolumeAttachments of its own driver: while it runs, after a SIGKILL
// and a restart (from the very first scrape and RPC), and as VolumeAttachments change under it.
func TestControllerProcessFollowsKubernetesAcrossRestarts(t *testing.T) {
	cl := newCluster(t)
	ours, other := kubeenv.DriverName(t), kubeenv.DriverName(t)
	args := []string{"--driver-name=" + ours, "--rds-simulator=" + t.TempDir(),
		"--leader-election-namespace=" + kubeenv.ClaimNamespace}
	nodeA, nodeB, nodeC := cl.node("node-a"), cl.node("node-b"), cl.node("node-c")

	first := startController(t, "controller #1", args...)
	first.waitGauges(map[string]float64{connectionsActive: 0, nodeAttachments: 0, migrationsInProgress: 0})
	// The volumes exist on the RDS before Kubernetes refers to them, as after provisioning.
	v1 := first.createVolume(kubeenv.UniqueName(t, "v1"), fsRWO)   // on node A
	v2 := first.createVolume(kubeenv.UniqueName(t, "v2"), fsRWO)   // on node B
	v3 := first.createVolume(kubeenv.UniqueName(t, "v3"), blockMN) // live-migrating from node A to node B
	v4 := first.createVolume(kubeenv.UniqueName(t, "v4"), fsRWO)   // its VolumeAttachment not attached yet
	b1 := cl.volume(volumeSpec{driver: ours, handle: v1.GetVolumeId(), claim: true})
	b2 := cl.volume(volumeSpec{driver: ours, handle: v2.GetVolumeId(), claim: true})
	b3 := cl.volume(volumeSpec{driver: ours, handle: v3.GetVolumeId(), block: true, rwx: true, claim: true})
	b4 := cl.volume(volumeSpec{driver: ours, handle: v4.GetVolumeId(), claim: true})
	cl.attachment(ours, b1.pv, nodeA, true)
	va2 := cl.attachment(ours, b2.pv, nodeB, true)
	va3a := cl.attachment(ours, b3.pv, nodeA, true)
	cl.attachment(ours, b3.pv, nodeB, true)
	va4 := cl.attachment(ours, b4.pv, nodeA, false)
	// Another driver's volumes, one with the very handle of v1, attached elsewhere: none of it is ours.
	o1 := cl.volume(volumeSpec{driver: other, handle: v1.GetVolumeId()})
	o2 := cl.volume(volumeSpec{driver: other, handle: kubeenv.UniqueName(t, "other")})
	cl.attachment(other, o1.pv, nodeC, true)
	cl.attachment(other, o2.pv, nodeA, true)

	// v1, v2 and v3 are attached: three volumes, four node attachments (v3 counts once in the gauge).
	attached := map[string]float64{connectionsActive: 3, nodeAttachments: 4, migrationsInProgress: 1}
	first.waitGauges(attached)
	conflicts := func(p *controllerProcess) {
		t.Helper()
		p.wantRefused(v1, nodeB, fsRWO, codes.FailedPrecondition, nodeA)
		p.wantRefused(v1, nodeC, fsRWO, codes.FailedPrecondition, nodeA)
		p.wantRefused(v2, nodeA, fsRWO, codes.FailedPrecondition, nodeB)
		p.wantRefused(v3, nodeC, blockMN, codes.FailedPrecondition, nodeA, nodeB)
		p.wantRefused(v2, "no-such-node", fsRWO, codes.NotFound, "no-such-node")
		p.mustPublish(v1, nodeA, fsRWO) // the holder again: idempotent
	}
	conflicts(first)
	var events []corev1.Event
	first.eventually("an AttachConflict event on PVC "+b1.pvc, func() bool {
		events = cl.claimEvents(b1.pvc, attachment.ReasonAttachConflict)
		return len(events) > 0
	})
	for _, e := range events {
		if e.Type != corev1.EventTypeWarning || e.Source.Component != app.EventComponent || !strings.Contains(e.Message, nodeA) {
			t.Errorf("conflict event on %s: %s %s from %q: %q; want a warning from %s naming the holder %s",
				b1.pvc, e.Type, e.Reason, e.Source.Component, e.Message, app.EventComponent, nodeA)
		}
	}
	first.kill()

	second := startController(t, "controller #2", args...)
	// The state is rebuilt before the process serves anything: the first scrape and RPCs have it.
	if got := second.gauges(connectionsActive, nodeAttachments, migrationsInProgress); !equal(got, attached) {
		t.Errorf("first scrape after a SIGKILL and restart: %v, want %v", got, attached)
	}
	checkStartupRequests(t, second)
	conflicts(second)
	// The nodes existed before the process started: publishes find them in its cache, and only the
	// unknown node costs a GET.
	if n := second.api.counter.Counts()["GET nodes"]; n != 1 {
		t.Errorf("%d node GETs for one round of publishes, want 1 (for the unknown node)", n)
	}

	// Kubernetes changes under the running process. The other driver's change comes first: once the
	// later changes of ours are visible, the one watch stream has delivered it too.
	cl.attachment(other, o2.pv, nodeB, true)
	cl.DeleteVA(va2)            // v2 was detached from node B
	cl.SetAttached(va3a, false) // the migration of v3 finished: node A let go
	second.waitGauges(map[string]float64{connectionsActive: 2, nodeAttachments: 2, migrationsInProgress: 0})
	second.mustPublish(v2, nodeC, fsRWO) // free now; granted before Kubernetes records it
	second.wantRefused(v2, nodeA, fsRWO, codes.FailedPrecondition, nodeC)
	cl.attachment(ours, b2.pv, nodeC, true) // the external-attacher records the publish
	second.mustPublish(v3, nodeC, blockMN)  // a new migration target next to node B
	second.mustUnpublish(v3, nodeC)         // ... abandoned
	second.mustPublish(v4, nodeA, fsRWO)
	cl.SetAttached(va4, true)
	changed := map[string]float64{connectionsActive: 4, nodeAttachments: 4, migrationsInProgress: 0}
	second.waitGauges(changed)
	second.kill()

	third := startController(t, "controller #3", args...)
	if got := third.gauges(connectionsActive, nodeAttachments, migrationsInProgress); !equal(got, changed) {
		t.Errorf("first scrape after the second restart: %v, want %v", got, changed)
	}
	third.wantRefused(v1, nodeB, fsRWO, codes.FailedPrecondition, nodeA)
	third.wantRefused(v2, nodeA, fsRWO, codes.FailedPrecondition, nodeC)
	third.wantRefused(v4, nodeB, fsRWO, codes.FailedPrecondition, nodeA)
	third.mustPublish(v3, nodeA, blockMN) // v3 is on node B only: a migration may start again
}

// checkStartupRequests: the process's start-up cost a constant number of requests per kind it follows
// (a LIST and a WATCH; client-go first tries a streaming list, one more WATCH, and falls back to a LIST
// when the API server does not serve it), never a request per volume.
func checkStartupRequests(t *testing.T, p *controllerProcess) {
	t.Helper()
	got := p.startupRequests
	for _, kind := range []string{"volumeattachments", "persistentvolumes", "nodes"} {
		lists, watches := got["LIST "+kind], got["WATCH "+kind]
		if lists > 1 || watches > 2 || lists+watches < 2 {
			t.Errorf("%s: %d LISTs and %d WATCHes at start-up, want at most one LIST and two WATCHes (all requests: %v)",
				kind, lists, watches, got)
		}
	}
	for _, kind := range []string{"GET volumeattachments", "GET persistentvolumes", "GET persistentvolumeclaims", "GET nodes"} {
		if got[kind] != 0 {
			t.Errorf("%s: %d at start-up, want none (all requests: %v)", kind, got[kind], got)
		}
	}
	t.Logf("%s: requests to the API server until it served: %v", p.name, got)
}

func equal(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
