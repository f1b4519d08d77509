package app

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

var nodesResource = corev1.SchemeGroupVersion.WithResource("nodes")

// kubeNodes answers ControllerPublish's "does this node exist" from a cache of the Nodes' metadata,
// filled by one LIST and kept by one WATCH however many nodes and publishes there are. Only metadata is
// fetched: a full Node carries its images and conditions, tens of kilobytes each, of which the check
// needs the name. A node missing from the cache is asked for once more with a GET, so a Node created a
// moment before its first publish is not refused while the watch catches up.
type kubeNodes struct {
	client  metadata.Interface
	indexer cache.Indexer
	synced  cache.InformerSynced
}

// startKubeNodes starts the Node metadata informer, which runs until ctx ends. Call waitSynced before
// the first Exists.
func startKubeNodes(ctx context.Context, client metadata.Interface) *kubeNodes {
	factory := metadatainformer.NewSharedInformerFactoryWithOptions(client, 0,
		metadatainformer.WithTransform(stripNodeMetadata))
	informer := factory.ForResource(nodesResource).Informer()
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	return &kubeNodes{client: client, indexer: informer.GetIndexer(), synced: informer.HasSynced}
}

// waitSynced waits, at most timeout, until the informer's first list is in the cache.
func (n *kubeNodes) waitSynced(ctx context.Context, timeout time.Duration) error {
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(waitCtx.Done(), n.synced) {
		return fmt.Errorf("nodes not listed within %s (is the API server reachable, and may this service "+
			"account get, list and watch nodes?): %w", timeout, context.Cause(waitCtx))
	}
	return nil
}

// Exists reports whether the Node exists: from the cache, or from the API server when the cache does not
// have it (yet).
func (n *kubeNodes) Exists(ctx context.Context, name string) (bool, error) {
	if _, ok, err := n.indexer.GetByKey(name); err == nil && ok {
		return true, nil
	}
	_, err := n.client.Resource(nodesResource).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, err
}

// stripNodeMetadata keeps what identifies a node; labels, annotations and managed fields are the bulk of
// its metadata and are never read.
func stripNodeMetadata(obj interface{}) (interface{}, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields, m.Annotations, m.Labels = nil, nil, nil
	}
	return obj, nil
}
