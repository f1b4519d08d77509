package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const gib = int64(1) << 30

type bench struct {
	o       options
	conn    *grpc.ClientConn
	ctrl    csi.ControllerClient
	counter *execCounter
	rows    []row
	conc    []concRow
}

// row is one sequential operation's samples.
type row struct {
	op           string
	samples      []time.Duration
	failed       int
	firstErr     string
	execs, cmds  int64
	hasExecCount bool
}

// concRow is one concurrent phase.
type concRow struct {
	row
	wall time.Duration
}

func newBench(endpoint string, o options, counter *execCounter) (*bench, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &bench{o: o, conn: conn, ctrl: csi.NewControllerClient(conn), counter: counter}, nil
}

func (b *bench) close() { b.conn.Close() }

func mountCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func (b *bench) createReq(name string, size int64, src *csi.VolumeContentSource) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{Name: name, CapacityRange: &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap()}, Parameters: b.o.params, VolumeContentSource: src}
}

// call runs one RPC with the per-RPC deadline and returns how long it took.
func (b *bench) call(ctx context.Context, f func(context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	return time.Since(start), err
}

// sequential runs f for each i in [0, n) one after another and records the samples as op.
func (b *bench) sequential(ctx context.Context, op string, n int, f func(ctx context.Context, i int) error) {
	r := row{op: op}
	e0, c0 := b.counter.settle()
	for i := 0; i < n; i++ {
		d, err := b.call(ctx, func(ctx context.Context) error { return f(ctx, i) })
		r.add(d, err)
	}
	b.countExecs(&r, e0, c0)
	b.rows = append(b.rows, r)
}

// concurrent runs f for each i in [0, n) with b.o.concurrency in flight.
func (b *bench) concurrent(ctx context.Context, op string, n int, f func(ctx context.Context, i int) error) {
	r := concRow{row: row{op: op}}
	e0, c0 := b.counter.settle()
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < b.o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				d, err := b.call(ctx, func(ctx context.Context) error { return f(ctx, i) })
				mu.Lock()
				r.add(d, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.wall = time.Since(start)
	b.countExecs(&r.row, e0, c0)
	b.conc = append(b.conc, r)
}

func (b *bench) countExecs(r *row, e0, c0 int64) {
	if b.counter == nil {
		return
	}
	e1, c1 := b.counter.settle()
	r.execs, r.cmds, r.hasExecCount = e1-e0, c1-c0, true
}

func (r *row) add(d time.Duration, err error) {
	if err != nil {
		r.failed++
		if r.firstErr == "" {
			s, _ := status.FromError(err)
			r.firstErr = fmt.Sprintf("%s: %s", s.Code(), s.Message())
		}
		return
	}
	r.samples = append(r.samples, d)
}

func (b *bench) runAll(ctx context.Context, driverName string) error {
	o := b.o
	// Warm up: the first create learns the pool's filesystem, a cost paid once per process.
	if _, err := b.ctrl.CreateVolume(ctx, b.createReq("bench-warm", gib, nil)); err != nil {
		return fmt.Errorf("warm-up CreateVolume: %w", err)
	}
	if _, err := b.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "bench-warm"}); err != nil {
		return fmt.Errorf("warm-up DeleteVolume: %w", err)
	}
	n := o.sequential
	seq := func(i int) string { return fmt.Sprintf("bench-seq-%03d", i) }
	snap := func(i int) string { return fmt.Sprintf("bench-snap-%03d", i) }
	rst := func(i int) string { return fmt.Sprintf("bench-rst-%03d", i) }
	vols := make([]string, n)
	snaps := make([]string, n)
	b.sequential(ctx, "create", n, func(ctx context.Context, i int) error {
		r, err := b.ctrl.CreateVolume(ctx, b.createReq(seq(i), gib, nil))
		if err == nil {
			vols[i] = r.GetVolume().GetVolumeId()
		}
		return err
	})
	b.sequential(ctx, "expand", n, func(ctx context.Context, i int) error {
		_, err := b.ctrl.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: vols[i],
			CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * gib}, VolumeCapability: mountCap()})
		return err
	})
	b.sequential(ctx, "publish", n, func(ctx context.Context, i int) error {
		_, err := b.ctrl.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vols[i],
			NodeId: o.nodeID, VolumeCapability: mountCap()})
		return err
	})
	b.sequential(ctx, "unpublish", n, func(ctx context.Context, i int) error {
		_, err := b.ctrl.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vols[i], NodeId: o.nodeID})
		return err
	})
	b.sequential(ctx, "snapshot", n, func(ctx context.Context, i int) error {
		r, err := b.ctrl.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{SourceVolumeId: vols[i], Name: snap(i)})
		if err == nil {
			snaps[i] = r.GetSnapshot().GetSnapshotId()
		}
		return err
	})
	b.sequential(ctx, "restore", n, func(ctx context.Context, i int) error {
		src := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snaps[i]}}}
		// The snapshot was taken after the expand, so the restore asks for the expanded size.
		_, err := b.ctrl.CreateVolume(ctx, b.createReq(rst(i), 2*gib, src))
		return err
	})
	b.sequential(ctx, "delete-snapshot", n, func(ctx context.Context, i int) error {
		_, err := b.ctrl.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snaps[i]})
		return err
	})
	b.sequential(ctx, "delete (restored)", n, func(ctx context.Context, i int) error {
		_, err := b.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: rst(i)})
		return err
	})
	b.sequential(ctx, "delete", n, func(ctx context.Context, i int) error {
		_, err := b.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: seq(i)})
		return err
	})
	if m := o.volumes; m > 0 {
		conc := func(i int) string { return fmt.Sprintf("bench-c-%05d", i) }
		b.concurrent(ctx, "create", m, func(ctx context.Context, i int) error {
			_, err := b.ctrl.CreateVolume(ctx, b.createReq(conc(i), gib, nil))
			return err
		})
		listed := 0
		b.sequential(ctx, fmt.Sprintf("list (%d volumes)", m), o.listRuns, func(ctx context.Context, _ int) error {
			n, err := b.listAll(ctx)
			listed = n
			return err
		})
		if listed < m {
			fmt.Fprintf(os.Stderr, "bench: ListVolumes returned %d volumes, %d were created\n", listed, m)
		}
		b.concurrent(ctx, "delete", m, func(ctx context.Context, i int) error {
			_, err := b.ctrl.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: conc(i)})
			return err
		})
	}
	b.print(driverName)
	return nil
}

