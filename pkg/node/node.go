// Package node is the node's side of a volume, the counterpart of pkg/volume: it stages (connects the
// NVMe/TCP subsystem and mounts the filesystem), publishes (binds it into a pod), reports usage and
// health, and grows a volume, over two outside dependencies only: the NVMe initiator (pkg/nvme) and the
// host's mounts (pkg/mount). It knows nothing of gRPC: pkg/driver validates CSI requests, calls one
// function here and maps the error to a code (docs/architecture.md).
package node

import (
	"errors"
	"time"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// Errors of the node domain; pkg/driver maps each to its gRPC code.
var (
	// ErrNotStaged: publish or expand of a volume that this node has not staged (no device, no staging mount).
	ErrNotStaged = errors.New("volume is not staged on this node")
	// ErrInUse: the volume is still mounted somewhere the request does not account for (unstage while
	// published, a second publish of a single-writer volume).
	ErrInUse = errors.New("volume is in use")
	// ErrNotOnNode: the volume is not at the path given (stats, expand) or not on this node at all (health).
	ErrNotOnNode = errors.New("volume not found on this node")
)

// Metrics records the node's NVMe connects and disconnects (implemented by *observability.Metrics).
type Metrics interface {
	RecordNVMeConnect(err error, duration time.Duration)
	RecordNVMeDisconnect()
}

// Options are the node's settings.
type Options struct {
	// NodeID is this node's name, logged with every change.
	NodeID string
	// Metrics may be nil.
	Metrics Metrics
}

// Service stages, publishes, checks and grows volumes on this node. Callers serialise the operations of
// one volume (pkg/driver's per-volume guard); operations on different volumes may run at once.
type Service struct {
	nodeID    string
	initiator nvme.Initiator
	mounter   mount.Mounter
	metrics   Metrics
}

// New returns the node service over an initiator and a mounter, neither of which may be nil.
func New(initiator nvme.Initiator, mounter mount.Mounter, opts Options) (*Service, error) {
	if initiator == nil || mounter == nil {
		return nil, errors.New("the node needs an NVMe initiator and a mounter")
	}
	return &Service{nodeID: opts.NodeID, initiator: initiator, mounter: mounter, metrics: opts.Metrics}, nil
}
