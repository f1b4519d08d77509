package nvme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/rds-csi/rds-csi/pkg/hostcmd"
)

// CLIOptions configures CLI. Zero fields take the defaults shown.
type CLIOptions struct {
	SysfsRoot   string // "/sys"
	DevRoot     string // "/dev"
	NvmeBinary  string // "nvme"
	HostNQNFile string // "/etc/nvme/hostnqn"
	// Exec runs nvme-cli; tests substitute a recorder.
	Exec utilexec.Interface
	// Timeout bounds each nvme-cli run, and WaitForDevice when the caller's
	// context has no deadline. Default 30 s: a connect to an unreachable
	// address otherwise waits for TCP's SYN retries (about two minutes).
	Timeout time.Duration
}

// CLI is the Initiator for real NVMe/TCP: it runs nvme-cli for connect,
// disconnect and rescan, and reads everything else from sysfs.
type CLI struct {
	opts   CLIOptions
	sysfs  sysfsView
	runner hostcmd.Runner
}

var _ Initiator = (*CLI)(nil)

// NewCLI returns the nvme-cli Initiator.
func NewCLI(opts CLIOptions) *CLI {
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/sys"
	}
	if opts.DevRoot == "" {
		opts.DevRoot = "/dev"
	}
	if opts.NvmeBinary == "" {
		opts.NvmeBinary = "nvme"
	}
	if opts.HostNQNFile == "" {
		opts.HostNQNFile = "/etc/nvme/hostnqn"
	}
	if opts.Exec == nil {
		opts.Exec = utilexec.New()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	return &CLI{
		opts:   opts,
		sysfs:  sysfsView{sysfsRoot: opts.SysfsRoot, devRoot: opts.DevRoot},
		runner: hostcmd.Runner{Exec: opts.Exec, Timeout: opts.Timeout},
	}
}

// Connect runs `nvme connect` unless a live controller for the NQN exists.
//
// nvme connect is not idempotent by itself (the kernel refuses or
// duplicates a second connect), so the sysfs check comes first. A controller
// that exists but is reconnecting or resetting belongs to the kernel's retry
// loop (ctrl_loss_tmo): a second connect would fight it, so Connect returns
// ErrNotLive and the caller retries later.
func (c *CLI) Connect(ctx context.Context, p ConnectParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	ctrls, err := c.sysfs.controllers(p.NQN)
	if err != nil {
		return err
	}
	for _, ctrl := range ctrls {
		if ctrl.state == StateLive {
			klog.V(4).InfoS("NVMe subsystem already connected", "nqn", p.NQN, "controller", ctrl.name)
			return nil
		}
	}
	for _, ctrl := range ctrls {
		if !goingAway(ctrl.state) {
			return fmt.Errorf("%w: controller %s of %s is %q; the kernel is already reconnecting it",
				ErrNotLive, ctrl.name, p.NQN, ctrl.state)
		}
	}
	hostNQN, err := c.hostNQN(p)
	if err != nil {
		return err
	}
	args := []string{"connect",
		"-t", p.Transport,
		"-a", p.Address,
		"-s", strconv.Itoa(p.Port),
		"-n", p.NQN,
		"-q", hostNQN,
		// The --name=value form keeps -1 from being read as an option.
		"--ctrl-loss-tmo=" + strconv.Itoa(p.CtrlLossTmo),
		"--reconnect-delay=" + strconv.Itoa(p.ReconnectDelay),
		"--keep-alive-tmo=" + strconv.Itoa(p.KeepAliveTmo),
	}
	start := time.Now()
	if _, err := c.runner.Run(ctx, c.opts.NvmeBinary, args...); err != nil {
		// A concurrent connect of the same NQN makes ours fail with
		// "already connected"; what matters is that a live controller
		// exists now.
		if st, serr := c.sysfs.state(p.NQN); serr == nil && st == StateLive {
			klog.InfoS("NVMe connect failed but the subsystem is live", "nqn", p.NQN, "err", err)
			return nil
		}
		return err
	}
	klog.InfoS("Connected NVMe/TCP subsystem", "nqn", p.NQN, "address", p.Address, "port", p.Port,
		"ctrlLossTmo", p.CtrlLossTmo, "reconnectDelay", p.ReconnectDelay, "keepAliveTmo", p.KeepAliveTmo,
		"duration", time.Since(start))
	return nil
}

