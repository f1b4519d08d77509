package node

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// The node service is tested against small fakes of its only two dependencies, the data path and the mount
// table, that behave like the real ones in the ways the service depends on (idempotent connect, a format
// only of a blank device, a target that already holds something else is busy), and record every call. The
// real ones run in pkg/driver's node_loop_test.go and in csi-sanity.

// fakeInitiator keeps, per NQN, the controller state and the device.
type fakeInitiator struct {
	mu      sync.Mutex
	state   map[string]string // "" or absent: not connected
	devices map[string]string // the NQN's block device while it has one
	// nextDevice is the device a Connect gives; "" means /dev/fake-<volume id>.
	nextDevice string
	// noDevice: Connect succeeds but no device appears.
	noDevice   bool
	connectErr error
	rescanErr  error
	onRescan   func(nqn string)
	// fail makes a method (by name) return this error.
	fail  map[string]error
	calls []string
}

func newFakeInitiator() *fakeInitiator {
	return &fakeInitiator{state: map[string]string{}, devices: map[string]string{}, fail: map[string]error{}}
}

func (f *fakeInitiator) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// connected sets up a volume as if an earlier process had connected it.
func (f *fakeInitiator) connected(nqn, dev string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state[nqn], f.devices[nqn] = nvme.StateLive, dev
}

func (f *fakeInitiator) Connect(_ context.Context, p nvme.ConnectParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Connect"]; err != nil {
		return err
	}
	f.record("Connect %s", p.NQN)
	if err := p.Validate(); err != nil {
		return err
	}
	if f.connectErr != nil {
		return f.connectErr
	}
	if f.state[p.NQN] == nvme.StateLive {
		return nil
	}
	f.state[p.NQN] = nvme.StateLive
	if f.noDevice {
		return nil
	}
	dev := f.nextDevice
	if dev == "" {
		dev = "/dev/fake-" + strings.TrimPrefix(p.NQN, nvme.NQNPrefix)
	}
	f.devices[p.NQN] = dev
	return nil
}

func (f *fakeInitiator) Disconnect(_ context.Context, nqn string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Disconnect"]; err != nil {
		return err
	}
	f.record("Disconnect %s", nqn)
	if err := nvme.ValidateNQN(nqn); err != nil {
		return err
	}
	delete(f.state, nqn)
	delete(f.devices, nqn)
	return nil
}

func (f *fakeInitiator) Device(_ context.Context, nqn string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Device"]; err != nil {
		return "", err
	}
	f.record("Device %s", nqn)
	if dev, ok := f.devices[nqn]; ok {
		return dev, nil
	}
	return "", fmt.Errorf("%w %s", nvme.ErrNoDevice, nqn)
}

func (f *fakeInitiator) WaitForDevice(ctx context.Context, nqn string) (string, error) {
	return f.Device(ctx, nqn)
}

func (f *fakeInitiator) IsConnected(_ context.Context, nqn string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["IsConnected"]; err != nil {
		return false, err
	}
	f.record("IsConnected %s", nqn)
	return f.state[nqn] == nvme.StateLive, nil
}

func (f *fakeInitiator) State(_ context.Context, nqn string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["State"]; err != nil {
		return "", err
	}
	f.record("State %s", nqn)
	return f.state[nqn], nil
}

func (f *fakeInitiator) Rescan(_ context.Context, nqn string) error {
	f.mu.Lock()
	if err := f.fail["Rescan"]; err != nil {
		f.mu.Unlock()
		return err
	}
	f.record("Rescan %s", nqn)
	st, hook, err := f.state[nqn], f.onRescan, f.rescanErr
	f.mu.Unlock()
	if st == "" {
		return fmt.Errorf("rescan %s: %w", nqn, nvme.ErrNotConnected)
	}
	if err != nil {
		return err
	}
	if hook != nil {
		hook(nqn)
	}
	return nil
}

// count returns how often a call starting with prefix was made.
func (f *fakeInitiator) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return countPrefix(f.calls, prefix)
}

