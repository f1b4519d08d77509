package kube

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// claimNamespace holds the test PVCs (and so their events); it exists in every API server.
const claimNamespace = "default"

const fixtureLabel = "rds-csi.test/fixture"

// cluster creates the objects a test needs in the shared API server, all labelled with one value so
// that they are deleted together at the end.
type cluster struct {
	tb    testing.TB
	c     kubernetes.Interface
	label string
}

func newCluster(tb testing.TB) *cluster {
	tb.Helper()
	cl := newClusterKept(tb)
	tb.Cleanup(func() {
		if err := cl.deleteAll(); err != nil {
			tb.Error(err)
		}
	})
	return cl
}

// newClusterKept is newCluster for fixtures that outlive tb (shared by a benchmark's runs); the caller
// deletes them.
func newClusterKept(tb testing.TB) *cluster {
	tb.Helper()
	c := kubeenv.Client(tb)
	kubeenv.WaitReady(tb, c, 30*time.Second)
	return &cluster{tb: tb, c: c, label: kubeenv.UniqueName(tb, "f")}
}

func (cl *cluster) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: map[string]string{fixtureLabel: cl.label}}
}

func (cl *cluster) deleteAll() error {
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: fixtureLabel + "=" + cl.label}
	del := metav1.DeleteOptions{}
	for _, err := range []error{
		cl.c.StorageV1().VolumeAttachments().DeleteCollection(ctx, del, sel),
		cl.c.CoreV1().PersistentVolumes().DeleteCollection(ctx, del, sel),
		cl.c.CoreV1().PersistentVolumeClaims(claimNamespace).DeleteCollection(ctx, del, sel),
		cl.c.CoreV1().Nodes().DeleteCollection(ctx, del, sel),
	} {
		if err != nil {
			return fmt.Errorf("cleaning up test objects labelled %s: %w", cl.label, err)
		}
	}
	return nil
}

func (cl *cluster) must(err error) {
	cl.tb.Helper()
	if err != nil {
		cl.tb.Fatal(err)
	}
}

// node creates a Node object as the kubelet registers one.
func (cl *cluster) node(prefix string) string {
	cl.tb.Helper()
	name := kubeenv.UniqueName(cl.tb, prefix)
	_, err := cl.c.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: cl.meta(name)}, metav1.CreateOptions{})
	cl.must(err)
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
	cl.tb.Helper()
	bv, err := cl.createVolume(s)
	cl.must(err)
	return bv
}

func (cl *cluster) createVolume(s volumeSpec) (boundVolume, error) {
	ctx := context.Background()
	mode := corev1.PersistentVolumeFilesystem
	if s.block {
		mode = corev1.PersistentVolumeBlock
	}
	access := corev1.ReadWriteOnce
	if s.rwx {
		access = corev1.ReadWriteMany
	}
	size := resource.MustParse("1Gi")
	bv := boundVolume{pv: kubeenv.UniqueName(cl.tb, "pv")}
	pv := &corev1.PersistentVolume{
		ObjectMeta: cl.meta(bv.pv),
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes: []corev1.PersistentVolumeAccessMode{access},
			VolumeMode:  &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: s.driver, VolumeHandle: s.handle},
			},
		},
	}
	if s.claim {
		bv.pvc = kubeenv.UniqueName(cl.tb, "pvc")
		pvc, err := cl.c.CoreV1().PersistentVolumeClaims(claimNamespace).Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: cl.meta(bv.pvc),
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{access}, VolumeMode: &mode, VolumeName: bv.pv,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return bv, fmt.Errorf("creating PVC %s: %w", bv.pvc, err)
		}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: claimNamespace, Name: bv.pvc, UID: pvc.UID}
	}
	if _, err := cl.c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return bv, fmt.Errorf("creating PV %s: %w", bv.pv, err)
	}
	return bv, nil
}

// attachment creates a VolumeAttachment as the attach-detach controller does (not attached) and, when
// attached, marks it attached as the external-attacher does after a successful ControllerPublish.
func (cl *cluster) attachment(attacher, pv, node string, attached bool) string {
	cl.tb.Helper()
	name := kubeenv.UniqueName(cl.tb, "va")
	cl.must(cl.createAttachment(name, attacher, pv, node, attached))
	return name
}

func (cl *cluster) createAttachment(name, attacher, pv, node string, attached bool) error {
	va := &storagev1.VolumeAttachment{
		ObjectMeta: cl.meta(name),
		Spec: storagev1.VolumeAttachmentSpec{
			Attacher: attacher, NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv},
		},
	}
	if _, err := cl.c.StorageV1().VolumeAttachments().Create(context.Background(), va, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating VolumeAttachment %s: %w", name, err)
	}
	if attached {
		return cl.patchAttached(name, true)
	}
	return nil
}

func (cl *cluster) setAttached(name string, attached bool) {
	cl.tb.Helper()
	cl.must(cl.patchAttached(name, attached))
}

func (cl *cluster) patchAttached(name string, attached bool) error {
	patch := fmt.Sprintf(`{"status":{"attached":%t}}`, attached)
	_, err := cl.c.StorageV1().VolumeAttachments().Patch(context.Background(), name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("setting attached=%t on VolumeAttachment %s: %w", attached, name, err)
	}
	return nil
}

func (cl *cluster) deleteAttachment(name string) {
	cl.tb.Helper()
	cl.must(cl.c.StorageV1().VolumeAttachments().Delete(context.Background(), name, metav1.DeleteOptions{}))
}

// claimEvents lists the events with the given reason recorded on a PVC.
func (cl *cluster) claimEvents(pvc, reason string) []corev1.Event {
	cl.tb.Helper()
	sel := fields.Set{"involvedObject.kind": "PersistentVolumeClaim", "involvedObject.name": pvc, "reason": reason}
	list, err := cl.c.CoreV1().Events(claimNamespace).List(context.Background(),
		metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	cl.must(err)
	return list.Items
}

// parallel runs f(0..n-1) on a few workers, failing tb on the first error.
func (cl *cluster) parallel(n int, f func(i int) error) {
	cl.tb.Helper()
	const workers = 16
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	cl.must(first)
}
