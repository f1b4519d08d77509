// Command demo drives a whole volume lifecycle through the real CSI gRPC API of rds-csi running against its
// embedded RDS simulator, printing each step and the RouterOS commands it caused. It exits non-zero on the
// first failure. Run it with `make demo`.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const gib = int64(1) << 30

func main() {
	driverBin := flag.String("driver", "bin/rds-csi", "rds-csi binary")
	keep := flag.String("dir", "", "working directory (default: a temporary one, removed at the end)")
	flag.Parse()
	if err := run(*driverBin, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "\nDEMO FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("\nDEMO PASSED")
}

// simLog collects the simulator's command lines from the driver's standard output.
type simLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *simLog) read(r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, s.Text())
		l.mu.Unlock()
	}
}

// drain returns the lines logged since the last call.
func (l *simLog) drain() []string {
	time.Sleep(50 * time.Millisecond) // let the pipe catch up with the command that just answered
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

type step struct {
	title string
	f     func() (string, error)
}

type demo struct {
	ctx      context.Context
	id       csi.IdentityClient
	ctrl     csi.ControllerClient
	node     csi.NodeClient
	log      *simLog
	step     int
	withNode bool   // the driver runs the node service (root: loop devices)
	dir      string // staging and target paths live here
	bin      string // the rds-csi binary, also run as `rds-csi orphans` and `rds-csi import`
}

// do runs one step, prints what it did and the RouterOS commands it sent.
func (d *demo) do(title string, f func() (string, error)) error {
	d.step++
	fmt.Printf("\n[%d] %s\n", d.step, title)
	start := time.Now()
	res, err := f()
	took := time.Since(start)
	for _, l := range d.log.drain() {
		fmt.Printf("      rds: %s\n", l)
	}
	if err != nil {
		return fmt.Errorf("step %d (%s): %w", d.step, title, err)
	}
	fmt.Printf("    -> %s (%s)\n", res, took.Round(time.Millisecond))
	return nil
}

func run(driverBin, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "rds-csi-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	sock := filepath.Join(dir, "csi.sock")
	// As root the driver runs the node service too, on loop devices; otherwise the controller alone.
	mode := "controller"
	if os.Geteuid() == 0 {
		mode = "all"
	} else {
		fmt.Println("not root: the node steps (stage, mount, write, unstage) are left out; they need loop devices and mount")
	}
	cmd := exec.Command(driverBin, "--mode="+mode, "--endpoint=unix://"+sock, "--node-id="+demoNode,
		"--rds-simulator="+filepath.Join(dir, "rds"), "--base-path=pool/k8s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	driverLog, err := os.Create(filepath.Join(dir, "driver.log"))
	if err != nil {
		return err
	}
	defer driverLog.Close()
	cmd.Stderr = driverLog
	log := &simLog{}
	fmt.Printf("starting %s with an embedded RDS simulator in %s\n", driverBin, dir)
	if err := cmd.Start(); err != nil {
		return err
	}
	go log.read(stdout)
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	if err := waitForSocket(sock, 30*time.Second); err != nil {
		return fmt.Errorf("%w (driver log: %s)", err, filepath.Join(dir, "driver.log"))
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := &demo{ctx: ctx, id: csi.NewIdentityClient(conn), ctrl: csi.NewControllerClient(conn),
		node: csi.NewNodeClient(conn), log: log, withNode: mode == "all", dir: dir, bin: driverBin}
	return d.lifecycle()
}

func waitForSocket(sock string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the driver did not listen on %s within %s", sock, within)
}

func fsCap() []*csi.VolumeCapability {
	return []*csi.VolumeCapability{{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "xfs"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}}
}

func gibs(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/float64(gib)) }

func (d *demo) lifecycle() error {
	ctx := d.ctx
	var freeBefore int64
	steps := []step{
		{"GetPluginInfo and Probe", func() (string, error) {
			info, err := d.id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
			if err != nil {
				return "", err
			}
			p, err := d.id.Probe(ctx, &csi.ProbeRequest{})
			if err != nil {
				return "", err
			}
			if !p.GetReady().GetValue() {
				return "", fmt.Errorf("probe says the RDS is not ready")
			}
			return fmt.Sprintf("%s %s, ready", info.GetName(), info.GetVendorVersion()), nil
		}},
		{"GetCapacity before", func() (string, error) {
			c, err := d.ctrl.GetCapacity(ctx, &csi.GetCapacityRequest{})
			if err != nil {
				return "", err
			}
			freeBefore = c.GetAvailableCapacity()
			return gibs(freeBefore) + " free", nil
		}},
		{"CreateVolume demo-vol-a (5 GiB)", d.create("demo-vol-a", 5*gib)},
		{"CreateVolume demo-vol-b (1.5 GiB: sent as exact bytes, never floored)", d.create("demo-vol-b", 3*gib/2)},
		{"CreateVolume demo-vol-a again (idempotent)", d.create("demo-vol-a", 5*gib)},
		{"ControllerExpandVolume demo-vol-a to 8 GiB", func() (string, error) {
			r, err := d.ctrl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "demo-vol-a",
				CapacityRange: &csi.CapacityRange{RequiredBytes: 8 * gib}, VolumeCapability: fsCap()[0]})
			if err != nil {
				return "", err
			}
			if r.GetCapacityBytes() < 8*gib {
				return "", fmt.Errorf("expanded to %d bytes only", r.GetCapacityBytes())
			}
			return fmt.Sprintf("%s, node expansion required: %v", gibs(r.GetCapacityBytes()), r.GetNodeExpansionRequired()), nil
		}},
		{"ListVolumes one per page", d.listPaged},
	}
	n := &nodeDemo{demo: d, dir: d.dir}
	if d.withNode {
		steps = append(steps, []step{
			{"Attach demo-vol-a on demo-node: ControllerPublish, NodeStage (mkfs.xfs on the blank device), NodePublish", n.attach("demo-vol-a")},
			{"Write a file into demo-vol-a", n.write("demo-vol-a")},
			{"Detach demo-vol-a: NodeUnpublish, NodeUnstage, ControllerUnpublish", n.detach("demo-vol-a")},
			{"Attach demo-vol-a again: nothing is re-formatted", n.attach("demo-vol-a")},
			{"Read the file back", n.verify("demo-vol-a")},
			{"Detach demo-vol-a", n.detach("demo-vol-a")},
		}...)
	}
	steps = append(steps, []step{
		{"CreateSnapshot demo-snap of demo-vol-a (a read-only btrfs snapshot)", d.snapshot("demo-snap", "demo-vol-a")},
		{"CreateSnapshot demo-snap again (idempotent)", d.snapshot("demo-snap", "demo-vol-a")},
		{"CreateVolume demo-vol-clone as a clone of demo-vol-b", d.createFrom("demo-vol-clone", 0, &csi.VolumeContentSource{
			Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "demo-vol-b"}}})},
		{"GetCapacity after", func() (string, error) {
			c, err := d.ctrl.GetCapacity(ctx, &csi.GetCapacityRequest{})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%s free (before: %s): volumes are sparse files, so only what was written is allocated",
				gibs(c.GetAvailableCapacity()), gibs(freeBefore)), nil
		}},
		{"DeleteVolume demo-vol-a (its snapshot stays usable)", d.delete("demo-vol-a")},
		{"CreateVolume demo-vol-restored from demo-snap (10 GiB: the 8 GiB snapshot, grown)", d.createFrom("demo-vol-restored", 10*gib,
			&csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "demo-snap"}}})},
		{"ListSnapshots of demo-vol-a, which is gone", d.listSnapshots("demo-vol-a", 1)},
	}...)
	if d.withNode {
		steps = append(steps, []step{
			{"Attach demo-vol-restored: the snapshot's filesystem, grown to the larger volume at stage", n.attach("demo-vol-restored")},
			{"Read the file the snapshot kept", n.verify("demo-vol-restored")},
			{"The restored filesystem was grown at stage to fill the larger volume", n.fsAtLeast("demo-vol-restored", 9*gib)},
			{"Detach demo-vol-restored", n.detach("demo-vol-restored")},
		}...)
	}
	steps = append(steps, []step{
		{"DeleteSnapshot demo-snap", d.deleteSnapshot("demo-snap")},
		{"DeleteSnapshot demo-snap again (idempotent)", d.deleteSnapshot("demo-snap")},
		{"DeleteVolume demo-vol-restored", d.delete("demo-vol-restored")},
		{"DeleteVolume demo-vol-clone", d.delete("demo-vol-clone")},
		{"DeleteVolume demo-vol-b", d.delete("demo-vol-b")},
		{"DeleteVolume demo-vol-b again (idempotent)", d.delete("demo-vol-b")},
		{"ListVolumes is empty", d.listEmpty},
		{"ListSnapshots is empty", d.listSnapshots("", 0)},
	}...)
	more, closeInventory, err := d.inventorySteps(d.bin)
	if err != nil {
		return err
	}
	defer closeInventory()
	steps = append(append(steps, more...), step{"ListVolumes is empty again", d.listEmpty},
		step{"ListSnapshots is empty again", d.listSnapshots("", 0)})
	for _, s := range steps {
		if err := d.do(s.title, s.f); err != nil {
			return err
		}
	}
	return nil
}

