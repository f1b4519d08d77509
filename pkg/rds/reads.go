package rds

import (
	"context"
	"fmt"

	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// Disk reads the disk slot; ErrNotFound if there is none.
func (c *Client) Disk(ctx context.Context, slot string) (*Disk, error) {
	if err := ValidName(slot); err != nil {
		return nil, fmt.Errorf("disk slot: %w", err)
	}
	disks, err := c.Disks(ctx, Eq("slot", slot))
	if err != nil {
		return nil, err
	}
	return onlyDisk(disks, "disk with slot "+slot)
}

// Disks reads the disks matching all filters (every disk without one).
func (c *Client) Disks(ctx context.Context, where ...Filter) ([]Disk, error) {
	items, err := c.read(ctx, PrintDisks, where)
	if err != nil {
		return nil, err
	}
	return DisksFrom(items)
}

// Pool reads the disk mounted at mountPoint (a pool such as "raid10"), with its fs, size and free space;
// ErrNotFound if nothing is mounted there.
func (c *Client) Pool(ctx context.Context, mountPoint string) (*Disk, error) {
	if err := ValidName(mountPoint); err != nil {
		return nil, fmt.Errorf("pool mount point: %w", err)
	}
	disks, err := c.Disks(ctx, Eq("mount-point", mountPoint))
	if err != nil {
		return nil, err
	}
	return onlyDisk(disks, "pool mounted at "+mountPoint)
}

// Files reads the files matching all filters.
func (c *Client) Files(ctx context.Context, where ...Filter) ([]File, error) {
	items, err := c.read(ctx, PrintFiles, where)
	if err != nil {
		return nil, err
	}
	return FilesFrom(items)
}

// Subvolumes reads the btrfs subvolumes matching all filters.
func (c *Client) Subvolumes(ctx context.Context, where ...Filter) ([]Subvolume, error) {
	items, err := c.read(ctx, PrintSubvolumes, where)
	if err != nil {
		return nil, err
	}
	return SubvolumesFrom(items)
}

// Traffic reads the traffic counters of the disk slot once (`/disk monitor-traffic <slot> once`): counts
// such as read-ops and write-bytes, and rates such as read-rate in bits per second. Values that are not
// numbers are left out. ErrNotFound if there is no such disk.
func (c *Client) Traffic(ctx context.Context, slot string) (map[string]int64, error) {
	cmd, err := MonitorTraffic(slot)
	if err != nil {
		return nil, err
	}
	out, err := c.Run(ctx, nil, cmd)
	if err != nil {
		return nil, err
	}
	counters := map[string]int64{}
	for k, v := range out[0][0].Props {
		if n, err := routeros.ParseBytes(v); err == nil {
			counters[k] = n
		} else if n, err := routeros.ParseRate(v); err == nil {
			counters[k] = n
		}
	}
	return counters, nil
}

func (c *Client) read(ctx context.Context, build func(...Filter) (Cmd, error), where []Filter) ([]routeros.Item, error) {
	cmd, err := build(where...)
	if err != nil {
		return nil, err
	}
	out, err := c.Run(ctx, nil, cmd)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func onlyDisk(disks []Disk, what string) (*Disk, error) {
	switch len(disks) {
	case 0:
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	case 1:
		return &disks[0], nil
	}
	return nil, fmt.Errorf("%s: the RDS lists %d disks, expected one: %w", what, len(disks), ErrProtocol)
}
