package driver

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// toStatus maps a domain error to its gRPC status: the one place where codes are decided (design §3). An
// error that already is a status (from validation) keeps its code. The message is the error's own text,
// which carries the RouterOS words but never a secret (the SSH key never enters an error).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, volume.ErrNotFound), errors.Is(err, rds.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, volume.ErrAlreadyExists), errors.Is(err, rds.ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, volume.ErrOutOfRange):
		return codes.OutOfRange
	case errors.Is(err, rds.ErrNoSpace):
		return codes.ResourceExhausted
	case errors.Is(err, rds.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, volume.ErrNotOwned), errors.Is(err, volume.ErrUnsupported), errors.Is(err, rds.ErrHostKeyMismatch),
		errors.Is(err, attachment.ErrAttachedElsewhere):
		return codes.FailedPrecondition
	case errors.Is(err, rds.ErrUnavailable), errors.Is(err, volume.ErrIncomplete):
		return codes.Unavailable
	case errors.Is(err, errBusy):
		return codes.Aborted
	// Node service: the data path and the host's mounts.
	case errors.Is(err, errNotOnNode):
		return codes.NotFound
	case errors.Is(err, nvme.ErrInvalidParams), errors.Is(err, mount.ErrUnsupported):
		return codes.InvalidArgument
	case errors.Is(err, mount.ErrTargetBusy):
		return codes.AlreadyExists
	case errors.Is(err, errNotStaged), errors.Is(err, errInUse), errors.Is(err, mount.ErrNotBlank),
		errors.Is(err, mount.ErrStagedElsewhere),
		errors.Is(err, nvme.ErrNotConnected):
		return codes.FailedPrecondition
	case errors.Is(err, nvme.ErrNotLive), errors.Is(err, nvme.ErrNoDevice), errors.Is(err, mount.ErrDeviceGone):
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

var (
	// errBusy: another operation on the same volume is in flight; the sidecars retry on Aborted.
	errBusy = errors.New("an operation on this volume is already in progress")
)

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
