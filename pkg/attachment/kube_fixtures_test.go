package attachment

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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// cluster creates objects in the test API server, labelled so that they can all be deleted at
// the end with one DeleteCollection per kind.
type cluster struct {
	tb    testing.TB
	c     kubernetes.Interface
	label string
}

const fixtureLabel = "rds-csi.test/fixture"

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

// newClusterKept is newCluster for fixtures that outlive tb (shared by the runs of a
// benchmark); the caller deletes them.
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
		cl.c.CoreV1().Nodes().DeleteCollection(ctx, del, sel),
	} {
		if err != nil {
			return fmt.Errorf("cleaning up test objects labelled %s: %w", cl.label, err)
		}
	}
	return nil
}

func (cl *cluster) node(name string) {
	cl.tb.Helper()
	_, err := cl.c.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: cl.meta(name)}, metav1.CreateOptions{})
	if err != nil {
		cl.tb.Fatalf("creating node %s: %v", name, err)
	}
}

type pvSpec struct {
	name, driver, handle string
	block, rwx           bool
	claimNS, claimName   string
}

func (cl *cluster) pv(s pvSpec) {
	cl.tb.Helper()
	if err := cl.createPV(s); err != nil {
		cl.tb.Fatal(err)
	}
}

func (cl *cluster) createPV(s pvSpec) error {
	mode := corev1.PersistentVolumeFilesystem
	if s.block {
		mode = corev1.PersistentVolumeBlock
	}
	access := corev1.ReadWriteOnce
	if s.rwx {
		access = corev1.ReadWriteMany
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: cl.meta(s.name),
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes: []corev1.PersistentVolumeAccessMode{access},
			VolumeMode:  &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: s.driver, VolumeHandle: s.handle},
			},
		},
	}
	if s.claimName != "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: s.claimNS, Name: s.claimName, UID: types.UID("uid-" + s.claimName)}
	}
	if _, err := cl.c.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating PV %s: %w", s.name, err)
	}
	return nil
}

func (cl *cluster) va(name, attacher, pv, node string, attached bool) {
	cl.tb.Helper()
	if err := cl.createVA(name, attacher, pv, node, attached); err != nil {
		cl.tb.Fatal(err)
	}
}

// createVA creates a VolumeAttachment as the attach-detach controller does (not attached), then,
// when attached, sets status.attached as the external-attacher does after ControllerPublish.
func (cl *cluster) createVA(name, attacher, pv, node string, attached bool) error {
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
	if err := cl.patchAttached(name, attached); err != nil {
		cl.tb.Fatal(err)
	}
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

func (cl *cluster) deleteVA(name string) {
	cl.tb.Helper()
	if err := cl.c.StorageV1().VolumeAttachments().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		cl.tb.Fatalf("deleting VolumeAttachment %s: %v", name, err)
	}
}

// parallel runs f(0..n-1) on a few workers, failing tb on the first error.
func (cl *cluster) parallel(n int, f func(i int) error) {
	cl.tb.Helper()
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		cl.tb.Fatal(err)
	default:
	}
}

// eventually polls cond until it holds or 20 s pass; the informers deliver changes in
// milliseconds, the margin is for a loaded CI machine. On time-out, describe says what was seen.
func eventually(tb testing.TB, what string, cond func() bool, describe func() string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s: %s", what, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
