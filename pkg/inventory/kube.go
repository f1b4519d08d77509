package inventory

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// SnapshotContentGVR is the VolumeSnapshotContent resource of the external-snapshotter CRDs.
var SnapshotContentGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}

// pageSize bounds one LIST; a cluster with more objects is read in pages.
var pageSize int64 = 500

// Kube reads the driver's PVs (client-go) and VolumeSnapshotContents (a dynamic client: the snapshot CRD
// has no typed client in this module) from a cluster.
type Kube struct {
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Driver  string // the CSI driver name, e.g. rds.csi.srvlab.io
}

// PersistentVolumes lists every PV whose spec.csi.driver is the driver's.
func (k *Kube) PersistentVolumes(ctx context.Context) ([]Ref, error) {
	var out []Ref
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		l, err := k.Client.CoreV1().PersistentVolumes().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			if r, ok := pvRef(&l.Items[i], k.Driver); ok {
				out = append(out, r)
			}
		}
		if opts.Continue = l.Continue; opts.Continue == "" {
			return out, nil
		}
	}
}

// SnapshotContents lists every VolumeSnapshotContent whose spec.driver is the driver's. Without the CRD
// (the API server does not know the resource) it returns known=false.
func (k *Kube) SnapshotContents(ctx context.Context) ([]Ref, bool, error) {
	var out []Ref
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		l, err := k.Dynamic.Resource(SnapshotContentGVR).List(ctx, opts)
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		for i := range l.Items {
			if r, ok := contentRef(&l.Items[i], k.Driver); ok {
				out = append(out, r)
			}
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			return out, true, nil
		}
	}
}

// pvRef reads the handle of a PV of driver.
func pvRef(pv *corev1.PersistentVolume, driver string) (Ref, bool) {
	csi := pv.Spec.CSI
	if csi == nil || csi.Driver != driver || csi.VolumeHandle == "" {
		return Ref{}, false
	}
	r := Ref{Name: pv.Name, Handle: csi.VolumeHandle, BasePath: csi.VolumeAttributes["basePath"]}
	if q, ok := pv.Spec.Capacity[corev1.ResourceStorage]; ok {
		r.SizeBytes = q.Value()
	}
	return r, true
}

// contentRef reads the snapshot handle of a VolumeSnapshotContent of driver: status.snapshotHandle (a
// dynamically made snapshot) or spec.source.snapshotHandle (a pre-provisioned one).
func contentRef(u *unstructured.Unstructured, driver string) (Ref, bool) {
	d, _, _ := unstructured.NestedString(u.Object, "spec", "driver")
	if d != driver {
		return Ref{}, false
	}
	h, _, _ := unstructured.NestedString(u.Object, "status", "snapshotHandle")
	if h == "" {
		h, _, _ = unstructured.NestedString(u.Object, "spec", "source", "snapshotHandle")
	}
	if h == "" {
		return Ref{}, false // not made yet: it names no snapshot
	}
	r := Ref{Name: u.GetName(), Handle: h}
	if n, ok, _ := unstructured.NestedInt64(u.Object, "status", "restoreSize"); ok {
		r.SizeBytes = n
	} else if f, ok, _ := unstructured.NestedFloat64(u.Object, "status", "restoreSize"); ok {
		r.SizeBytes = int64(f)
	}
	return r, true
}

// PVHolding returns the name of a PV of the driver with volumeHandle handle, or "".
func PVHolding(ctx context.Context, c Cluster, handle string) (string, error) {
	pvs, err := c.PersistentVolumes(ctx)
	if err != nil {
		return "", fmt.Errorf("listing the cluster's PersistentVolumes: %w", err)
	}
	for _, p := range pvs {
		if p.Handle == handle {
			return p.Name, nil
		}
	}
	return "", nil
}
