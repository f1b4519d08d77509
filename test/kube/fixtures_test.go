package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// cluster is kubeenv.Fixtures with generated names: these tests share the API server with a driver
// process, and give each object a name of its own rather than choosing one.
type cluster struct {
	*kubeenv.Fixtures
}

func newCluster(tb testing.TB) *cluster {
	tb.Helper()
	return &cluster{kubeenv.NewFixtures(tb)}
}

// newClusterKept is newCluster for fixtures that outlive tb (shared by a benchmark's runs); the caller
// deletes them.
func newClusterKept(tb testing.TB) *cluster {
	tb.Helper()
	return &cluster{kubeenv.NewFixturesKept(tb)}
}

// node creates a Node object as the kubelet registers one.
func (cl *cluster) node(prefix string) string {
	cl.TB.Helper()
	name := kubeenv.UniqueName(cl.TB, prefix)
	cl.Node(name)
	return name
}

// volumeSpec is a PV of a CSI driver, bound to a claim when claim is set.
type volumeSpec struct {
	driver, handle string
	block, rwx     bool
	claim          bool
}

// boundVolume is what volume created: the PV, and its PVC when asked.
type boundVolume struct {
	pv, pvc string
}

// volume creates the PVC (when asked) and the PV bound to it, as the provisioner and the PV controller
// leave them.
func (cl *cluster) volume(s volumeSpec) boundVolume {
	cl.TB.Helper()
	bv, err := cl.createVolume(s)
	cl.Must(err)
	return bv
}

func (cl *cluster) createVolume(s volumeSpec) (boundVolume, error) {
	bv := boundVolume{pv: kubeenv.UniqueName(cl.TB, "pv")}
	pv := kubeenv.PVSpec{Name: bv.pv, Driver: s.driver, Handle: s.handle, Block: s.block, RWX: s.rwx}
	if s.claim {
		bv.pvc = kubeenv.UniqueName(cl.TB, "pvc")
		pvc, err := cl.CreatePVC(bv.pvc, pv)
		if err != nil {
			return bv, err
		}
		pv.ClaimNamespace, pv.ClaimName, pv.ClaimUID = kubeenv.ClaimNamespace, bv.pvc, pvc.UID
	}
	return bv, cl.CreatePV(pv)
}

// attachment creates a VolumeAttachment as the attach-detach controller does (not attached) and, when
// attached, marks it attached as the external-attacher does after a successful ControllerPublish.
func (cl *cluster) attachment(attacher, pv, node string, attached bool) string {
	cl.TB.Helper()
	name := kubeenv.UniqueName(cl.TB, "va")
	cl.VA(name, attacher, pv, node, attached)
	return name
}

// claimEvents lists the events with the given reason recorded on a PVC.
func (cl *cluster) claimEvents(pvc, reason string) []corev1.Event {
	cl.TB.Helper()
	sel := fields.Set{"involvedObject.kind": "PersistentVolumeClaim", "involvedObject.name": pvc, "reason": reason}
	list, err := cl.Client.CoreV1().Events(kubeenv.ClaimNamespace).List(context.Background(),
		metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	cl.Must(err)
	return list.Items
}
