package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// logRPC logs every request and every failure, with secrets stripped by protosanitizer. A failure names
// the volume (or snapshot) it was about, so a log line is enough to find the PV. An answer the CO is
// expected to retry (retried) is logged below error level: it is the protocol working, not a fault, and
// at error level it would bury the real ones.
func logRPC(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	klog.V(4).InfoS("gRPC call", "method", info.FullMethod, "request", protosanitizer.StripSecrets(req))
	resp, err := handler(ctx, req)
	if err == nil {
		klog.V(5).InfoS("gRPC call done", "method", info.FullMethod, "response", protosanitizer.StripSecrets(resp))
		return resp, err
	}
	code := status.Code(err)
	kv := append([]any{"method", info.FullMethod, "code", code.String()}, subjectOf(req)...)
	if retried(info.FullMethod, code) {
		klog.V(2).InfoS("gRPC call answered for a retry", append(kv, "err", err.Error())...)
	} else {
		klog.ErrorS(err, "gRPC call failed", kv...)
	}
	return resp, err
}

// retried reports whether a failure is an answer the CO retries by design: Aborted (another operation on
// the volume is in flight, or a list token went stale), and NotFound on the paths that take a volume or
// snapshot away, where "already gone" is the end the CO was heading for.
func retried(method string, code codes.Code) bool {
	switch code {
	case codes.Aborted:
		return true
	case codes.NotFound:
		return teardownMethods[method]
	}
	return false
}

var teardownMethods = map[string]bool{
	csi.Controller_DeleteVolume_FullMethodName:              true,
	csi.Controller_DeleteSnapshot_FullMethodName:            true,
	csi.Controller_ControllerUnpublishVolume_FullMethodName: true,
	csi.Node_NodeUnpublishVolume_FullMethodName:             true,
	csi.Node_NodeUnstageVolume_FullMethodName:               true,
}

// subjectOf names what a request is about: its volume id, snapshot id or the name of what it creates.
func subjectOf(req any) []any {
	var kv []any
	if r, ok := req.(interface{ GetVolumeId() string }); ok && r.GetVolumeId() != "" {
		kv = append(kv, "volumeID", r.GetVolumeId())
	}
	if r, ok := req.(interface{ GetSourceVolumeId() string }); ok && r.GetSourceVolumeId() != "" {
		kv = append(kv, "sourceVolumeID", r.GetSourceVolumeId())
	}
	if r, ok := req.(interface{ GetSnapshotId() string }); ok && r.GetSnapshotId() != "" {
		kv = append(kv, "snapshotID", r.GetSnapshotId())
	}
	if r, ok := req.(interface{ GetName() string }); ok && r.GetName() != "" {
		kv = append(kv, "name", r.GetName())
	}
	return kv
}
