// Package driver is the CSI surface of rds-csi: the identity, controller and node services over gRPC on a
// unix socket, as thin handlers that validate a request, call one function of pkg/volume (controller) or
// pkg/node (node) and map its error to a code (errors.go). Every dependency is behind a small interface
// owned here and passed in at construction; internal/app builds them from the command line.
package driver

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nodeid"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/observability"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// DefaultDriverName is the CSI driver name existing users' volumes carry.
const DefaultDriverName = "rds.csi.srvlab.io"

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

// RunsController reports whether the mode serves the controller service.
func (m Mode) RunsController() bool { return m == ModeController || m == ModeAll }

// RunsNode reports whether the mode serves the node service.
func (m Mode) RunsNode() bool { return m == ModeNode || m == ModeAll }

// Options are the driver's settings.
type Options struct {
	Mode       Mode
	DriverName string
	Version    string
	NodeID     string
	// HostNQN is this node's NVMe host NQN (/etc/nvme/hostnqn); NodeGetInfo reports it with the node name
	// (pkg/nodeid) so that the controller can restrict a volume's export to it. "" reports the bare name.
	HostNQN         string
	DefaultLocation volume.Location // base path when a StorageClass names none
	NVMeAddress     string          // data-plane address put into volume contexts
	NVMePort        int
	ProbeTimeout    time.Duration
	// DefaultBoxName names the default box (Deps.Volumes) in a StorageClass's rdsBox; DefaultBoxName when
	// empty. Its volumes' ids carry no box prefix.
	DefaultBoxName string
}

// Volumes is the controller's view of the RDS (implemented by *volume.Manager).
type Volumes interface {
	Create(ctx context.Context, r volume.CreateRequest) (*volume.Volume, error)
	Delete(ctx context.Context, id string, defaultLoc volume.Location) error
	Expand(ctx context.Context, id string, requiredBytes, limitBytes int64) (*volume.Volume, error)
	Get(ctx context.Context, id string) (*volume.Volume, error)
	// SetAllowedHosts restricts the volume's export to host NQNs, read back (volume.ErrHostAccessUnsupported
	// when the RDS does not take it).
	SetAllowedHosts(ctx context.Context, id string, hosts []string) (*volume.Volume, error)
	Health(ctx context.Context, id string) (*volume.Volume, string, error)
	// Page is one page of a walk that reads the RDS once (a token it did not give out: volume.ErrBadToken).
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

// Node is this node's side of a volume (implemented by *node.Service over the NVMe initiator and the
// mounter). The driver serialises the calls for one volume with its per-volume guard.
type Node interface {
	Stage(ctx context.Context, r node.StageRequest) error
	Unstage(ctx context.Context, id, staging string) error
	Publish(ctx context.Context, r node.PublishRequest) error
	Unpublish(ctx context.Context, id, target string) error
	Stats(id, path string) (node.Usage, error)
	Health(ctx context.Context, id, staging, published string) ([]node.Problem, error)
	Expand(ctx context.Context, r node.ExpandRequest) (int64, error)
}

// Deps are the driver's outside dependencies; the controller ones may be nil in node mode and the node one
// in controller mode.
type Deps struct {
	Volumes Volumes
	Prober  Prober
	// Boxes are more RDS boxes besides the default one (Volumes, Prober, Options.DefaultLocation and
	// NVMeAddress); their volumes' and snapshots' ids are "<box>/<name>" (boxid.go).
	Boxes []Box
	// Attachments enforces who may hold a volume; required in controller mode.
	Attachments Attachments
	// Nodes checks node ids against Kubernetes; nil without Kubernetes.
	Nodes Nodes

	// Node stages and publishes volumes; required in node mode.
	Node Node

	// Interceptors run around every RPC after request logging (the metrics' interceptor, for instance).
	Interceptors []grpc.UnaryServerInterceptor
}

// Driver implements the CSI services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	opts   Options
	boxes  *boxes // nil in node mode
	attach Attachments
	nodes  Nodes
	node   Node
	guard  *guard
	// open holds the volumes this process published while their export was not restricted, so that their
	// unpublish needs no read of the RDS (hostaccess.go).
	open   sync.Map // volume id -> struct{}
	icpts  []grpc.UnaryServerInterceptor
	server *grpc.Server
}

