package app

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// TestKubeNodesAgainstAPIServer checks ControllerPublish's node check against a real API server: nodes
// present at start are answered from the cache without a request; a node created after start is found
// at once (by the cache or the fall-back GET); unknown and deleted nodes do not exist.
func TestKubeNodesAgainstAPIServer(t *testing.T) {
	cfg := kubeenv.RestConfig(t)
	c := kubeenv.NewClient(t, cfg)
	kubeenv.WaitReady(t, c, 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	label := kubeenv.UniqueName(t, "nodes")
	newNode := func(name string) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"rds-csi.test/fixture": label}}}
		if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		err := c.CoreV1().Nodes().DeleteCollection(context.Background(), metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: "rds-csi.test/fixture=" + label})
		if err != nil {
			t.Error(err)
		}
	})
	early, late, gone := kubeenv.UniqueName(t, "node"), kubeenv.UniqueName(t, "node"), kubeenv.UniqueName(t, "node")
	newNode(early)
	newNode(gone)

	counter := kubeenv.NewRequestCounter()
	meta, err := metadata.NewForConfig(counter.Wrap(kubeenv.RestConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	nodes := startKubeNodes(ctx, meta)
	if err := nodes.waitSynced(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := counter.Counts(); got["LIST nodes"] != 1 {
		t.Errorf("start-up requests %v, want one LIST of nodes", got)
	}

	before := counter.Counts()["GET nodes"]
	if ok, err := nodes.Exists(ctx, early); !ok || err != nil {
		t.Errorf("node %s present at start: exists %t, %v", early, ok, err)
	}
	if got := counter.Counts()["GET nodes"]; got != before {
		t.Errorf("a cached node cost %d GETs, want none", got-before)
	}

	newNode(late)
	if ok, err := nodes.Exists(ctx, late); !ok || err != nil {
		t.Errorf("node %s created after start: exists %t, %v", late, ok, err)
	}
	if ok, err := nodes.Exists(ctx, kubeenv.UniqueName(t, "no-such-node")); ok || err != nil {
		t.Errorf("unknown node: exists %t, %v; want false without error", ok, err)
	}

	if err := c.CoreV1().Nodes().Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := nodes.Exists(ctx, gone)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted node %s still exists for the check after 20s", gone)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStripNodeMetadataKeepsTheName(t *testing.T) {
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u1", ResourceVersion: "7",
		Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
	out, err := stripNodeMetadata(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(*metav1.PartialObjectMetadata)
	if m.Name != "n1" || m.UID != "u1" || m.ResourceVersion != "7" || m.Labels != nil || m.Annotations != nil || m.ManagedFields != nil {
		t.Errorf("stripped metadata %+v", m.ObjectMeta)
	}
	// Tombstones and other types pass through unchanged.
	if out, _ := stripNodeMetadata("other"); out != "other" {
		t.Errorf("non-metadata object changed to %v", out)
	}
}
