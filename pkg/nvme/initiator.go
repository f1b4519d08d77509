// Package nvme is the node's data path to RDS volumes: it connects to a
// volume's NVMe/TCP subsystem, finds the block device of an NQN through sysfs
// on every call (never a remembered /dev name: names change after
// reconnects), and disconnects only subsystems this driver created.
//
// Two implementations of Initiator exist: CLI runs nvme-cli against a real
// target; Loop attaches the simulator's backing files as loop devices so the
// whole node lifecycle (mkfs, mount, raw block, growth) runs on one machine
// without NVMe support in its kernel.
package nvme

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Initiator is what the node service needs from the data path. Every method
// is safe to repeat: a connect of a connected NQN and a disconnect of an
// absent one succeed without doing anything.
type Initiator interface {
	// Connect connects to the subsystem unless a live controller for the
	// NQN already exists.
	Connect(ctx context.Context, p ConnectParams) error
	// Disconnect removes every controller of the NQN. It refuses NQNs
	// without NQNPrefix and is a no-op when nothing is connected.
	Disconnect(ctx context.Context, nqn string) error
	// Device returns the /dev path of the NQN's namespace as sysfs shows it
	// right now, or an error wrapping ErrNoDevice.
	Device(ctx context.Context, nqn string) (string, error)
	// WaitForDevice polls Device until the device appears or ctx ends.
	WaitForDevice(ctx context.Context, nqn string) (string, error)
	// IsConnected reports whether a live controller for the NQN exists.
	IsConnected(ctx context.Context, nqn string) (bool, error)
	// State is the controller state ("live", "connecting", "resetting",
	// "deleting", ...), or "" when no controller for the NQN exists.
	State(ctx context.Context, nqn string) (string, error)
	// Rescan asks the target for the namespace's current size. The new size
	// shows up asynchronously; callers growing a filesystem wait for the
	// device size they expect.
	Rescan(ctx context.Context, nqn string) error
}

// Errors callers distinguish with errors.Is.
var (
	// ErrNoDevice: no block device for the NQN exists (yet).
	ErrNoDevice = errors.New("no block device for NQN")
	// ErrForeignNQN: the NQN does not carry NQNPrefix; the driver never
	// touches such subsystems.
	ErrForeignNQN = fmt.Errorf("%w: NQN is not one of this driver's", ErrInvalidParams)
	// ErrNotLive: a controller for the NQN exists but is not live (the
	// kernel is reconnecting, resetting or deleting it); retry later.
	ErrNotLive = errors.New("NVMe controller is not live")
	// ErrNotConnected: no controller for the NQN exists.
	ErrNotConnected = errors.New("not connected")
)

// Controller states as the kernel prints them in /sys/class/nvme/*/state.
const (
	StateLive       = "live"
	StateConnecting = "connecting"
	StateResetting  = "resetting"
	StateNew        = "new"
	StateDeleting   = "deleting"
	StateDeletingIO = "deleting (no IO)"
	StateDead       = "dead"
)

// statePriority orders states so that the state reported for an NQN with
// several controllers (several paths) is the most useful one: any live path
// means I/O flows.
var statePriority = map[string]int{
	StateLive:       0,
	StateResetting:  1,
	StateConnecting: 2,
	StateNew:        3,
	StateDeleting:   4,
	StateDeletingIO: 5,
	StateDead:       6,
}

// betterState reports whether state a should be reported over state b.
// Unknown states rank after the known ones.
func betterState(a, b string) bool {
	pa, okA := statePriority[a]
	pb, okB := statePriority[b]
	switch {
	case okA && okB:
		return pa < pb
	case okA:
		return true
	case okB:
		return false
	}
	return a < b
}

// goingAway reports whether a controller in this state is on its way out;
// the kernel ignores such controllers when it checks for duplicate connects,
// so a new connect is right.
func goingAway(state string) bool {
	return state == StateDeleting || state == StateDeletingIO || state == StateDead
}

// devicePollInterval is how often WaitForDevice looks at sysfs. A new
// namespace appears a few milliseconds to a second after connect.
const devicePollInterval = 50 * time.Millisecond

// waitForDevice polls lookup until it finds the device, fails with something
// other than ErrNoDevice, or ctx ends. Without a deadline on ctx, fallback
// bounds the wait so a lost device cannot block a caller forever.
func waitForDevice(ctx context.Context, fallback time.Duration, nqn string,
	lookup func(context.Context, string) (string, error)) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fallback)
		defer cancel()
	}
	ticker := time.NewTicker(devicePollInterval)
	defer ticker.Stop()
	start := time.Now()
	for {
		dev, err := lookup(ctx, nqn)
		if err == nil {
			return dev, nil
		}
		if !errors.Is(err, ErrNoDevice) {
			return "", err
		}
		select {
		case <-ctx.Done():
			// ErrNoDevice, not the deadline, is what the caller acts on.
			return "", fmt.Errorf("%w: waited %s for the device of %s: %s (last lookup: %s)",
				ErrNoDevice, time.Since(start).Round(time.Millisecond), nqn, ctx.Err().Error(), err.Error())
		case <-ticker.C:
		}
	}
}
