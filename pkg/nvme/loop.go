package nvme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/rds-csi/rds-csi/pkg/hostcmd"
)

// BackingFileResolver maps one of this driver's NQNs to the path, on this
// host, of the file the simulator keeps the volume in. It must return the
// path the file has or had, even after the file was removed, so that a
// disconnect after a delete still finds the loop device.
type BackingFileResolver func(ctx context.Context, nqn string) (hostPath string, err error)

// LoopOptions configures Loop. Zero fields take the defaults shown.
type LoopOptions struct {
	SysfsRoot     string // "/sys"
	DevRoot       string // "/dev"
	LosetupBinary string // "losetup"
	Exec          utilexec.Interface
	// Timeout bounds each losetup run, and WaitForDevice when the caller's
	// context has no deadline. Default 30 s.
	Timeout time.Duration
}

// Loop is the Initiator of the simulator mode: "connecting" an NQN attaches
// the simulator's backing file to a loop device, so real mkfs, mount, raw
// block and filesystem growth run on a machine without NVMe/TCP. The loop
// device is found again through /sys/block/loopN/loop/backing_file, never
// remembered. It must only be given a resolver for simulator files.
type Loop struct {
	resolve BackingFileResolver
	opts    LoopOptions
	runner  hostcmd.Runner
	// mu makes find-then-attach atomic within this process, so two calls
	// for one volume cannot attach its file twice.
	mu sync.Mutex
}

var _ Initiator = (*Loop)(nil)

// NewLoop returns the loop-device Initiator. resolve must not be nil.
func NewLoop(resolve BackingFileResolver, opts LoopOptions) *Loop {
	if resolve == nil {
		panic("nvme.NewLoop: nil BackingFileResolver")
	}
	if opts.SysfsRoot == "" {
		opts.SysfsRoot = "/sys"
	}
	if opts.DevRoot == "" {
		opts.DevRoot = "/dev"
	}
	if opts.LosetupBinary == "" {
		opts.LosetupBinary = "losetup"
	}
	if opts.Exec == nil {
		opts.Exec = utilexec.New()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Loop{resolve: resolve, opts: opts, runner: hostcmd.Runner{Exec: opts.Exec, Timeout: opts.Timeout}}
}

var loopName = regexp.MustCompile(`^loop[0-9]+$`)

// deletedSuffix is what the kernel appends to backing_file once the file
// was unlinked while attached.
const deletedSuffix = " (deleted)"

// backingFile resolves the NQN and canonicalises the path the way the kernel
// prints it in backing_file (symlinks resolved).
func (l *Loop) backingFile(ctx context.Context, nqn string) (string, error) {
	p, err := l.resolve(ctx, nqn)
	if err != nil {
		return "", fmt.Errorf("resolving the backing file of %s: %w", nqn, err)
	}
	if p == "" || !filepath.IsAbs(p) {
		return "", fmt.Errorf("backing file of %s is %q, not an absolute path", nqn, p)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real, nil
	}
	// The file is gone: its directory still tells the canonical path.
	if dir, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil {
		return filepath.Join(dir, filepath.Base(p)), nil
	}
	return filepath.Clean(p), nil
}

// loopsOf lists the loop devices (loopN, sorted by number) whose backing
// file is file, including attachments whose file was deleted since.
func (l *Loop) loopsOf(file string) ([]string, error) {
	dir := filepath.Join(l.opts.SysfsRoot, "block")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if !loopName.MatchString(e.Name()) {
			continue
		}
		// backing_file exists only while the loop device is attached.
		got, err := readAttr(filepath.Join(dir, e.Name(), "loop", "backing_file"))
		if err != nil {
			continue
		}
		if got == file || got == file+deletedSuffix {
			out = append(out, e.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) < len(out[j])
		}
		return out[i] < out[j]
	})
	return out, nil
}

