package kube

import (
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/test/kubeenv"
)

// startupFixture is a driver name with many attached volumes in the API server, shared by the runs of
// the start-up benchmark and deleted after all tests (creating 5,000 takes longer than a start-up).
type startupFixture struct {
	driver string
	simDir string
}

var (
	startupOnce sync.Once
	startupFx   *startupFixture
)

// Size of the start-up benchmark's cluster: the 5,000 VolumeAttachments, on 50 nodes.
const (
	startupVolumes = 5000
	startupNodes   = 50
)

func startupFixtures(b *testing.B) *startupFixture {
	b.Helper()
	startupOnce.Do(func() {
		cl := newClusterKept(b)
		afterTests = append(afterTests, cl.DeleteAll)
		fx := &startupFixture{driver: kubeenv.DriverName(b)}
		var err error
		if fx.simDir, err = os.MkdirTemp("", "rds-csi-bench-sim"); err != nil {
			b.Fatal(err)
		}
		afterTests = append(afterTests, func() error { return os.RemoveAll(fx.simDir) })
		start := time.Now()
		nodes := make([]string, startupNodes)
		for i := range nodes {
			nodes[i] = cl.node("node")
		}
		cl.Parallel(startupVolumes, func(i int) error {
			bv, err := cl.createVolume(volumeSpec{driver: fx.driver, handle: fmt.Sprintf("pvc-bench-%05d", i)})
			if err != nil {
				return err
			}
			return cl.CreateVA(fmt.Sprintf("%s-va-%05d", cl.Label, i), fx.driver, bv.pv, nodes[i%len(nodes)], true)
		})
		b.Logf("created %d PVs and attached VolumeAttachments on %d nodes in %s", startupVolumes, startupNodes,
			time.Since(start).Round(time.Millisecond))
		startupFx = fx
	})
	if startupFx == nil {
		b.Fatal("start-up fixtures were not created")
	}
	return startupFx
}

var rebuildLine = regexp.MustCompile(`"Attachment state rebuilt from Kubernetes".* duration="([^"]+)"`)

// BenchmarkControllerStartup5000 starts the controller binary against an API server holding 5,000
// attached VolumeAttachments of its driver and their PVs. ns/op is exec to serving CSI (the state is
// complete by then); rebuild-ms is the attachment rebuild as the process logs it (lists, informer
// handlers, index); api-requests is every request it sent until serving (informers, leader election);
// scrape-ms is one /metrics scrape over HTTP with that state. Each run is a process start: use
// -benchtime=1x or a small count.
func BenchmarkControllerStartup5000(b *testing.B) {
	fx := startupFixtures(b)
	args := []string{"--driver-name=" + fx.driver, "--rds-simulator=" + fx.simDir, "--leader-election-namespace=" + kubeenv.ClaimNamespace}
	var rebuild, scrape time.Duration
	var requests int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := startController(b, fmt.Sprintf("controller run %d", i), args...)
		b.StopTimer()
		m := rebuildLine.FindStringSubmatch(p.out.String())
		if m == nil {
			b.Fatal("the process did not log its attachment rebuild")
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			b.Fatal(err)
		}
		rebuild += d
		for _, n := range p.startupRequests {
			requests += n
		}
		t0 := time.Now()
		families := p.scrape()
		scrape += time.Since(t0)
		if v, err := gaugeIn(families, connectionsActive); err != nil || v != startupVolumes {
			b.Fatalf("first scrape: %s = %v (%v), want %d", connectionsActive, v, err, startupVolumes)
		}
		b.Logf("run %d: serving after %s, rebuild %s, requests %v", i, p.ready.Sub(p.started).Round(time.Millisecond),
			d, p.startupRequests)
		p.kill()
		b.StartTimer()
	}
	b.ReportMetric(float64(rebuild.Milliseconds())/float64(b.N), "rebuild-ms")
	b.ReportMetric(float64(requests)/float64(b.N), "api-requests")
	b.ReportMetric(float64(scrape.Microseconds())/1000/float64(b.N), "scrape-ms")
}
