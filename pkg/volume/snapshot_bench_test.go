package volume_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// benchManager is a Manager on a simulator whose every command costs latency, as round trips to an RDS do.
func benchManager(b *testing.B, latency time.Duration) (*volume.Manager, *rdssim.Simulator) {
	b.Helper()
	sim, err := rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: b.TempDir(), Latency: latency, PoolSize: 1 << 50})
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		b.Fatal(err)
	}
	hk, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		b.Fatal(err)
	}
	c, err := rds.New(rds.Config{Address: sim.Addr(), User: "admin", Signer: signer, HostKeyCallback: hk, CommandTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return volume.NewManager(c), sim
}

// BenchmarkSnapshotRestoreClone measures the three operations end to end over SSH, with and without a
// per-command latency, and reports how many execs each costs.
func BenchmarkSnapshotRestoreClone(b *testing.B) {
	loc := volume.Location{Pool: "pool", Dir: "k8s"}
	for _, latency := range []time.Duration{0, 5 * time.Millisecond} {
		m, sim := benchManager(b, latency)
		ctx := context.Background()
		seq := 0
		if _, err := m.Create(ctx, volume.CreateRequest{ID: "pvc-src", RequiredBytes: volume.GiB, Location: loc}); err != nil {
			b.Fatal(err)
		}
		if _, err := m.CreateSnapshot(ctx, "snap-base", "pvc-src"); err != nil {
			b.Fatal(err)
		}
		ops := []struct {
			name string
			op   func(i int) error
		}{
			{"snapshot", func(i int) error {
				_, err := m.CreateSnapshot(ctx, fmt.Sprintf("snap-%d", i), "pvc-src")
				return err
			}},
			{"restore", func(i int) error {
				_, err := m.CreateFrom(ctx, volume.CreateRequest{ID: fmt.Sprintf("pvc-r-%d", i), Location: loc},
					volume.Source{SnapshotID: "snap-base"})
				return err
			}},
			{"clone", func(i int) error {
				_, err := m.CreateFrom(ctx, volume.CreateRequest{ID: fmt.Sprintf("pvc-c-%d", i), Location: loc},
					volume.Source{VolumeID: "pvc-src"})
				return err
			}},
		}
		for _, o := range ops {
			b.Run(fmt.Sprintf("%s/latency=%s", o.name, latency), func(b *testing.B) {
				sim.ResetCommands()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					seq++ // names stay new across the runs of one benchmark: none is an idempotent repeat
					if err := o.op(seq); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(len(sim.Scripts()))/float64(b.N), "execs/op")
			})
		}
	}
}
