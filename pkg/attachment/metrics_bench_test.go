package attachment

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/observability"
)

// wireMetrics connects a manager to a Metrics the way the driver does: the active-connections
// gauge counts volumes (len of ListAttachments), the other gauges come from Stats.
func wireMetrics(m *Manager) *observability.Metrics {
	metrics := observability.NewMetrics()
	metrics.SetAttachmentManager(func() int { return len(m.ListAttachments()) })
	metrics.SetAttachmentStats(func() observability.AttachmentStats {
		s := m.Stats()
		return observability.AttachmentStats{NodeAttachments: s.NodeAttachments, Migrations: s.Migrations,
			MigrationsOverWindow: s.MigrationsOverWindow}
	})
	return metrics
}

func scrapeBody(tb testing.TB, h http.Handler) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("scrape status %d", rec.Code)
	}
	return rec.Body.String()
}

// TestMetricsCountVolumesNotNodeAttachments: a volume held by two nodes during a migration counts
// once in rds_csi_nvme_connections_active and twice in rds_csi_attachments.
func TestMetricsCountVolumesNotNodeAttachments(t *testing.T) {
	m, _, _ := newTestManager()
	h := wireMetrics(m).Handler()
	steps := []struct {
		name                          string
		change                        func()
		active, attachments, migrates int
	}{
		{"empty", func() {}, 0, 0, 0},
		{"one RWO volume", func() { must(t, m.Attach("rwo", "a", SingleNode)) }, 1, 1, 0},
		{"a VM disk", func() { must(t, m.Attach("vm", "a", MultiNodeBlock)) }, 2, 2, 0},
		{"the VM migrates", func() { must(t, m.Attach("vm", "b", MultiNodeBlock)) }, 2, 3, 1},
		{"the migration ends", func() { m.Detach("vm", "a") }, 2, 2, 0},
		{"everything detaches", func() { m.Detach("vm", "b"); m.Detach("rwo", "a") }, 0, 0, 0},
	}
	for _, s := range steps {
		s.change()
		body := scrapeBody(t, h)
		for _, want := range []string{
			fmt.Sprintf("\nrds_csi_nvme_connections_active %d\n", s.active),
			fmt.Sprintf("\nrds_csi_attachments %d\n", s.attachments),
			fmt.Sprintf("\nrds_csi_migrations_in_progress %d\n", s.migrates),
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: scrape lacks %q", s.name, strings.TrimSpace(want))
			}
		}
	}
}

// BenchmarkScrapeMetrics10000Volumes measures one /metrics scrape of a controller tracking
// 10,000 attached volumes (100 of them migrating), gauges derived at scrape time.
func BenchmarkScrapeMetrics10000Volumes(b *testing.B) {
	m := NewManager(Options{})
	for i := 0; i < 10000; i++ {
		vol := fmt.Sprintf("pvc-%05d", i)
		mode := SingleNode
		if i < 100 {
			mode = MultiNodeBlock
		}
		if err := m.Attach(vol, fmt.Sprintf("node-%d", i%50), mode); err != nil {
			b.Fatal(err)
		}
		if i < 100 {
			if err := m.Attach(vol, fmt.Sprintf("node-%d", (i+1)%50), mode); err != nil {
				b.Fatal(err)
			}
		}
	}
	h := wireMetrics(m).Handler()
	if body := scrapeBody(b, h); !strings.Contains(body, "\nrds_csi_nvme_connections_active 10000\n") {
		b.Fatal("the gauge does not report 10000 volumes")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scrapeBody(b, h)
	}
}