// Connect attaches the NQN's backing file to a free loop device unless it is
// attached already.
func (l *Loop) Connect(ctx context.Context, p ConnectParams) error {
	if err := ValidateNQN(p.NQN); err != nil {
		return err
	}
	file, err := l.backingFile(ctx, p.NQN)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	loops, err := l.loopsOf(file)
	if err != nil {
		return err
	}
	if len(loops) > 0 {
		klog.V(4).InfoS("Backing file already attached", "nqn", p.NQN, "file", file, "device", loops[0])
		return nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("backing file of %s: %w", p.NQN, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("backing file %s of %s is not a regular file", file, p.NQN)
	}
	// Direct I/O off: the simulator's files may live on tmpfs, which has
	// no O_DIRECT, and buffered I/O is what a sparse file wants anyway.
	out, err := l.runner.Run(ctx, l.opts.LosetupBinary, "--find", "--show", "--direct-io=off", file)
	if err != nil {
		return err
	}
	klog.InfoS("Attached backing file to loop device", "nqn", p.NQN, "file", file, "device", strings.TrimSpace(out))
	return nil
}

// Disconnect detaches every loop device of the NQN's backing file.
func (l *Loop) Disconnect(ctx context.Context, nqn string) error {
	if err := ValidateNQN(nqn); err != nil {
		return err
	}
	file, err := l.backingFile(ctx, nqn)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	loops, err := l.loopsOf(file)
	if err != nil {
		return err
	}
	for _, name := range loops {
		if _, err := l.runner.Run(ctx, l.opts.LosetupBinary, "-d", filepath.Join(l.opts.DevRoot, name)); err != nil {
			return err
		}
	}
	// The kernel defers the detach of a loop device that is still open
	// (it sets autoclear and reports success), so check what is left. A
	// short-lived opener (a probe, a closing mount) lets go within moments:
	// wait a little, with a deadline, before calling the device in use.
	left, err := l.waitDetached(ctx, file)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("%s is still attached to %s: the device is in use, its detach happens at last close",
			file, strings.Join(left, ", "))
	}
	if len(loops) > 0 {
		klog.InfoS("Detached loop devices", "nqn", nqn, "file", file, "devices", loops)
	}
	return nil
}

// detachGrace bounds how long Disconnect waits for a deferred detach.
const detachGrace = 2 * time.Second

// waitDetached polls until no loop device holds file, ctx ends or detachGrace passes, and returns what is
// still attached.
func (l *Loop) waitDetached(ctx context.Context, file string) ([]string, error) {
	deadline := time.Now().Add(detachGrace)
	for {
		left, err := l.loopsOf(file)
		if err != nil || len(left) == 0 || time.Now().After(deadline) {
			return left, err
		}
		select {
		case <-ctx.Done():
			return left, nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Device returns the loop device the NQN's backing file is attached to.
func (l *Loop) Device(ctx context.Context, nqn string) (string, error) {
	file, err := l.backingFile(ctx, nqn)
	if err != nil {
		return "", err
	}
	loops, err := l.loopsOf(file)
	if err != nil {
		return "", err
	}
	if len(loops) == 0 {
		return "", fmt.Errorf("%w %s: %s is not attached to a loop device", ErrNoDevice, nqn, file)
	}
	dev := filepath.Join(l.opts.DevRoot, loops[0])
	if _, err := os.Stat(dev); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w %s: sysfs lists %s but %s is not there", ErrNoDevice, nqn, loops[0], dev)
	} else if err != nil {
		return "", err
	}
	return dev, nil
}

// WaitForDevice polls sysfs until the loop device appears.
func (l *Loop) WaitForDevice(ctx context.Context, nqn string) (string, error) {
	return waitForDevice(ctx, l.opts.Timeout, nqn, l.Device)
}

// IsConnected reports whether the backing file is attached.
func (l *Loop) IsConnected(ctx context.Context, nqn string) (bool, error) {
	st, err := l.State(ctx, nqn)
	return st == StateLive, err
}

// State is "live" while the backing file is attached and "" otherwise: a loop
// device has no reconnecting states.
func (l *Loop) State(ctx context.Context, nqn string) (string, error) {
	_, err := l.Device(ctx, nqn)
	if errors.Is(err, ErrNoDevice) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return StateLive, nil
}

// Rescan makes the loop device take the backing file's current size
// (`losetup -c`), the loop equivalent of a namespace rescan after growth.
func (l *Loop) Rescan(ctx context.Context, nqn string) error {
	dev, err := l.Device(ctx, nqn)
	if errors.Is(err, ErrNoDevice) {
		return fmt.Errorf("rescan %s: %w", nqn, ErrNotConnected)
	}
	if err != nil {
		return err
	}
	_, err = l.runner.Run(ctx, l.opts.LosetupBinary, "-c", dev)
	return err
}
