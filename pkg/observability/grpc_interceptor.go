package observability

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// UnaryServerInterceptor counts and times every unary gRPC call (all CSI RPCs are unary) by
// method and gRPC status code. The method label is the short RPC name ("CreateVolume",
// "NodeStageVolume"): CSI method names are unique across the Identity, Controller and Node
// services, and short names keep dashboards readable.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.ObserveGRPC(info.FullMethod, status.Code(err).String(), time.Since(start))
		return resp, err
	}
}

// ObserveGRPC records one finished RPC. fullMethod may be the gRPC full method
// ("/csi.v1.Controller/CreateVolume") or already the short name.
func (m *Metrics) ObserveGRPC(fullMethod, code string, d time.Duration) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	m.grpcRequests.WithLabelValues(method, code).Inc()
	m.grpcDuration.WithLabelValues(method, code).Observe(d.Seconds())
}
