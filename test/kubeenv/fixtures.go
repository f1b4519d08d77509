package kubeenv

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
)

// FixtureLabel is the label key Fixtures puts on every object it creates; its value is one per Fixtures.
const FixtureLabel = "rds-csi.test/fixture"

// ClaimNamespace holds the test PVCs (and so their events); it exists in every API server.
const ClaimNamespace = "default"

// Fixtures creates the Nodes, PVs, PVCs and VolumeAttachments a test needs in the shared API server,
// as the kubelet, the provisioner and the attach-detach controller would leave them. All carry one
// value of FixtureLabel, so that DeleteAll removes them with one DeleteCollection per kind.
type Fixtures struct {
	TB     testing.TB
	Client kubernetes.Interface
	// Label is the value of FixtureLabel on this Fixtures' objects; unique per test and run, it also
	// makes names unique when a test builds many.
	Label string
}

// NewFixtures returns Fixtures whose objects are deleted when tb ends, or skips tb when there is no
// API server.
func NewFixtures(tb testing.TB) *Fixtures {
	tb.Helper()
	f := NewFixturesKept(tb)
	tb.Cleanup(func() {
		if err := f.DeleteAll(); err != nil {
			tb.Error(err)
		}
	})
	return f
}

// NewFixturesKept is NewFixtures for objects that outlive tb (shared by the runs of a benchmark); the
// caller deletes them with DeleteAll.
func NewFixturesKept(tb testing.TB) *Fixtures {
	tb.Helper()
	c := Client(tb)
	WaitReady(tb, c, 30*time.Second)
	return &Fixtures{TB: tb, Client: c, Label: UniqueName(tb, "f")}
}

// Meta is the metadata of a fixture object named name.
func (f *Fixtures) Meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: map[string]string{FixtureLabel: f.Label}}
}

// DeleteAll deletes every object these Fixtures created.
func (f *Fixtures) DeleteAll() error {
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: FixtureLabel + "=" + f.Label}
	del := metav1.DeleteOptions{}
	for _, err := range []error{
		f.Client.StorageV1().VolumeAttachments().DeleteCollection(ctx, del, sel),
		f.Client.CoreV1().PersistentVolumes().DeleteCollection(ctx, del, sel),
		f.Client.CoreV1().PersistentVolumeClaims(ClaimNamespace).DeleteCollection(ctx, del, sel),
		f.Client.CoreV1().Nodes().DeleteCollection(ctx, del, sel),
	} {
		if err != nil {
			return fmt.Errorf("cleaning up test objects labelled %s: %w", f.Label, err)
		}
	}
	return nil
}

// Must fails the test on a non-nil err.
func (f *Fixtures) Must(err error) {
	f.TB.Helper()
	if err != nil {
		f.TB.Fatal(err)
	}
}

// Node creates a Node object as the kubelet registers one.
func (f *Fixtures) Node(name string) {
	f.TB.Helper()
	_, err := f.Client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: f.Meta(name)}, metav1.CreateOptions{})
	if err != nil {
		f.TB.Fatalf("creating node %s: %v", name, err)
	}
}

// PVSpec is a 1 GiB PV of a CSI driver: filesystem or block, ReadWriteOnce or ReadWriteMany, bound to
// a claim when ClaimName is set.
type PVSpec struct {
	Name, Driver, Handle string
	Block, RWX           bool
	// ClaimNamespace and ClaimName name the PVC the PV is bound to; ClaimUID defaults to "uid-"
	// followed by ClaimName, for claims that exist only in the PV's claimRef.
	ClaimNamespace, ClaimName string
	ClaimUID                  types.UID
}

// size is the capacity of every fixture PV and the request of every fixture PVC.
var size = resource.MustParse("1Gi")

// Modes returns the volume mode and access mode the spec asks for.
func (s PVSpec) Modes() (corev1.PersistentVolumeMode, corev1.PersistentVolumeAccessMode) {
	mode, access := corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce
	if s.Block {
		mode = corev1.PersistentVolumeBlock
	}
	if s.RWX {
		access = corev1.ReadWriteMany
	}
	return mode, access
}

