package attachment

import (
	"errors"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNodeIDForms: a CSI node id with the host NQN ("name,<nqn>", pkg/nodeid) and the plain name are the
// same node, whichever form attaches, detaches or Kubernetes reports (VolumeAttachment.spec.nodeName is
// the plain name).
func TestNodeIDForms(t *testing.T) {
	const nqnA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	cases := []struct {
		name           string
		attach, detach string
		kube           bool // Kubernetes reports the node as attached (by its plain name)
	}{
		{"long attach, long detach", "node-a," + nqnA, "node-a," + nqnA, false},
		{"long attach, plain detach", "node-a," + nqnA, "node-a", false},
		{"plain attach, long detach", "node-a", "node-a," + nqnA, false},
		{"Kubernetes' plain name, long attach and detach", "node-a," + nqnA, "node-a," + nqnA, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTestManager()
			if tc.kube {
				m.kube = &kubeIndex{holders: map[string]map[string]time.Time{"vol": {"node-a": t0}}}
			}
			if err := m.Attach("vol", tc.attach, SingleNode); err != nil {
				t.Fatal(err)
			}
			if got := m.Holders("vol"); !reflect.DeepEqual(got, []string{"node-a"}) {
				t.Fatalf("holders %v, want [node-a]", got)
			}
			// The same node again, in the other form: no conflict.
			other := "node-a"
			if tc.attach == "node-a" {
				other = "node-a," + nqnA
			}
			if err := m.Attach("vol", other, SingleNode); err != nil {
				t.Fatalf("the same node in the other form: %v", err)
			}
			// Another node is refused, naming node-a by its name.
			var cerr *ConflictError
			if err := m.Attach("vol", "node-b,"+nqnA, SingleNode); !errors.As(err, &cerr) || !reflect.DeepEqual(cerr.Holders, []string{"node-a"}) || cerr.Node != "node-b" {
				t.Fatalf("node-b: %v", err)
			}
			m.Detach("vol", tc.detach)
			if got := m.Holders("vol"); got != nil {
				t.Fatalf("after detach holders %v", got)
			}
		})
	}
}

// TestPublishedNodeIDs: published_node_ids are the node ids CSINode has (the external-attacher's
// reconciler compares them exactly), whether the id came with Attach or from a VolumeAttachment's
// node-id annotation; a node only known by name is reported by its name.
func TestPublishedNodeIDs(t *testing.T) {
	const nqnA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	m, _, _ := newTestManager()
	if err := m.Attach("vol", "node-a,"+nqnA, MultiNodeBlock); err != nil {
		t.Fatal(err)
	}
	if err := m.Attach("vol", "node-b", MultiNodeBlock); err != nil {
		t.Fatal(err)
	}
	if got := m.PublishedNodeIDs("vol"); !reflect.DeepEqual(got, []string{"node-a," + nqnA, "node-b"}) {
		t.Fatalf("published node ids %q", got)
	}
	// node-a's plugin goes back to a bare name (no host NQN any more).
	m.Detach("vol", "node-a")
	if err := m.Attach("vol", "node-a", MultiNodeBlock); err != nil {
		t.Fatal(err)
	}
	if got := m.PublishedNodeIDs("vol"); !reflect.DeepEqual(got, []string{"node-a", "node-b"}) { // equal times sort by name
		t.Fatalf("after node-a reported its bare name: %q", got)
	}
	if got := m.PublishedNodeIDs("other"); got != nil {
		t.Fatalf("a volume nobody holds: %q", got)
	}
}

// TestVolumeAttachmentNodeIDAnnotation: after a restart the node ids come from the external-attacher's
// csi.alpha.kubernetes.io/node-id annotation of the VolumeAttachments, which the informer keeps while it
// drops every other annotation.
func TestVolumeAttachmentNodeIDAnnotation(t *testing.T) {
	const nqnA = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	m, _, _ := newTestManager()
	m.kube = newKubeIndex("rds.csi.srvlab.io")
	pvName := "pv-1"
	m.onPersistentVolume(&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "rds.csi.srvlab.io", VolumeHandle: "vol"}}}})
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: "va-1", Annotations: map[string]string{
		vaNodeIDAnnotation: "node-a," + nqnA, "other": "dropped"}},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: "rds.csi.srvlab.io", NodeName: "node-a",
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pvName}},
		Status: storagev1.VolumeAttachmentStatus{Attached: true}}
	stripped, _ := stripUnread(va.DeepCopy())
	if got := stripped.(*storagev1.VolumeAttachment).Annotations; !reflect.DeepEqual(got, map[string]string{vaNodeIDAnnotation: "node-a," + nqnA}) {
		t.Fatalf("annotations kept by the informer: %v", got)
	}
	m.onVolumeAttachment(stripped)
	if got := m.PublishedNodeIDs("vol"); !reflect.DeepEqual(got, []string{"node-a," + nqnA}) {
		t.Fatalf("published node ids %q", got)
	}
	if got := m.Holders("vol"); !reflect.DeepEqual(got, []string{"node-a"}) {
		t.Fatalf("holders %q", got)
	}
}