func countPrefix(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// fakeMount is one entry of the fake mount table.
type fakeMount struct {
	device   string
	fsType   string // "" for a bind of a device node
	readOnly bool
}

// fakeMounter is a mount table plus what is on each device.
type fakeMounter struct {
	mu     sync.Mutex
	mounts map[string]fakeMount // by target path
	fs     map[string]string    // device → filesystem on it ("" blank)
	sizes  map[string]int64     // device → its size
	// fsSizes: device → the size of the filesystem on it. A format makes it the device's size, a growth
	// too; a device larger than its filesystem is a restore into a larger volume.
	fsSizes map[string]int64
	gone    map[string]bool // devices that vanished under their mounts
	stats   mount.FilesystemStats
	// fail makes a method (by name) return this error.
	fail map[string]error
	// onFormat runs (under the lock) when FormatAndMount is called.
	onFormat func()
	// Errors to return.
	resizeErr, needsResizeErr error
	calls                     []string
}

func newFakeMounter() *fakeMounter {
	return &fakeMounter{mounts: map[string]fakeMount{}, fs: map[string]string{}, sizes: map[string]int64{},
		fsSizes: map[string]int64{}, gone: map[string]bool{}, fail: map[string]error{},
		stats: mount.FilesystemStats{TotalBytes: 1000, UsedBytes: 300, AvailableBytes: 600,
			TotalInodes: 64, UsedInodes: 11, FreeInodes: 53}}
}

func (m *fakeMounter) record(format string, args ...any) {
	m.calls = append(m.calls, fmt.Sprintf(format, args...))
}

func (m *fakeMounter) count(prefix string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return countPrefix(m.calls, prefix)
}

// mounted sets up a mount as if an earlier process had made it.
func (m *fakeMounter) mounted(target string, mnt fakeMount) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mounts[filepath.Clean(target)] = mnt
}

func (m *fakeMounter) FormatAndMount(_ context.Context, device, target, fsType string, _ []string, readOnly bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.onFormat != nil {
		m.onFormat()
	}
	if err := m.fail["FormatAndMount"]; err != nil {
		return false, err
	}
	m.record("FormatAndMount %s %s %s ro=%v", device, target, fsType, readOnly)
	if fsType == "" {
		fsType = mount.DefaultFSType
	}
	if cur, ok := m.mounts[filepath.Clean(target)]; ok {
		if cur.device != device || cur.fsType != fsType || cur.readOnly != readOnly {
			return false, fmt.Errorf("%w: %s holds %s", mount.ErrTargetBusy, target, cur.device)
		}
		return false, nil
	}
	formatted := false
	switch existing := m.fs[device]; {
	case existing == "" && readOnly:
		return false, fmt.Errorf("%w: %s is blank and read-only", mount.ErrUncertain, device)
	case existing == "":
		m.record("mkfs %s %s", fsType, device)
		m.fs[device], m.fsSizes[device], formatted = fsType, m.sizes[device], true
	case existing != fsType:
		return false, fmt.Errorf("%w: %s holds %s", mount.ErrNotBlank, device, existing)
	}
	m.mounts[filepath.Clean(target)] = fakeMount{device: device, fsType: fsType, readOnly: readOnly}
	return formatted, nil
}

func (m *fakeMounter) BindMount(_ context.Context, source, target string, readOnly bool, _ []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["BindMount"]; err != nil {
		return err
	}
	m.record("BindMount %s %s ro=%v", source, target, readOnly)
	src, ok := m.mounts[filepath.Clean(source)]
	if !ok {
		return fmt.Errorf("bind source %s is not mounted", source)
	}
	want := fakeMount{device: src.device, fsType: src.fsType, readOnly: readOnly}
	if cur, ok := m.mounts[filepath.Clean(target)]; ok {
		if cur != want {
			return fmt.Errorf("%w: %s holds %s ro=%v", mount.ErrTargetBusy, target, cur.device, cur.readOnly)
		}
		return nil
	}
	m.mounts[filepath.Clean(target)] = want
	return nil
}

func (m *fakeMounter) PublishBlock(_ context.Context, device, target string, readOnly bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["PublishBlock"]; err != nil {
		return err
	}
	m.record("PublishBlock %s %s ro=%v", device, target, readOnly)
	want := fakeMount{device: device, readOnly: readOnly}
	if cur, ok := m.mounts[filepath.Clean(target)]; ok {
		if cur != want {
			return fmt.Errorf("%w: %s holds %s ro=%v", mount.ErrTargetBusy, target, cur.device, cur.readOnly)
		}
		return nil
	}
	m.mounts[filepath.Clean(target)] = want
	return nil
}

func (m *fakeMounter) Unmount(_ context.Context, target string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["Unmount"]; err != nil {
		return err
	}
	m.record("Unmount %s", target)
	delete(m.mounts, filepath.Clean(target))
	return nil
}