// New checks the options and returns a driver ready to Serve.
func New(opts Options, deps Deps) (*Driver, error) {
	if opts.DriverName == "" {
		return nil, fmt.Errorf("driver name is empty")
	}
	if opts.Mode.RunsController() && (deps.Volumes == nil || deps.Attachments == nil) {
		return nil, fmt.Errorf("controller mode needs a connection to the RDS and an attachment manager")
	}
	if opts.Mode.RunsNode() && opts.NodeID == "" {
		return nil, fmt.Errorf("node mode needs --node-id")
	}
	if opts.Mode.RunsNode() && deps.Node == nil {
		return nil, fmt.Errorf("node mode needs the node service (an NVMe initiator and a mounter)")
	}
	if strings.Contains(opts.NodeID, ",") {
		return nil, fmt.Errorf("node id %q holds a ',': a node id is the Kubernetes node name", opts.NodeID)
	}
	if opts.Mode.RunsNode() {
		if id, dropped := nodeid.Format(opts.NodeID, opts.HostNQN); dropped != "" {
			klog.InfoS("node id without a host NQN: volumes with hostAccessControl cannot be published to this node",
				"nodeID", id, "reason", dropped)
		} else {
			klog.InfoS("node id carries the host NQN", "nodeID", id)
		}
	}
	if opts.NVMePort == 0 {
		opts.NVMePort = nvme.DefaultPort
	}
	if opts.ProbeTimeout == 0 {
		opts.ProbeTimeout = 3 * time.Second
	}
	d := &Driver{opts: opts, attach: deps.Attachments, nodes: deps.Nodes, node: deps.Node, guard: newGuard(),
		icpts: deps.Interceptors}
	if deps.Volumes != nil {
		bs, err := newBoxes(Box{Name: opts.DefaultBoxName, Volumes: deps.Volumes, Prober: deps.Prober,
			DefaultLocation: opts.DefaultLocation, NVMeAddress: opts.NVMeAddress}, deps.Boxes)
		if err != nil {
			return nil, err
		}
		d.boxes = bs
	} else if len(deps.Boxes) > 0 {
		return nil, fmt.Errorf("boxes are given but no default box (a connection to the default RDS)")
	}
	return d, nil
}

// AttachmentMetrics is what the attachment gauges need from the metrics (implemented by
// *observability.Metrics).
type AttachmentMetrics interface {
	SetAttachmentManager(countFunc func() int)
	SetAttachmentStats(statsFunc func() observability.AttachmentStats)
}

// NewAttachments returns the controller's attachment manager with its gauges registered on metrics:
// rds_csi_nvme_connections_active counts the attachments (existing dashboards and alerts read it under
// that name), and rds_csi_attachments and the migration gauges read its Stats once per scrape.
func NewAttachments(opts attachment.Options, metrics AttachmentMetrics) *attachment.Manager {
	attachments := attachment.NewManager(opts)
	metrics.SetAttachmentManager(func() int { return len(attachments.ListAttachments()) })
	metrics.SetAttachmentStats(func() observability.AttachmentStats {
		s := attachments.Stats()
		return observability.AttachmentStats{NodeAttachments: s.NodeAttachments, Migrations: s.Migrations,
			MigrationsOverWindow: s.MigrationsOverWindow}
	})
	return attachments
}

// Serve listens on endpoint (unix:///path or a path) and serves until Stop.
func (d *Driver) Serve(endpoint string) error {
	l, err := listen(endpoint)
	if err != nil {
		return err
	}
	d.server = grpc.NewServer(grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{logRPC}, d.icpts...)...))
	csi.RegisterIdentityServer(d.server, d)
	if d.opts.Mode.RunsController() {
		csi.RegisterControllerServer(d.server, d)
	}
	if d.opts.Mode.RunsNode() {
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
