package volume

import (
	"errors"
	"fmt"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// Errors of the volume domain. RouterOS errors from pkg/rds (rds.ErrNoSpace, rds.ErrUnavailable, ...) pass
// through wrapped; the CSI layer maps both kinds to gRPC codes in one place.
var (
	// ErrNotFound: no such volume (or snapshot) on the RDS.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name is taken by something incompatible with the request.
	ErrAlreadyExists = errors.New("already exists with different properties")
	// ErrOutOfRange: the size asked for cannot be given within the limits.
	ErrOutOfRange = errors.New("size out of range")
	// ErrNotOwned: a disk or file with this name exists but was not made by this driver; it is never changed.
	ErrNotOwned = errors.New("not created by this driver")
	// ErrUnsupported: the operation cannot work on this volume or pool (e.g. a snapshot of a flat file).
	ErrUnsupported = errors.New("not supported here")
	// ErrNoPool: the first element of a base path is no pool on the RDS. It is a bad basePath parameter
	// (InvalidArgument), not a missing volume: the StorageClass must be fixed.
	ErrNoPool = fmt.Errorf("the first element of basePath must be the mount point of a pool on the RDS: %w", rds.ErrInvalid)
	// ErrHostAccessUnsupported: the RDS refused nvme-tcp-server-allow-host-name, or does not show what was
	// set: host access control cannot work on this box (rds-csi doctor, check host-access).
	ErrHostAccessUnsupported = errors.New("the RDS does not take nvme-tcp-server-allow-host-name as set " +
		"(run `rds-csi doctor`; remove hostAccessControl from the StorageClass until it passes)")
	// ErrIncomplete: the RDS did not end in the state the operation asked for; a retry converges.
	ErrIncomplete = errors.New("operation did not complete on the RDS")
)