func (d *demo) listEmpty() (string, error) {
	l, err := d.ctrl.ListVolumes(d.ctx, &csi.ListVolumesRequest{})
	if err != nil {
		return "", err
	}
	if n := len(l.GetEntries()); n != 0 {
		return "", fmt.Errorf("%d volumes left", n)
	}
	return "no volumes", nil
}

func (d *demo) create(name string, size int64) func() (string, error) {
	return func() (string, error) {
		r, err := d.ctrl.CreateVolume(d.ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: fsCap(),
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}})
		if err != nil {
			return "", err
		}
		v := r.GetVolume()
		if v.GetCapacityBytes() < size {
			return "", fmt.Errorf("got %d bytes for %d asked", v.GetCapacityBytes(), size)
		}
		return fmt.Sprintf("%s: %d bytes, nqn %s at %s:%s", v.GetVolumeId(), v.GetCapacityBytes(),
			v.GetVolumeContext()["nqn"], v.GetVolumeContext()["nvmeAddress"], v.GetVolumeContext()["nvmePort"]), nil
	}
}

func (d *demo) delete(name string) func() (string, error) {
	return func() (string, error) {
		if _, err := d.ctrl.DeleteVolume(d.ctx, &csi.DeleteVolumeRequest{VolumeId: name}); err != nil {
			return "", err
		}
		return "deleted", nil
	}
}

