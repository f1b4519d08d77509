package driver

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// captureKlog sends klog's output at verbosity v to a buffer for the rest of the test.
func captureKlog(t *testing.T, v string) *bytes.Buffer {
	t.Helper()
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, val := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "v": v} {
		if err := fs.Set(k, val); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	klog.SetOutput(&buf)
	t.Cleanup(func() {
		klog.SetOutput(nil)
		_ = fs.Set("logtostderr", "true")
		_ = fs.Set("v", "0")
	})
	return &buf
}

// TestLogRPC: a failure is logged with the volume it was about; an answer the CO retries by design is not
// an error line.
func TestLogRPC(t *testing.T) {
	cases := []struct {
		name      string
		method    string
		req       any
		err       error
		wantError bool   // logged at error level
		mentions  string // in the line
	}{
		{"a failure names the volume", csi.Node_NodeStageVolume_FullMethodName,
			&csi.NodeStageVolumeRequest{VolumeId: "pvc-a"}, status.Error(codes.Internal, "mkfs failed"), true, `volumeID="pvc-a"`},
		{"a snapshot failure names the snapshot", csi.Controller_DeleteSnapshot_FullMethodName,
			&csi.DeleteSnapshotRequest{SnapshotId: "snap-a"}, status.Error(codes.Unavailable, "RDS unavailable"), true, `snapshotID="snap-a"`},
		{"a create names what it creates", csi.Controller_CreateVolume_FullMethodName,
			&csi.CreateVolumeRequest{Name: "pvc-new"}, status.Error(codes.ResourceExhausted, "no space"), true, `name="pvc-new"`},
		{"Aborted is a retry", csi.Controller_ControllerPublishVolume_FullMethodName,
			&csi.ControllerPublishVolumeRequest{VolumeId: "pvc-a"}, status.Error(codes.Aborted, "in progress"), false, `volumeID="pvc-a"`},
		{"NotFound while deleting is a retry", csi.Controller_DeleteVolume_FullMethodName,
			&csi.DeleteVolumeRequest{VolumeId: "pvc-a"}, status.Error(codes.NotFound, "gone"), false, `code="NotFound"`},
		{"NotFound while publishing is an error", csi.Controller_ControllerPublishVolume_FullMethodName,
			&csi.ControllerPublishVolumeRequest{VolumeId: "pvc-a"}, status.Error(codes.NotFound, "no such volume"), true, `code="NotFound"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := captureKlog(t, "2")
			_, err := logRPC(context.Background(), tc.req, &grpc.UnaryServerInfo{FullMethod: tc.method},
				func(context.Context, any) (any, error) { return nil, tc.err })
			if err != tc.err {
				t.Fatalf("logRPC changed the error: %v", err)
			}
			klog.Flush()
			out := buf.String()
			if isError := strings.HasPrefix(out, "E"); isError != tc.wantError {
				t.Fatalf("error level %v, want %v: %q", isError, tc.wantError, out)
			}
			if !strings.Contains(out, tc.mentions) || !strings.Contains(out, tc.method) {
				t.Fatalf("log %q does not mention %s and the method", out, tc.mentions)
			}
		})
	}
	t.Run("a retry is quiet at the default verbosity", func(t *testing.T) {
		buf := captureKlog(t, "0")
		_, _ = logRPC(context.Background(), &csi.NodePublishVolumeRequest{VolumeId: "pvc-a"},
			&grpc.UnaryServerInfo{FullMethod: csi.Node_NodePublishVolume_FullMethodName},
			func(context.Context, any) (any, error) { return nil, status.Error(codes.Aborted, "in progress") })
		klog.Flush()
		if buf.Len() != 0 {
			t.Fatalf("logged %q", buf.String())
		}
	})
}
