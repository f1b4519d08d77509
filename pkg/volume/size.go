package volume

import (
	"fmt"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

const (
	// MiB and GiB are binary units.
	MiB = int64(1) << 20
	GiB = int64(1) << 30
	// AllocationUnit is the granularity volumes are created and grown in. Sizes are rounded up to it, never
	// down, and sent to the RDS in exact bytes (a peer driver lost half a GiB by sending "1G" for 1.5 GiB).
	AllocationUnit = MiB
	// MinSize is the smallest volume the driver creates; a smaller request gets MinSize.
	MinSize = GiB
	// MaxSize bounds requests so that arithmetic and the RDS's own limits stay far away (1 PiB).
	MaxSize = int64(1) << 50
)

// RoundSize turns a CSI capacity range into the size to allocate: at least required (and at least MinSize),
// rounded up to AllocationUnit, and within limit when a limit is given.
func RoundSize(required, limit int64) (int64, error) {
	if required < 0 || limit < 0 {
		return 0, fmt.Errorf("capacity range must not be negative (required %d, limit %d): %w", required, limit, rds.ErrInvalid)
	}
	if limit > 0 && required > limit {
		return 0, fmt.Errorf("required bytes %d exceed limit bytes %d: %w", required, limit, ErrOutOfRange)
	}
	size := required
	if size < MinSize {
		size = MinSize
	}
	if size > MaxSize {
		return 0, fmt.Errorf("%d bytes is more than the largest volume (%d bytes): %w", size, MaxSize, ErrOutOfRange)
	}
	size = (size + AllocationUnit - 1) / AllocationUnit * AllocationUnit
	if limit > 0 && size > limit {
		return 0, fmt.Errorf("the smallest volume that fits %d bytes is %d bytes, above the limit of %d bytes: %w",
			required, size, limit, ErrOutOfRange)
	}
	return size, nil
}
