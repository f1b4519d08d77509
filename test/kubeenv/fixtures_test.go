package kubeenv

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestFixtures checks that the objects come out as the tests of the kube lane rely on (bound claim,
// modes, attached status) and that DeleteAll leaves none of them behind.
func TestFixtures(t *testing.T) {
	ctx := context.Background()
	f := NewFixturesKept(t)
	driver := DriverName(t)
	node, pvName, pvcName, vaName := UniqueName(t, "node"), UniqueName(t, "pv"), UniqueName(t, "pvc"), UniqueName(t, "va")

	f.Node(node)
	spec := PVSpec{Name: pvName, Driver: driver, Handle: "vol-1", Block: true, RWX: true}
	pvc, err := f.CreatePVC(pvcName, spec)
	f.Must(err)
	spec.ClaimNamespace, spec.ClaimName, spec.ClaimUID = ClaimNamespace, pvcName, pvc.UID
	f.PV(spec)
	f.VA(vaName, driver, pvName, node, true)

	pv, err := f.Client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	f.Must(err)
	if got := pv.Spec.ClaimRef; got == nil || got.Name != pvcName || got.UID != pvc.UID {
		t.Errorf("PV claimRef = %+v, want %s (uid %s)", got, pvcName, pvc.UID)
	}
	if *pv.Spec.VolumeMode != corev1.PersistentVolumeBlock || pv.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Errorf("PV modes = %s %v, want Block [ReadWriteMany]", *pv.Spec.VolumeMode, pv.Spec.AccessModes)
	}
	if pvc.Spec.VolumeName != pvName {
		t.Errorf("PVC volumeName = %q, want %q", pvc.Spec.VolumeName, pvName)
	}
	for _, want := range []bool{true, false} {
		f.SetAttached(vaName, want)
		va, err := f.Client.StorageV1().VolumeAttachments().Get(ctx, vaName, metav1.GetOptions{})
		f.Must(err)
		if va.Status.Attached != want {
			t.Errorf("after SetAttached(%t): status.attached = %t", want, va.Status.Attached)
		}
	}

	f.Must(f.DeleteAll())
	sel := metav1.ListOptions{LabelSelector: FixtureLabel + "=" + f.Label}
	lists := map[string]func() (runtime.Object, error){
		"nodes": func() (runtime.Object, error) { return f.Client.CoreV1().Nodes().List(ctx, sel) },
		"PVs":   func() (runtime.Object, error) { return f.Client.CoreV1().PersistentVolumes().List(ctx, sel) },
		"PVCs": func() (runtime.Object, error) {
			return f.Client.CoreV1().PersistentVolumeClaims(ClaimNamespace).List(ctx, sel)
		},
		"VolumeAttachments": func() (runtime.Object, error) { return f.Client.StorageV1().VolumeAttachments().List(ctx, sel) },
	}
	// The test API server runs no controller manager, so no protection finalizer delays a deletion.
	for kind, list := range lists {
		l, err := list()
		f.Must(err)
		if n := apimeta.LenList(l); n != 0 {
			t.Errorf("%d %s left after DeleteAll", n, kind)
		}
	}
}
