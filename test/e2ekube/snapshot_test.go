//go:build e2ekube

package e2ekube

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

var (
	snapshotGVR        = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	snapshotContentGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
)

// Scenario 4: a VolumeSnapshot of a written PVC (the chart's VolumeSnapshotClass, csi-snapshotter and
// snapshot-controller) restored into a new PVC holds the same data; so does a clone of the PVC. Deleting
// all of it leaves nothing on the RDS.
func TestSnapshotRestoreAndClone(t *testing.T) {
	l := need(t)
	ctx := context.Background()
	src, token := uniq("snapsrc"), rand.String(16)
	l.createPVC(t, pvc(src, "rds-nvme", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce))
	l.runPod(t, pod(src+"-writer", src, false, "set -e; echo "+token+" > /data/f; sync"))
	l.deletePod(t, src+"-writer", true)
	srcPV := l.boundPV(t, src)

	snap := uniq("snap")
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": snap, "namespace": testNS},
		"spec": map[string]any{"volumeSnapshotClassName": "rds-snapshot",
			"source": map[string]any{"persistentVolumeClaimName": src}},
	}}
	if _, err := l.dyn.Resource(snapshotGVR).Namespace(testNS).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.dyn.Resource(snapshotGVR).Namespace(testNS).Delete(ctx, snap, metav1.DeleteOptions{}) })
	var contentName string
	poll(t, 2*time.Minute, "snapshot "+snap+" ready", func() (bool, string) {
		s, err := l.dyn.Resource(snapshotGVR).Namespace(testNS).Get(ctx, snap, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready, _, _ := unstructured.NestedBool(s.Object, "status", "readyToUse")
		contentName, _, _ = unstructured.NestedString(s.Object, "status", "boundVolumeSnapshotContentName")
		return ready, fmt.Sprintf("status %v; events:%s", s.Object["status"], l.events(snap))
	})
	content, err := l.dyn.Resource(snapshotContentGVR).Get(ctx, contentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snapID, _, _ := unstructured.NestedString(content.Object, "status", "snapshotHandle")
	if snapID == "" {
		t.Fatalf("VolumeSnapshotContent %s has no snapshotHandle: %v", contentName, content.Object["status"])
	}
	if held := l.simHolds(t, snapID); len(held) == 0 {
		t.Fatalf("the RDS holds nothing of snapshot %s", snapID)
	}

	restored := uniq("restored")
	c := pvc(restored, "rds-nvme", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	c.Spec.DataSource = &corev1.TypedLocalObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: snap}
	l.createPVC(t, c)
	clone := uniq("clone")
	c = pvc(clone, "rds-nvme", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	c.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: src}
	l.createPVC(t, c)
	var pvs []*corev1.PersistentVolume
	for _, claim := range []string{restored, clone} {
		out := l.runPod(t, pod(claim+"-reader", claim, false, "cat /data/f"))
		if !strings.Contains(out, token) {
			t.Fatalf("%s does not hold the source's data: %q", claim, out)
		}
		l.deletePod(t, claim+"-reader", true)
		pv := l.boundPV(t, claim)
		if pv.Spec.CSI.VolumeHandle == srcPV.Spec.CSI.VolumeHandle {
			t.Fatalf("%s got the source's own volume", claim)
		}
		pvs = append(pvs, pv)
	}

	for _, claim := range []string{restored, clone, src} {
		l.deletePVC(t, claim, true)
	}
	if err := l.dyn.Resource(snapshotGVR).Namespace(testNS).Delete(ctx, snap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pvs = append(pvs, srcPV)
	for _, pv := range pvs {
		l.waitPVGone(t, pv.Name, 2*time.Minute)
	}
	ids := []string{snapID}
	for _, pv := range pvs {
		ids = append(ids, pv.Spec.CSI.VolumeHandle)
	}
	poll(t, 2*time.Minute, "RDS holds nothing of the snapshot and the volumes", func() (bool, string) {
		var left []string
		for _, id := range ids {
			left = append(left, l.simHolds(t, id)...)
		}
		return len(left) == 0, strings.Join(left, "; ")
	})
}
