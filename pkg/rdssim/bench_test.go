package rdssim

import (
	"fmt"
	"testing"
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