// hostNQN returns p.HostNQN or the node's host NQN file. Refusing to go on
// without one (nvme-cli would invent one) keeps the node's identity stable,
// which host-based access control on the RDS may depend on.
func (c *CLI) hostNQN(p ConnectParams) (string, error) {
	if p.HostNQN != "" {
		return p.HostNQN, nil
	}
	v, err := readAttr(c.opts.HostNQNFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("host NQN file %s is missing: create it with `nvme gen-hostnqn > %s` on the node "+
			"and mount the host's %s into the node plugin", c.opts.HostNQNFile, c.opts.HostNQNFile, filepath.Dir(c.opts.HostNQNFile))
	}
	if err != nil {
		return "", fmt.Errorf("reading host NQN: %w", err)
	}
	if v == "" || !nqnChars.MatchString(v) {
		return "", fmt.Errorf("host NQN file %s holds %q, which is not a valid NQN", c.opts.HostNQNFile, v)
	}
	return v, nil
}

// Disconnect runs `nvme disconnect -n NQN` for one of this driver's NQNs
// when a controller for it exists, and checks that none is left.
func (c *CLI) Disconnect(ctx context.Context, nqn string) error {
	if err := ValidateNQN(nqn); err != nil {
		return err
	}
	ctrls, err := c.sysfs.controllers(nqn)
	if err != nil {
		return err
	}
	if len(ctrls) == 0 {
		klog.V(4).InfoS("NVMe subsystem not connected, nothing to disconnect", "nqn", nqn)
		return nil
	}
	if _, err := c.runner.Run(ctx, c.opts.NvmeBinary, "disconnect", "-n", nqn); err != nil {
		return err
	}
	left, err := c.sysfs.controllers(nqn)
	if err != nil {
		return err
	}
	var names []string
	for _, ctrl := range left {
		if !goingAway(ctrl.state) {
			names = append(names, ctrl.name+"("+ctrl.state+")")
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("nvme disconnect -n %s succeeded but controllers remain: %s", nqn, strings.Join(names, ", "))
	}
	klog.InfoS("Disconnected NVMe/TCP subsystem", "nqn", nqn, "controllers", len(ctrls))
	return nil
}

// Device returns the NQN's block device as sysfs shows it now.
func (c *CLI) Device(_ context.Context, nqn string) (string, error) {
	return c.sysfs.device(nqn)
}

// WaitForDevice polls sysfs until the NQN's block device appears.
func (c *CLI) WaitForDevice(ctx context.Context, nqn string) (string, error) {
	return waitForDevice(ctx, c.opts.Timeout, nqn, c.Device)
}

// IsConnected reports whether a live controller for the NQN exists.
func (c *CLI) IsConnected(_ context.Context, nqn string) (bool, error) {
	st, err := c.sysfs.state(nqn)
	return st == StateLive, err
}

// State returns the best state among the NQN's controllers.
func (c *CLI) State(_ context.Context, nqn string) (string, error) {
	return c.sysfs.state(nqn)
}

// Rescan runs `nvme ns-rescan` on every live controller of the NQN, so the
// kernel rereads the namespace size after the RDS grew the disk (whether the
// RDS sends a namespace-change notice is unverified).
func (c *CLI) Rescan(ctx context.Context, nqn string) error {
	ctrls, err := c.sysfs.controllers(nqn)
	if err != nil {
		return err
	}
	rescanned := 0
	for _, ctrl := range ctrls {
		if ctrl.state != StateLive {
			continue
		}
		if _, err := c.runner.Run(ctx, c.opts.NvmeBinary, "ns-rescan", filepath.Join(c.opts.DevRoot, ctrl.name)); err != nil {
			return err
		}
		rescanned++
	}
	if rescanned == 0 {
		if len(ctrls) == 0 {
			return fmt.Errorf("rescan %s: %w", nqn, ErrNotConnected)
		}
		return fmt.Errorf("rescan %s: %w (controller %s is %q)", nqn, ErrNotLive, ctrls[0].name, ctrls[0].state)
	}
	klog.V(2).InfoS("Rescanned NVMe namespaces", "nqn", nqn, "controllers", rescanned)
	return nil
}
