package driver

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/observability"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Mode says which CSI services this process runs.
type Mode string

const (
	ModeController Mode = "controller"
	ModeNode       Mode = "node"
	ModeAll        Mode = "all"
)

// ParseMode checks a --mode value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeController, ModeNode, ModeAll:
		return m, nil
	}
	return "", fmt.Errorf("mode %q is not one of controller, node, all", s)
}

func (m Mode) runsController() bool { return m == ModeController || m == ModeAll }
func (m Mode) runsNode() bool       { return m == ModeNode || m == ModeAll }

// Options are the driver's settings.
type Options struct {
	Mode            Mode
	DriverName      string
	Version         string
	NodeID          string
	DefaultLocation volume.Location // base path when a StorageClass names none
	NVMeAddress     string          // data-plane address put into volume contexts
	NVMePort        int
	ProbeTimeout    time.Duration
}

// Volumes is the controller's view of the RDS (implemented by *volume.Manager).
type Volumes interface {
	Create(ctx context.Context, r volume.CreateRequest) (*volume.Volume, error)
	Delete(ctx context.Context, id string, defaultLoc volume.Location) error
	Expand(ctx context.Context, id string, requiredBytes, limitBytes int64) (*volume.Volume, error)
	Get(ctx context.Context, id string) (*volume.Volume, error)
	Health(ctx context.Context, id string) (*volume.Volume, string, error)
	Page(ctx context.Context, token string, maxEntries int) ([]volume.Volume, string, error)
	Capacity(ctx context.Context, pool string) (int64, error)

	CreateFrom(ctx context.Context, r volume.CreateRequest, src volume.Source) (*volume.Volume, error)
	CreateSnapshot(ctx context.Context, id, sourceVolumeID string) (*volume.Snapshot, error)
	DeleteSnapshot(ctx context.Context, id string) error
	ListSnapshots(ctx context.Context, f volume.SnapshotFilter) ([]volume.Snapshot, error)
}

// Prober tells whether the RDS answers (implemented by *rds.Client).
type Prober interface {
	Ping(ctx context.Context) error
}

// Deps are the driver's outside dependencies; the controller ones may be nil in node mode and the node ones
// in controller mode.
type Deps struct {
	Volumes Volumes
	Prober  Prober

	Initiator nvme.Initiator
	Mounter   mount.Mounter
	// Attachments enforces who may hold a volume; required in controller mode.
	Attachments Attachments
	// Nodes checks node ids against Kubernetes; nil without Kubernetes.
	Nodes Nodes

	// Metrics records NVMe connects and disconnects on the node; may be nil.
	Metrics *observability.Metrics
	// Interceptors run around every RPC after request logging (metrics, for instance).
	Interceptors []grpc.UnaryServerInterceptor
}

// Driver implements the CSI services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	opts      Options
	volumes   Volumes
	prober    Prober
	attach    Attachments
	nodes     Nodes
	initiator nvme.Initiator
	mounter   mount.Mounter
	metrics   *observability.Metrics
	guard     *guard
	icpts     []grpc.UnaryServerInterceptor
	server    *grpc.Server
}

// New checks the options and returns a driver ready to Serve.
func New(opts Options, deps Deps) (*Driver, error) {
	if opts.DriverName == "" {
		return nil, fmt.Errorf("driver name is empty")
	}
	if opts.Mode.runsController() && (deps.Volumes == nil || deps.Attachments == nil) {
		return nil, fmt.Errorf("controller mode needs a connection to the RDS and an attachment manager")
	}
	if opts.Mode.runsNode() && opts.NodeID == "" {
		return nil, fmt.Errorf("node mode needs --node-id")
	}
	if opts.Mode.runsNode() && (deps.Initiator == nil || deps.Mounter == nil) {
		return nil, fmt.Errorf("node mode needs an NVMe initiator and a mounter")
	}
	if opts.NVMePort == 0 {
		opts.NVMePort = 4420
	}
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = 3 * time.Second
	}
	return &Driver{opts: opts, volumes: deps.Volumes, prober: deps.Prober, attach: deps.Attachments, nodes: deps.Nodes, initiator: deps.Initiator, mounter: deps.Mounter,
		metrics: deps.Metrics, guard: newGuard(), icpts: deps.Interceptors}, nil
}

// Serve listens on endpoint (unix:///path or a path) and serves until Stop.
func (d *Driver) Serve(endpoint string) error {
	l, err := listen(endpoint)
	if err != nil {
		return err
	}
	d.server = grpc.NewServer(grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{logRPC}, d.icpts...)...))
	csi.RegisterIdentityServer(d.server, d)
	if d.opts.Mode.runsController() {
		csi.RegisterControllerServer(d.server, d)
	}
	if d.opts.Mode.runsNode() {
		csi.RegisterNodeServer(d.server, d)
	}
	klog.InfoS("serving CSI", "endpoint", endpoint, "mode", d.opts.Mode, "driver", d.opts.DriverName, "version", d.opts.Version)
	return d.server.Serve(l)
}

// Stop stops serving; in-flight RPCs finish first.
func (d *Driver) Stop() {
	if d.server != nil {
		d.server.GracefulStop()
	}
}

func listen(endpoint string) (net.Listener, error) {
	path := endpoint
	if strings.HasPrefix(endpoint, "unix://") {
		path = strings.TrimPrefix(endpoint, "unix://")
	} else if strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("endpoint %q: only unix:// sockets are supported", endpoint)
	}
	if path == "" {
		return nil, fmt.Errorf("endpoint %q has no socket path", endpoint)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return net.Listen("unix", path)
}

// logRPC logs every request and error with secrets stripped by protosanitizer.
func logRPC(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	klog.V(4).InfoS("gRPC call", "method", info.FullMethod, "request", protosanitizer.StripSecrets(req))
	resp, err := handler(ctx, req)
	if err != nil {
		klog.ErrorS(err, "gRPC call failed", "method", info.FullMethod)
	} else {
		klog.V(5).InfoS("gRPC call done", "method", info.FullMethod, "response", protosanitizer.StripSecrets(resp))
	}
	return resp, err
}
