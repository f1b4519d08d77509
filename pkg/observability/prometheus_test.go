package observability

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// scrape fetches /metrics over real HTTP from a server running m.Serve and returns the body.
func scrape(t testing.TB, m *Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after cancel", err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// family returns the gathered metric family with the given name, or nil.
func family(t testing.TB, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func gaugeValue(t testing.TB, m *Metrics, name string) float64 {
	t.Helper()
	mf := family(t, m, name)
	if mf == nil {
		t.Fatalf("metric %s absent", name)
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

func TestConnectionsActiveAbsentWithoutSetter(t *testing.T) {
	m := NewMetrics()
	m.RecordNVMeConnect(nil, time.Second)
	m.RecordNVMeDisconnect()
	body := scrape(t, m)
	if strings.Contains(body, NVMeConnectionsActiveName) {
		t.Fatalf("%s present on a Metrics without SetAttachmentManager:\n%s", NVMeConnectionsActiveName, body)
	}
	// The scrape is otherwise complete: the connect counters are there.
	if !strings.Contains(body, `rds_csi_nvme_connects_total{status="success"} 1`) {
		t.Fatalf("connect counter missing from scrape:\n%s", body)
	}
}

func TestConnectionsActivePresentWithSetterExactly(t *testing.T) {
	m := NewMetrics()
	m.SetAttachmentManager(func() int { return 3 })
	want := `# HELP rds_csi_nvme_connections_active Number of active volumes with NVMe/TCP connections (counts volumes, not per-node attachments during migration)
# TYPE rds_csi_nvme_connections_active gauge
rds_csi_nvme_connections_active 3
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), NVMeConnectionsActiveName); err != nil {
		t.Fatal(err)
	}
	if body := scrape(t, m); !strings.Contains(body, "\nrds_csi_nvme_connections_active 3\n") {
		t.Fatalf("HTTP scrape lacks the gauge:\n%s", body)
	}
}

func TestConnectionsActiveFollowsCallback(t *testing.T) {
	m := NewMetrics()
	attached := map[string]bool{}
	var calls atomic.Int32
	m.SetAttachmentManager(func() int { calls.Add(1); return len(attached) })

	steps := []struct {
		name   string
		change func()
		want   float64
	}{
		{"none", func() {}, 0},
		{"attach a", func() { attached["a"] = true }, 1},
		{"attach b", func() { attached["b"] = true }, 2},
		{"attach a again", func() { attached["a"] = true }, 2},
		{"detach a", func() { delete(attached, "a") }, 1},
		{"detach b", func() { delete(attached, "b") }, 0},
	}
	for _, s := range steps {
		s.change()
		if got := gaugeValue(t, m, NVMeConnectionsActiveName); got != s.want {
			t.Errorf("%s: gauge %v, want %v", s.name, got, s.want)
		}
	}
	if int(calls.Load()) != len(steps) {
		t.Errorf("callback called %d times for %d scrapes; it must run on every scrape", calls.Load(), len(steps))
	}
}

func TestNewMetricsWithSameCountReportsSameValue(t *testing.T) {
	// A restarted controller rebuilds its attachment state and wires a new Metrics: the gauge
	// must not depend on anything the old process counted.
	count := func() int { return 7 }
	before := NewMetrics()
	before.SetAttachmentManager(count)
	before.RecordNVMeConnect(nil, time.Second) // history the new process does not have
	after := NewMetrics()
	after.SetAttachmentManager(count)
	if b, a := gaugeValue(t, before, NVMeConnectionsActiveName), gaugeValue(t, after, NVMeConnectionsActiveName); a != b || a != 7 {
		t.Fatalf("before restart %v, after %v, want 7 both", b, a)
	}
}

func TestSetAttachmentManagerReplaceAndRemove(t *testing.T) {
	m := NewMetrics()
	m.SetAttachmentManager(func() int { return 1 })
	m.SetAttachmentManager(func() int { return 2 })
	if got := gaugeValue(t, m, NVMeConnectionsActiveName); got != 2 {
		t.Fatalf("after replacing the callback the gauge is %v, want 2", got)
	}
	m.SetAttachmentManager(nil)
	if family(t, m, NVMeConnectionsActiveName) != nil {
		t.Fatal("gauge still present after SetAttachmentManager(nil)")
	}
}

func TestPanickingCallbackDoesNotBreakScrape(t *testing.T) {
	m := NewMetrics()
	m.SetAttachmentManager(func() int { panic("attachment manager not ready") })
	body := scrape(t, m)
	if !strings.Contains(body, "rds_csi_nvme_connections_active NaN") {
		t.Fatalf("want NaN for a panicking callback:\n%s", body)
	}
	if !math.IsNaN(gaugeValue(t, m, NVMeConnectionsActiveName)) {
		t.Fatal("gathered value is not NaN")
	}
}

func TestRecordNVMeConnect(t *testing.T) {
	tests := []struct {
		name                     string
		errs                     []error
		durations                []time.Duration
		wantSuccess, wantFailure float64
		wantObservations         uint64
		wantObservedSumSeconds   float64
	}{
		{"one success", []error{nil}, []time.Duration{1500 * time.Millisecond}, 1, 0, 1, 1.5},
		{"one failure is not timed", []error{errors.New("i/o error")}, []time.Duration{time.Second}, 0, 1, 0, 0},
		{"mixed", []error{nil, errors.New("x"), nil}, []time.Duration{time.Second, 9 * time.Second, 250 * time.Millisecond}, 2, 1, 2, 1.25},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics()
			m.SetAttachmentManager(func() int { return 4 })
			for i, err := range tc.errs {
				m.RecordNVMeConnect(err, tc.durations[i])
			}
			m.RecordNVMeDisconnect()
			if got := testutil.ToFloat64(m.nvmeConnects.WithLabelValues("success")); got != tc.wantSuccess {
				t.Errorf("success count %v, want %v", got, tc.wantSuccess)
			}
			if got := testutil.ToFloat64(m.nvmeConnects.WithLabelValues("failure")); got != tc.wantFailure {
				t.Errorf("failure count %v, want %v", got, tc.wantFailure)
			}
			h := family(t, m, "rds_csi_nvme_connect_duration_seconds").GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != tc.wantObservations || math.Abs(h.GetSampleSum()-tc.wantObservedSumSeconds) > 1e-9 {
				t.Errorf("histogram count %d sum %v, want %d and %v", h.GetSampleCount(), h.GetSampleSum(), tc.wantObservations, tc.wantObservedSumSeconds)
			}
			// Connects and disconnects never move the active gauge: it comes from the callback.
			if got := gaugeValue(t, m, NVMeConnectionsActiveName); got != 4 {
				t.Errorf("active gauge %v after connects/disconnects, want the callback's 4", got)
			}
			if got := testutil.ToFloat64(m.nvmeDisconnects); got != 1 {
				t.Errorf("disconnects %v, want 1", got)
			}
		})
	}
}

func TestAttachmentStatsGauges(t *testing.T) {
	m := NewMetrics()
	names := []string{"rds_csi_attachments", "rds_csi_migrations_in_progress", "rds_csi_migrations_over_window"}
	for _, n := range names {
		if family(t, m, n) != nil {
			t.Fatalf("%s present before SetAttachmentStats", n)
		}
	}
	stats := AttachmentStats{NodeAttachments: 5, Migrations: 2, MigrationsOverWindow: 1}
	m.SetAttachmentStats(func() AttachmentStats { return stats })
	want := `# HELP rds_csi_attachments Volume attachments to nodes known to the controller; a volume held by two nodes during a migration counts twice.
# TYPE rds_csi_attachments gauge
rds_csi_attachments 5
# HELP rds_csi_migrations_in_progress Volumes held by two nodes at once (live migrations in progress).
# TYPE rds_csi_migrations_in_progress gauge
rds_csi_migrations_in_progress 2
# HELP rds_csi_migrations_over_window Migrations in progress for longer than the migration window; the driver warns but never detaches on its own.
# TYPE rds_csi_migrations_over_window gauge
rds_csi_migrations_over_window 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	stats = AttachmentStats{NodeAttachments: 1}
	if got := gaugeValue(t, m, "rds_csi_migrations_in_progress"); got != 0 {
		t.Fatalf("migrations gauge %v after the callback's value dropped to 0", got)
	}
	// The callback walks every tracked volume: one call serves all three gauges of a scrape.
	calls := 0
	m.SetAttachmentStats(func() AttachmentStats { calls++; return stats })
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("one scrape called the stats callback %d times, want 1", calls)
	}
	m.SetAttachmentStats(func() AttachmentStats { panic("boom") })
	if got := gaugeValue(t, m, "rds_csi_attachments"); !math.IsNaN(got) {
		t.Fatalf("a panicking callback reported %v, want NaN", got)
	}
	m.SetAttachmentStats(nil)
	for _, n := range names {
		if family(t, m, n) != nil {
			t.Fatalf("%s present after SetAttachmentStats(nil)", n)
		}
	}
}

func TestObserveRouterOSCommand(t *testing.T) {
	m := NewMetrics()
	m.ObserveRouterOSCommand("/disk add", "ok", 120*time.Millisecond)
	m.ObserveRouterOSCommand("/disk add", "ok", 80*time.Millisecond)
	m.ObserveRouterOSCommand("/disk remove", "not-found", 50*time.Millisecond)
	tests := []struct {
		verb, outcome string
		count         float64
		sum           float64
	}{
		{"/disk add", "ok", 2, 0.2},
		{"/disk remove", "not-found", 1, 0.05},
		{"/disk remove", "ok", 0, 0},
	}
	for _, tc := range tests {
		if got := testutil.ToFloat64(m.routerOSCommands.WithLabelValues(tc.verb, tc.outcome)); got != tc.count {
			t.Errorf("%s %s: count %v, want %v", tc.verb, tc.outcome, got, tc.count)
		}
	}
	mf := family(t, m, "rds_csi_routeros_command_duration_seconds")
	for _, metric := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range metric.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for _, tc := range tests {
			if labels["verb"] == tc.verb && labels["outcome"] == tc.outcome {
				if s := metric.GetHistogram().GetSampleSum(); math.Abs(s-tc.sum) > 1e-9 {
					t.Errorf("%s %s: duration sum %v, want %v", tc.verb, tc.outcome, s, tc.sum)
				}
			}
		}
	}
}