func (d *demo) listPaged() (string, error) {
	var pages []string
	token := ""
	for {
		l, err := d.ctrl.ListVolumes(d.ctx, &csi.ListVolumesRequest{MaxEntries: 1, StartingToken: token})
		if err != nil {
			return "", err
		}
		for _, e := range l.GetEntries() {
			pages = append(pages, fmt.Sprintf("%s (%s)", e.GetVolume().GetVolumeId(), gibs(e.GetVolume().GetCapacityBytes())))
		}
		if token = l.GetNextToken(); token == "" {
			break
		}
	}
	if len(pages) != 2 {
		return "", fmt.Errorf("expected 2 volumes over the pages, got %v", pages)
	}
	return "pages: " + strings.Join(pages, " | "), nil
}

func (d *demo) snapshot(name, source string) func() (string, error) {
	return func() (string, error) {
		r, err := d.ctrl.CreateSnapshot(d.ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: source})
		if err != nil {
			return "", err
		}
		s := r.GetSnapshot()
		if !s.GetReadyToUse() {
			return "", fmt.Errorf("snapshot %s is not ready to use", s.GetSnapshotId())
		}
		return fmt.Sprintf("%s of %s: %s, taken %s, ready", s.GetSnapshotId(), s.GetSourceVolumeId(), gibs(s.GetSizeBytes()),
			s.GetCreationTime().AsTime().Format(time.RFC3339)), nil
	}
}

func (d *demo) createFrom(name string, size int64, src *csi.VolumeContentSource) func() (string, error) {
	return func() (string, error) {
		r, err := d.ctrl.CreateVolume(d.ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: fsCap(),
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeContentSource: src})
		if err != nil {
			return "", err
		}
		v := r.GetVolume()
		if v.GetCapacityBytes() < size || v.GetContentSource() == nil {
			return "", fmt.Errorf("got %d bytes for %d asked, content source %v", v.GetCapacityBytes(), size, v.GetContentSource())
		}
		return fmt.Sprintf("%s: %s, nqn %s", v.GetVolumeId(), gibs(v.GetCapacityBytes()), v.GetVolumeContext()["nqn"]), nil
	}
}

func (d *demo) listSnapshots(source string, want int) func() (string, error) {
	return func() (string, error) {
		l, err := d.ctrl.ListSnapshots(d.ctx, &csi.ListSnapshotsRequest{SourceVolumeId: source})
		if err != nil {
			return "", err
		}
		var names []string
		for _, e := range l.GetEntries() {
			names = append(names, fmt.Sprintf("%s of %s (%s)", e.GetSnapshot().GetSnapshotId(), e.GetSnapshot().GetSourceVolumeId(),
				gibs(e.GetSnapshot().GetSizeBytes())))
		}
		if len(names) != want {
			return "", fmt.Errorf("%d snapshots listed, want %d: %v", len(names), want, names)
		}
		if want == 0 {
			return "no snapshots", nil
		}
		return strings.Join(names, ", "), nil
	}
}

func (d *demo) deleteSnapshot(id string) func() (string, error) {
	return func() (string, error) {
		if _, err := d.ctrl.DeleteSnapshot(d.ctx, &csi.DeleteSnapshotRequest{SnapshotId: id}); err != nil {
			return "", err
		}
		return "deleted", nil
	}
}