func (m *fakeMounter) IsMountPoint(path string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["IsMountPoint"]; err != nil {
		return false, err
	}
	_, ok := m.mounts[filepath.Clean(path)]
	return ok, nil
}

func (m *fakeMounter) MountedDevice(path string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["MountedDevice"]; err != nil {
		return "", err
	}
	cur, ok := m.mounts[filepath.Clean(path)]
	switch {
	case !ok:
		return "", fmt.Errorf("%s: %w", path, mount.ErrNotMounted)
	case m.gone[cur.device]:
		return "", fmt.Errorf("%s is mounted from %s: %w", path, cur.device, mount.ErrDeviceGone)
	}
	return cur.device, nil
}

func (m *fakeMounter) ResizeFilesystem(_ context.Context, device, mountPath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["ResizeFilesystem"]; err != nil {
		return err
	}
	m.record("ResizeFilesystem %s %s", device, mountPath)
	if cur, ok := m.mounts[filepath.Clean(mountPath)]; !ok || cur.device != device {
		return fmt.Errorf("%s is not a mount of %s", mountPath, device)
	}
	if m.resizeErr != nil {
		return m.resizeErr
	}
	m.fsSizes[device] = m.sizes[device]
	return nil
}

func (m *fakeMounter) NeedsResize(_ context.Context, device, mountPath string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["NeedsResize"]; err != nil {
		return false, err
	}
	m.record("NeedsResize %s %s", device, mountPath)
	if cur, ok := m.mounts[filepath.Clean(mountPath)]; !ok || cur.device != device {
		return false, fmt.Errorf("%s is not a mount of %s", mountPath, device)
	}
	if m.needsResizeErr != nil {
		return false, m.needsResizeErr
	}
	return m.sizes[device] > m.fsSizes[device], nil
}

func (m *fakeMounter) FilesystemStats(path string) (mount.FilesystemStats, error) {
	if err := m.fail["FilesystemStats"]; err != nil {
		return mount.FilesystemStats{}, err
	}
	return m.stats, nil
}

func (m *fakeMounter) DeviceSize(device string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["DeviceSize"]; err != nil {
		return 0, err
	}
	size, ok := m.sizes[device]
	if !ok {
		return 0, fmt.Errorf("%s: no such device", device)
	}
	return size, nil
}

// DeviceMountPoints lists the fake mounts of device and of the device under stagingPath.
func (m *fakeMounter) DeviceMountPoints(device, stagingPath string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail["DeviceMountPoints"]; err != nil {
		return nil, err
	}
	want := map[string]bool{}
	if device != "" {
		want[device] = true
	}
	if st, ok := m.mounts[filepath.Clean(stagingPath)]; ok && stagingPath != "" {
		want[st.device] = true
	}
	var out []string
	for target, mnt := range m.mounts {
		if want[mnt.device] {
			out = append(out, target)
		}
	}
	sort.Strings(out)
	return out, nil
}

// fakeMetrics counts what the node records.
type fakeMetrics struct {
	mu                                    sync.Mutex
	connects, failedConnects, disconnects int
}

func (m *fakeMetrics) RecordNVMeConnect(err error, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failedConnects++
		return
	}
	m.connects++
}

func (m *fakeMetrics) RecordNVMeDisconnect() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disconnects++
}

// nodeEnv is a node service on the fakes.
type nodeEnv struct {
	n       *Service
	init    *fakeInitiator
	mnt     *fakeMounter
	metrics *fakeMetrics
	dir     string // a scratch directory for paths the service stats
}

func newNodeEnv(t *testing.T) *nodeEnv {
	t.Helper()
	e := &nodeEnv{init: newFakeInitiator(), mnt: newFakeMounter(), metrics: &fakeMetrics{}, dir: t.TempDir()}
	n, err := New(e.init, e.mnt, Options{NodeID: "node-a", Metrics: e.metrics})
	if err != nil {
		t.Fatal(err)
	}
	e.n = n
	return e
}

func (e *nodeEnv) path(name string) string { return filepath.Join(e.dir, name) }

// nodeVolumeContext is what CreateVolume puts into a volume's context.
func nodeVolumeContext(id string, extra ...string) map[string]string {
	c := map[string]string{"nvmeAddress": "10.0.1.5", "nvmePort": "4420", "nqn": nvme.NQNPrefix + id, "basePath": "pool/k8s"}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i]] = extra[i+1]
	}
	return c
}
