package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// File is a cluster read from a saved listing, for a machine that cannot reach the API server (and for the
// demo, which has no cluster): the output of
//
//	kubectl get pv,volumesnapshotcontent -o json > cluster.json
//
// (a List, JSON or YAML; a single object works too). Snapshots are compared only when the file holds at
// least one VolumeSnapshotContent: a file without any cannot tell "none" from "not exported".
type File struct {
	pvs, contents []Ref
	hasContents   bool
}

// ReadFile reads a listing saved from the cluster; only objects of driver are kept.
func ReadFile(path, driver string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := ParseFile(b, driver)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseFile parses a listing (see File).
func ParseFile(b []byte, driver string) (*File, error) {
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("neither JSON nor YAML: %w", err)
	}
	var top map[string]any
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, fmt.Errorf("not a Kubernetes object or List (want the output of kubectl get pv,volumesnapshotcontent -o json)")
	}
	objs := []map[string]any{top}
	if items, ok := top["items"]; ok {
		list, ok := items.([]any)
		if !ok {
			return nil, fmt.Errorf("items is not a list")
		}
		objs = objs[:0]
		for i, it := range list {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("items[%d] is not an object", i)
			}
			objs = append(objs, m)
		}
	}
	f := &File{}
	for i, o := range objs {
		u := &unstructured.Unstructured{Object: o}
		switch u.GetKind() {
		case "PersistentVolume":
			raw, err := json.Marshal(o)
			if err != nil {
				return nil, err
			}
			var pv corev1.PersistentVolume
			if err := json.Unmarshal(raw, &pv); err != nil {
				return nil, fmt.Errorf("item %d (PersistentVolume %s): %w", i, u.GetName(), err)
			}
			if r, ok := pvRef(&pv, driver); ok {
				f.pvs = append(f.pvs, r)
			}
		case "VolumeSnapshotContent":
			f.hasContents = true
			if r, ok := contentRef(u, driver); ok {
				f.contents = append(f.contents, r)
			}
		case "List":
			if len(objs) == 1 { // an empty List
				continue
			}
			return nil, fmt.Errorf("item %d is a nested List", i)
		default:
			// other kinds (a PVC saved along) say nothing about what the driver owns
		}
	}
	return f, nil
}

// PersistentVolumes returns the file's PVs of the driver.
func (f *File) PersistentVolumes(context.Context) ([]Ref, error) { return f.pvs, nil }

// SnapshotContents returns the file's VolumeSnapshotContents of the driver; known only if it holds any.
func (f *File) SnapshotContents(context.Context) ([]Ref, bool, error) {
	return f.contents, f.hasContents, nil
}

// None is the cluster of --no-cluster: nothing is known about it. It is refused for --delete.
type None struct{}

// PersistentVolumes returns none.
func (None) PersistentVolumes(context.Context) ([]Ref, error) { return nil, nil }

// SnapshotContents says nothing is known.
func (None) SnapshotContents(context.Context) ([]Ref, bool, error) { return nil, false, nil }
