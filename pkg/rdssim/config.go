package rdssim

import (
	"fmt"
	"io"
	"time"
)

const (
	defaultUser     = "admin"
	defaultPoolName = "pool"
	defaultPoolSize = int64(100) << 30
	defaultWidth    = 80
	// minWidth keeps wrapping sane: every line still has room for text after
	// the index and flag columns.
	minWidth = 40
	// sectorSize is the unit a file disk's size is rounded up to.
	sectorSize = 512
)

// Config describes a simulated RDS.
type Config struct {
	Listen             string // "127.0.0.1:0" picks a free port
	DataDir            string // keys, state.json and the pool's files
	User               string // the only user that may log in; default "admin"
	AuthorizedKeysFile string // optional; default: DataDir/client_key.pub, generated on first start
	PoolName           string // slot and mount-point of the pool disk; default "pool"
	PoolFS             string // "btrfs" (default) or "xfs"
	PoolSize           int64  // bytes; default 100 GiB
	Width              int    // column at which print detail wraps; default 80
	Latency            time.Duration
	Faults             []Fault
	Log                io.Writer // one line per command run; nil discards
	Exporter           Exporter  // optional real NVMe/TCP export of file disks
	System             System    // what /system resource and /system package print (system.go)
}

// Exporter makes a file disk reachable over NVMe/TCP (for example through
// the kernel's nvmet target). The simulator calls Export when a disk with
// nvme-tcp-export=yes is added, when such a disk changes (size, port, NQN:
// Export must be idempotent and apply the new settings), and at Start for
// every exported disk; it calls Unexport when a disk is removed, stops being
// exported or changes its NQN, and at Close.
type Exporter interface {
	Export(nqn string, port int, hostPath string) error
	Unexport(nqn string) error
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orDefaultSize(v int64) int64 {
	if v <= 0 {
		return defaultPoolSize
	}
	return v
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("rdssim: DataDir is required")
	}
	if c.Listen == "" {
		return fmt.Errorf("rdssim: Listen is required, e.g. 127.0.0.1:0")
	}
	switch c.PoolFS {
	case "", "btrfs", "xfs":
	default:
		return fmt.Errorf("rdssim: pool filesystem %q: want btrfs or xfs", c.PoolFS)
	}
	if c.PoolSize < 0 {
		return fmt.Errorf("rdssim: negative pool size %d", c.PoolSize)
	}
	if c.Width != 0 && c.Width < minWidth {
		return fmt.Errorf("rdssim: width %d is below the minimum of %d columns", c.Width, minWidth)
	}
	if c.Latency < 0 {
		return fmt.Errorf("rdssim: negative latency %s", c.Latency)
	}
	if c.PoolName != "" {
		if err := checkPoolName(c.PoolName); err != nil {
			return err
		}
	}
	return nil
}

func checkPoolName(n string) error {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("rdssim: pool name %q: use letters, digits, '-', '_' and '.'", n)
		}
	}
	if n == "." || n == ".." {
		return fmt.Errorf("rdssim: pool name %q is not a directory name", n)
	}
	return nil
}