// PV creates the PV of s, failing the test on error.
func (f *Fixtures) PV(s PVSpec) {
	f.TB.Helper()
	f.Must(f.CreatePV(s))
}

// CreatePV creates the PV of s as the external-provisioner leaves it.
func (f *Fixtures) CreatePV(s PVSpec) error {
	mode, access := s.Modes()
	pv := &corev1.PersistentVolume{
		ObjectMeta: f.Meta(s.Name),
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes: []corev1.PersistentVolumeAccessMode{access},
			VolumeMode:  &mode,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: s.Driver, VolumeHandle: s.Handle},
			},
		},
	}
	if s.ClaimName != "" {
		uid := s.ClaimUID
		if uid == "" {
			uid = types.UID("uid-" + s.ClaimName)
		}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: s.ClaimNamespace, Name: s.ClaimName, UID: uid}
	}
	if _, err := f.Client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating PV %s: %w", s.Name, err)
	}
	return nil
}

// CreatePVC creates, in ClaimNamespace, the PVC named name that the PV of s is bound to (its
// VolumeName is s.Name), as the PV controller leaves a bound claim.
func (f *Fixtures) CreatePVC(name string, s PVSpec) (*corev1.PersistentVolumeClaim, error) {
	mode, access := s.Modes()
	pvc, err := f.Client.CoreV1().PersistentVolumeClaims(ClaimNamespace).Create(context.Background(), &corev1.PersistentVolumeClaim{
		ObjectMeta: f.Meta(name),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{access}, VolumeMode: &mode, VolumeName: s.Name,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating PVC %s: %w", name, err)
	}
	return pvc, nil
}

// VA creates a VolumeAttachment, failing the test on error.
func (f *Fixtures) VA(name, attacher, pv, node string, attached bool) {
	f.TB.Helper()
	f.Must(f.CreateVA(name, attacher, pv, node, attached))
}

// CreateVA creates a VolumeAttachment as the attach-detach controller does (not attached), then, when
// attached, sets status.attached as the external-attacher does after a successful ControllerPublish.
func (f *Fixtures) CreateVA(name, attacher, pv, node string, attached bool) error {
	va := &storagev1.VolumeAttachment{
		ObjectMeta: f.Meta(name),
		Spec: storagev1.VolumeAttachmentSpec{
			Attacher: attacher, NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv},
		},
	}
	if _, err := f.Client.StorageV1().VolumeAttachments().Create(context.Background(), va, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating VolumeAttachment %s: %w", name, err)
	}
	if attached {
		return f.patchAttached(name, true)
	}
	return nil
}

// SetAttached sets status.attached of a VolumeAttachment, as the external-attacher does.
func (f *Fixtures) SetAttached(name string, attached bool) {
	f.TB.Helper()
	f.Must(f.patchAttached(name, attached))
}

func (f *Fixtures) patchAttached(name string, attached bool) error {
	patch := fmt.Sprintf(`{"status":{"attached":%t}}`, attached)
	_, err := f.Client.StorageV1().VolumeAttachments().Patch(context.Background(), name, types.MergePatchType,
		[]byte(patch), metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("setting attached=%t on VolumeAttachment %s: %w", attached, name, err)
	}
	return nil
}

// DeleteVA deletes a VolumeAttachment, as the attach-detach controller does after a detach.
func (f *Fixtures) DeleteVA(name string) {
	f.TB.Helper()
	if err := f.Client.StorageV1().VolumeAttachments().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		f.TB.Fatalf("deleting VolumeAttachment %s: %v", name, err)
	}
}

// Parallel runs fn(0..n-1) on a few workers, failing the test with the first error. Creating thousands
// of objects one at a time would spend a benchmark's set-up on round trips.
func (f *Fixtures) Parallel(n int, fn func(i int) error) {
	f.TB.Helper()
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
				if err := fn(i); err != nil {
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
	f.Must(first)
}
