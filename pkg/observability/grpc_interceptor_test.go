package observability

import (
	"context"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestUnaryServerInterceptorOverRealGRPC serves gRPC's own health service through the interceptor
// on a loopback socket and calls it: a known service answers OK, an unknown one NotFound, so both
// codes come from a real server rather than from a hand-made handler.
func TestUnaryServerInterceptorOverRealGRPC(t *testing.T) {
	m := NewMetrics()
	srv := grpc.NewServer(grpc.UnaryInterceptor(m.UnaryServerInterceptor()))
	hs := health.NewServer()
	hs.SetServingStatus("csi", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	client := healthpb.NewHealthClient(conn)
	calls := []struct {
		service string
		want    codes.Code
	}{{"csi", codes.OK}, {"csi", codes.OK}, {"nope", codes.NotFound}}
	for _, c := range calls {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: c.service})
		if got := status.Code(err); got != c.want {
			t.Fatalf("Check(%q) = %v, want %v", c.service, got, c.want)
		}
	}

	tests := []struct {
		code string
		want float64
	}{{"OK", 2}, {"NotFound", 1}, {"Internal", 0}}
	for _, tc := range tests {
		if got := testutil.ToFloat64(m.grpcRequests.WithLabelValues("Check", tc.code)); got != tc.want {
			t.Errorf("grpc_requests_total{method=Check,code=%s} = %v, want %v", tc.code, got, tc.want)
		}
	}
	mf := family(t, m, "rds_csi_grpc_request_duration_seconds")
	var observed uint64
	for _, metric := range mf.GetMetric() {
		observed += metric.GetHistogram().GetSampleCount()
	}
	if observed != 3 {
		t.Errorf("duration histogram has %d observations, want 3", observed)
	}
}

func TestObserveGRPCMethodLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/csi.v1.Controller/CreateVolume", "CreateVolume"},
		{"/csi.v1.Node/NodeStageVolume", "NodeStageVolume"},
		{"Probe", "Probe"},
	}
	for _, tc := range tests {
		m := NewMetrics()
		m.ObserveGRPC(tc.in, "OK", 0)
		if got := testutil.ToFloat64(m.grpcRequests.WithLabelValues(tc.want, "OK")); got != 1 {
			t.Errorf("ObserveGRPC(%q): no count under method %q", tc.in, tc.want)
		}
	}
}
