package driver

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// toStatus maps a domain error to its gRPC status: the one place where codes are decided
// (docs/architecture.md §6). An error that already is a status (from validation)
// keeps its code. The message is the error's own text, which carries the RouterOS words but never a secret
// (the SSH key never enters an error).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// errorCodes is the error→code map of every handler, first match wins. Every sentinel error of the
// packages the handlers call has a line here (errors_test.go checks that none is forgotten); an error that
// matches none is Internal.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},

	// The driver's own.
	{errBusy, codes.Aborted},
	{errStaleToken, codes.Aborted},
	{volume.ErrBadToken, codes.Aborted},
	{errUnknownNode, codes.NotFound},
	{errNodeCheck, codes.Unavailable},
	{errNoHostNQN, codes.FailedPrecondition},
	{errUnknownBox, codes.FailedPrecondition},

	// Controller: pkg/volume over pkg/rds, and the attachment rules.
	{volume.ErrNotFound, codes.NotFound},
	{rds.ErrNotFound, codes.NotFound},
	{volume.ErrAlreadyExists, codes.AlreadyExists},
	{rds.ErrAlreadyExists, codes.AlreadyExists},
	{volume.ErrOutOfRange, codes.OutOfRange},
	{rds.ErrNoSpace, codes.ResourceExhausted},
	{volume.ErrNoPool, codes.InvalidArgument}, // wraps rds.ErrInvalid
	{rds.ErrInvalid, codes.InvalidArgument},
	{volume.ErrNotOwned, codes.FailedPrecondition},
	{volume.ErrHostAccessUnsupported, codes.FailedPrecondition},
	// A host key that changed under a running driver: retrying never mends it, an admin must look.
	{rds.ErrHostKeyMismatch, codes.FailedPrecondition},
	{volume.ErrUnsupported, codes.FailedPrecondition},
	{attachment.ErrAttachedElsewhere, codes.FailedPrecondition},
	{rds.ErrUnavailable, codes.Unavailable},
	{volume.ErrIncomplete, codes.Unavailable},
	// The driver's SSH user may not do this: a configuration error on the RDS, which retrying does not
	// mend; its own code keeps it apart from bugs in rds_csi_grpc_requests_total.
	{rds.ErrPermission, codes.PermissionDenied},
	// The RDS answered something this driver does not understand: a bug or an unsupported RouterOS.
	{rds.ErrProtocol, codes.Internal},

	// Node: pkg/node over the data path (pkg/nvme) and the host's mounts (pkg/mount).
	{node.ErrNotOnNode, codes.NotFound},
	{node.ErrNotStaged, codes.FailedPrecondition},
	{node.ErrInUse, codes.FailedPrecondition},
	{nvme.ErrInvalidParams, codes.InvalidArgument}, // ErrForeignNQN wraps it
	{mount.ErrUnsupported, codes.InvalidArgument},
	{mount.ErrTargetBusy, codes.AlreadyExists},
	{mount.ErrNotBlank, codes.FailedPrecondition},
	{mount.ErrStagedElsewhere, codes.FailedPrecondition},
	{mount.ErrBadPath, codes.InvalidArgument},
	{nvme.ErrNotConnected, codes.FailedPrecondition},
	{nvme.ErrNotLive, codes.Unavailable},
	{nvme.ErrNoDevice, codes.Unavailable},
	{mount.ErrDeviceGone, codes.Unavailable},
	// Whether a device is blank could not be told: never formatted, and a state the CO cannot mend.
	{mount.ErrUncertain, codes.Internal},
	// pkg/node never returns it (it is how MountedDevice answers a path that is not a mount point).
	{mount.ErrNotMounted, codes.Internal},
}

func codeOf(err error) codes.Code {
	for _, ec := range errorCodes {
		if errors.Is(err, ec.err) {
			return ec.code
		}
	}
	return codes.Internal
}

// Errors of the driver's own rules.
var (
	// errBusy: another operation on the same volume is in flight; the sidecars retry on Aborted.
	errBusy = errors.New("an operation on this volume is already in progress")
	// errStaleToken: a list's starting token the driver did not give out or that names nothing any more;
	// Aborted tells the CO to list again from the start.
	errStaleToken = errors.New("starting token is not valid")
	// errUnknownNode: ControllerPublish to a node that does not exist.
	errUnknownNode = errors.New("node is not known")
	// errNodeCheck: whether the node exists could not be asked (the Kubernetes API did not answer).
	errNodeCheck = errors.New("cannot check the node")
	// errNoHostNQN: a volume under host access control published to a node whose node id carries no host
	// NQN (an older node plugin, or no /etc/nvme/hostnqn): its export cannot name the node.
	errNoHostNQN = errors.New("the node did not report its NVMe host NQN")
	// errUnknownBox: an id names a box the driver's configuration does not (any more) list; only an admin can
	// mend that (configure the box again), and nothing about the volume can be said without it.
	errUnknownBox = errors.New("box is not configured")
)

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// kindError is an error of one of the kinds above with a message of its own: the message reaches the CO
// unchanged, the kind decides the code.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// errorOf returns an error of kind with the formatted message.
func errorOf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
