package inventory

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// snapshotContentCRD is the VolumeSnapshotContent CRD of external-snapshotter, cut to what the API server
// needs to serve it: its names and scope, and an open schema (the real one validates more, which does not
// change what a LIST returns).
func snapshotContentCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "volumesnapshotcontents.snapshot.storage.k8s.io",
			// as the real CRD carries it: *.k8s.io groups need the API review's approval
			"annotations": map[string]any{"api-approved.kubernetes.io": "https://github.com/kubernetes-csi/external-snapshotter/pull/955"}},
		"spec": map[string]any{
			"group": "snapshot.storage.k8s.io", "scope": "Cluster",
			"names": map[string]any{"plural": "volumesnapshotcontents", "singular": "volumesnapshotcontent",
				"kind": "VolumeSnapshotContent", "listKind": "VolumeSnapshotContentList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
}

// ensureCRD installs the CRD unless it is there, waits until it is served, and returns whether it was
// there before.
func ensureCRD(t *testing.T, dc dynamic.Interface) (existed bool) {
	t.Helper()
	ctx := context.Background()
	_, err := dc.Resource(crdGVR).Create(ctx, snapshotContentCRD(), metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		existed = true
	case err != nil:
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dc.Resource(SnapshotContentGVR).List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return existed
		}
		if time.Now().After(deadline) {
			t.Fatalf("the VolumeSnapshotContent CRD is not served after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func createPV(t *testing.T, kc kubernetes.Interface, name, driver, handle string, size int64) {
	t.Helper()
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI)},
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: handle,
			VolumeAttributes: map[string]string{"basePath": "pool/k8s"}}},
	}}
	if _, err := kc.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

func createContent(t *testing.T, dc dynamic.Interface, name, driver string, spec, status map[string]any) {
	t.Helper()
	spec["driver"] = driver
	spec["deletionPolicy"] = "Delete"
	spec["volumeSnapshotRef"] = map[string]any{"name": "s", "namespace": "default"}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
		"metadata": map[string]any{"name": name}, "spec": spec}}
	if status != nil {
		u.Object["status"] = status
	}
	if _, err := dc.Resource(SnapshotContentGVR).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dc.Resource(SnapshotContentGVR).Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// TestKubeClusterAgainstAPIServer reads PVs and VolumeSnapshotContents from a real kube-apiserver: only the
// driver's, across pages, with both kinds of snapshot handle; and then runs `rds-csi orphans` through its
// flags against the same API server and the simulator.
func TestKubeClusterAgainstAPIServer(t *testing.T) {
	cfg := kubeenv.RestConfig(t)
	kc := kubeenv.NewClient(t, cfg)
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	driver := kubeenv.DriverName(t)
	k := &Kube{Client: kc, Dynamic: dc, Driver: driver}
	if _, err := dc.Resource(crdGVR).Get(ctx, "volumesnapshotcontents.snapshot.storage.k8s.io", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, known, err := k.SnapshotContents(ctx); err != nil || known {
			t.Fatalf("without the CRD: known=%v err=%v, want unknown", known, err)
		}
	}
	if !ensureCRD(t, dc) {
		t.Cleanup(func() {
			_ = dc.Resource(crdGVR).Delete(context.Background(), "volumesnapshotcontents.snapshot.storage.k8s.io", metav1.DeleteOptions{})
		})
	}
	defer func(n int64) { pageSize = n }(pageSize)
	pageSize = 2

	names := map[string]string{}
	for _, h := range []string{"pvc-kept", "pvc-legacy", "pvc-gone"} {
		names[h] = kubeenv.UniqueName(t, "pv")
		createPV(t, kc, names[h], driver, h, gib)
	}
	createPV(t, kc, kubeenv.UniqueName(t, "pv"), "other.csi.example.com", "pvc-orphan", gib) // another driver's: ignored
	made, pre, gone := kubeenv.UniqueName(t, "vsc"), kubeenv.UniqueName(t, "vsc"), kubeenv.UniqueName(t, "vsc")
	createContent(t, dc, made, driver, map[string]any{"source": map[string]any{"volumeHandle": "pvc-kept"}},
		map[string]any{"snapshotHandle": "snap-kept", "restoreSize": 2 * gib, "readyToUse": true})
	createContent(t, dc, pre, driver, map[string]any{"source": map[string]any{"snapshotHandle": "snap-pre"}}, nil)
	createContent(t, dc, gone, driver, map[string]any{"source": map[string]any{"snapshotHandle": "snap-gone"}}, nil)
	createContent(t, dc, kubeenv.UniqueName(t, "vsc"), "other.csi.example.com",
		map[string]any{"source": map[string]any{"snapshotHandle": "snap-orphan"}}, nil)

	pvs, err := k.PersistentVolumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var handles []string
	for _, p := range pvs {
		handles = append(handles, p.Handle)
		if p.BasePath != "pool/k8s" || p.SizeBytes != gib || p.Name != names[p.Handle] {
			t.Errorf("PV ref %+v", p)
		}
	}
	slices.Sort(handles)
	if want := []string{"pvc-gone", "pvc-kept", "pvc-legacy"}; !slices.Equal(handles, want) {
		t.Errorf("PV handles %v, want %v", handles, want)
	}
	contents, known, err := k.SnapshotContents(ctx)
	if err != nil || !known {
		t.Fatalf("contents: known=%v err=%v", known, err)
	}
	got := map[string]Ref{}
	for _, c := range contents {
		got[c.Handle] = c
	}
	if len(got) != 3 || got["snap-kept"].SizeBytes != 2*gib || got["snap-kept"].Name != made || got["snap-pre"].Name != pre {
		t.Errorf("contents %+v", contents)
	}

	// The command itself, through its flags: the same report as with the fake cluster of the scenario.
	e := newEnv(t, rdssimDefault())
	scenario(t, e)
	createContent(t, dc, kubeenv.UniqueName(t, "vsc"), driver, map[string]any{"source": map[string]any{"snapshotHandle": "snap-kept"}}, nil)
	kubeconfig := os.Getenv(kubeenv.EnvKubeconfig)
	var stdout, stderr bytes.Buffer
	args := append(simArgs(e), "--kubeconfig", kubeconfig, "--driver-name", driver)
	if code := OrphansMain(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	// The PV names are unique per run; the rest of the table is the scenario's.
	table := stdout.String()
	for h, n := range names {
		table = strings.ReplaceAll(table, n, "<pv "+h+">")
	}
	table = strings.ReplaceAll(table, gone, "<vsc snap-gone>")
	for _, want := range []string{"rds only      volume            pvc-orphan", "snap-orphan", "leftover          pvc-leftover",
		"foreign-disk      vm-disk", "cluster only  pv                pvc-gone      <pv pvc-gone>", "snap-gone     <vsc snap-gone>",
		"snap-pre", "10 on one side only, 3 of them deletable with --delete"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func simArgs(e *env) []string {
	return []string{"--rds-address", e.sim.Addr(), "--rds-key-file", e.sim.ClientKeyFile(), "--rds-host-key", e.sim.KnownHostsFile(),
		"--base-path", "pool/k8s"}
}
