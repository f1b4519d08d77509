package rdssim

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// BenchmarkExecRoundTrip measures one SSH exec on an open connection: a new
// session, a one-command script, its output and exit status.
func BenchmarkExecRoundTrip(b *testing.B) {
	s := startSim(b, Config{})
	c := dial(b, s)
	for b.Loop() {
		if out, _ := run(b, c, `:put "ping"`); out != "ping\r\n" {
			b.Fatalf("output %q", out)
		}
	}
}

// BenchmarkVolumeScript measures the driver's one-exec create and delete
// scripts: subvolume + sparse disk + read-back, then the reverse.
func BenchmarkVolumeScript(b *testing.B) {
	s := startSim(b, Config{})
	c := dial(b, s)
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("pvc-%d", i)
		i++
		mustRun(b, c, fmt.Sprintf(`/disk/btrfs/subvolume/add fs=pool-fs name=k8s/%[1]s
/disk add type=file file-path=pool/k8s/%[1]s/disk.img file-size=1G slot=%[1]s mount-filesystem=no nvme-tcp-export=yes nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:%[1]s
:put "m1"
/disk print detail where slot="%[1]s"`, id))
		mustRun(b, c, fmt.Sprintf(`/disk remove [find slot="%[1]s"]; /file remove [find name="pool/k8s/%[1]s/disk.img"]; /disk/btrfs/subvolume/remove [find where name="%[1]s"]; :put "m2"`, id))
	}
}

// BenchmarkFormatDetail measures rendering a wrapped print detail.
func BenchmarkFormatDetail(b *testing.B) {
	s := &Simulator{cfg: Config{DataDir: b.TempDir()}, poolName: "pool"}
	d := &diskRecord{Index: 1, Slot: "pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", Size: 10 << 30, Export: true, Port: 4420,
		FilePath: "pool/k8s/pvc-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/disk.img", NQN: "nqn.2000-02.com.mikrotik:pvc-0f1e2d3c"}
	items := []item{s.diskItem(d)}
	for b.Loop() {
		formatDetail(diskFlags, items, 80)
	}
}

// createScript and deleteScript are the driver's one-exec create and delete of volume id.
func createScript(id string) string {
	return fmt.Sprintf(`/disk/btrfs/subvolume/add fs=pool-fs name=k8s/%[1]s
/disk add type=file file-path=pool/k8s/%[1]s/disk.img file-size=1G slot=%[1]s mount-filesystem=no nvme-tcp-export=yes nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:%[1]s
/disk print detail where slot="%[1]s"`, id)
}

func deleteScript(id string) string {
	return fmt.Sprintf(`/disk remove [find slot="%[1]s"]; /file remove [find name="pool/k8s/%[1]s/disk.img"]; /disk/btrfs/subvolume/remove [find where fs=pool-fs and name="%[1]s"]
/disk print detail where slot="%[1]s"
/file print detail where name="pool/k8s/%[1]s/disk.img"`, id)
}

// populate creates n volumes through the console, 16 at a time.
func populate(b *testing.B, s *Simulator, n int) {
	b.Helper()
	var wg sync.WaitGroup
	ids := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(b, s)
			for i := range ids {
				if out, status, err := runErr(c, createScript(fmt.Sprintf("fill-%05d", i))); err != nil || status != 0 {
					b.Errorf("populate: %v %d %s", err, status, out)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		ids <- i
	}
	close(ids)
	wg.Wait()
}

// BenchmarkSimpleCommandsParallel: one-command reads of one disk, from many sessions over several
// connections, with `existing` volumes on the box. The bar is 2,000 commands/s on 2 cores.
func BenchmarkSimpleCommandsParallel(b *testing.B) {
	for _, existing := range []int{0, 1000} {
		b.Run(fmt.Sprintf("volumes=%d", existing), func(b *testing.B) {
			s := startSim(b, Config{})
			populate(b, s, existing)
			conns := make([]*ssh.Client, 8)
			for i := range conns {
				conns[i] = dial(b, s)
			}
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := conns[next.Add(1)%int64(len(conns))]
				for pb.Next() {
					if _, status, err := runErr(c, `/disk print detail where slot="fill-00007"`); err != nil || status != 0 {
						b.Errorf("print: %v %d", err, status)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

// BenchmarkCreateDeleteParallel: the driver's create and delete scripts for different volumes at once,
// with 1,000 volumes already on the box.
func BenchmarkCreateDeleteParallel(b *testing.B) {
	s := startSim(b, Config{PoolSize: 1 << 50})
	populate(b, s, 1000)
	conns := make([]*ssh.Client, 8)
	for i := range conns {
		conns[i] = dial(b, s)
	}
	var next, ids atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := conns[next.Add(1)%int64(len(conns))]
		for pb.Next() {
			id := fmt.Sprintf("par-%d", ids.Add(1))
			for _, script := range []string{createScript(id), deleteScript(id)} {
				if out, status, err := runErr(c, script); err != nil || status != 0 {
					b.Errorf("%v %d %s", err, status, out)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "volumes/s")
}
