package rds

import (
	"context"
	"fmt"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// Round trips are what a PVC waits for (docs/architecture.md §3). These benchmarks show the cost of one Run over
// loopback SSH: the transport alone (test server), a real RouterOS-shaped read (simulator), and a create
// with its read-back as one script versus one exec per command.

func BenchmarkRunReadTestServer(b *testing.B) {
	srv := newTestServer(b)
	srv.configure(func(s *testServer) {
		s.respond = (&fakeRouterOS{answers: map[string]string{"/disk print": diskListing}}).respond
	})
	c := srv.client(Config{})
	read, _ := PrintDisks(Eq("slot", "pvc-1"))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Run(context.Background(), nil, read); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunReadTestServerParallel(b *testing.B) {
	srv := newTestServer(b)
	c := srv.client(Config{})
	read, _ := PrintDisks(Eq("slot", "pvc-1"))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Run(context.Background(), nil, read); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSimulatorCreateDelete creates a volume with its read-back and deletes it with its read-back:
// two Runs per iteration, as the driver spends on a CreateVolume plus a DeleteVolume.
func BenchmarkSimulatorCreateDelete(b *testing.B) {
	for _, oneCmd := range []bool{false, true} {
		b.Run(fmt.Sprintf("one-per-exec=%v", oneCmd), func(b *testing.B) {
			sim := startSim(b, rdssim.Config{})
			c := simClient(b, sim, Config{OneCommandPerExec: oneCmd})
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				v := volumeFor(b, fmt.Sprintf("pvc-%d", i), 1<<30)
				if _, err := c.Run(ctx, v.create, v.readDisk); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Run(ctx, v.remove, v.readDisk, v.readFile); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sim.Scripts()))/float64(b.N), "execs/op")
		})
	}
}
