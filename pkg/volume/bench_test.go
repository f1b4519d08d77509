package volume_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// BenchmarkVolumeLifecycle measures the SSH execs (the cost that dominates on hardware, 100-200 ms each) and
// the loopback time of each volume operation against the simulator.
//
//	go test -run '^$' -bench VolumeLifecycle ./pkg/volume
func BenchmarkVolumeLifecycle(b *testing.B) {
	e := newEnv(b, rdssim.Config{}, false)
	ctx := context.Background()
	if _, err := e.m.PoolFS(ctx, "pool"); err != nil { // learned once per process
		b.Fatal(err)
	}
	ops := []struct {
		name string
		run  func(id string) error
	}{
		{"create", func(id string) error { _, err := e.m.Create(ctx, e.req(id, volume.GiB)); return err }},
		{"create-again", func(id string) error { _, err := e.m.Create(ctx, e.req(id, volume.GiB)); return err }},
		{"expand", func(id string) error { _, err := e.m.Expand(ctx, id, 2*volume.GiB, 0); return err }},
		{"delete", func(id string) error { return e.m.Delete(ctx, id, e.loc) }},
		{"delete-again", func(id string) error { return e.m.Delete(ctx, id, e.loc) }},
	}
	for oi, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			// Bring b.N volumes to the state this operation starts from, outside the timer.
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = fmt.Sprintf("pvc-bench-%d-%d", oi, i)
				for _, prev := range ops[:oi] {
					if err := prev.run(ids[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
			e.sim.ResetCommands()
			b.ResetTimer()
			for _, id := range ids {
				if err := op.run(id); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(e.sim.Scripts()))/float64(b.N), "execs/op")
		})
	}
}