// listAll pages through ListVolumes to the end and returns how many volumes it saw.
func (b *bench) listAll(ctx context.Context) (int, error) {
	total, token := 0, ""
	for {
		r, err := b.ctrl.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: token})
		if err != nil {
			return total, err
		}
		total += len(r.GetEntries())
		if token = r.GetNextToken(); token == "" {
			return total, nil
		}
	}
}

func percentile(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append([]time.Duration(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	if p == 50 {
		if len(c)%2 == 0 {
			return (c[len(c)/2-1] + c[len(c)/2]) / 2
		}
		return c[len(c)/2]
	}
	i := int(float64(len(c))*p/100+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(c) {
		i = len(c) - 1
	}
	return c[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func (b *bench) ratio(d time.Duration) string {
	if b.o.roundTrip <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(b.o.roundTrip))
}

func perOp(n int64, ops int, ok bool) string {
	if !ok || ops == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(n)/float64(ops))
}

func (b *bench) print(driverName string) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Printf("\n%s against rds-sim --latency %s (round trip %s), %d sequential samples each\n\n",
		driverName, b.o.latency, b.o.roundTrip, b.o.sequential)
	fmt.Fprintln(w, "operation\t n\t median\t p99\t median/RTT\t p99/RTT\t execs/op\t cmds/op\t failed\t")
	for _, r := range b.rows {
		ops := len(r.samples) + r.failed
		fmt.Fprintf(w, "%s\t %d\t %s\t %s\t %s\t %s\t %s\t %s\t %d\t\n", r.op, len(r.samples),
			ms(percentile(r.samples, 50)), ms(percentile(r.samples, 99)),
			b.ratio(percentile(r.samples, 50)), b.ratio(percentile(r.samples, 99)),
			perOp(r.execs, ops, r.hasExecCount), perOp(r.cmds, ops, r.hasExecCount), r.failed)
	}
	w.Flush()
	if len(b.conc) > 0 {
		fmt.Printf("\nconcurrent, %d in flight\n\n", b.o.concurrency)
		w = tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
		fmt.Fprintln(w, "operation\t ops\t failed\t wall\t throughput\t median\t p99\t execs/op\t")
		for _, r := range b.conc {
			ops := len(r.samples) + r.failed
			fmt.Fprintf(w, "%s\t %d\t %d\t %.1f s\t %.1f /s\t %s\t %s\t %s\t\n", r.op, ops, r.failed, r.wall.Seconds(),
				float64(len(r.samples))/r.wall.Seconds(), ms(percentile(r.samples, 50)), ms(percentile(r.samples, 99)),
				perOp(r.execs, ops, r.hasExecCount))
		}
		w.Flush()
	}
	var errs []string
	for _, r := range append(b.rows, concRows(b.conc)...) {
		if r.firstErr != "" {
			errs = append(errs, fmt.Sprintf("  %s: %d failed, first: %s", r.op, r.failed, r.firstErr))
		}
	}
	if len(errs) > 0 {
		fmt.Printf("\nfailures:\n%s\n", strings.Join(errs, "\n"))
	}
}

func concRows(c []concRow) []row {
	out := make([]row, len(c))
	for i := range c {
		out[i] = c[i].row
	}
	return out
}
