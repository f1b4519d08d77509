package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rds-csi/rds-csi/pkg/observability"
)

// driverMetricNames returns the names of every rds_csi_ metric the driver can export: a real Metrics
// with every recorder called once and the RDS prober run once, plus the controller's leader gauge
// (registered by the driver itself).
func driverMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := observability.NewMetrics()
	m.RecordNVMeConnect(nil, time.Second)
	m.RecordNVMeDisconnect()
	m.ObserveRouterOSCommand("/disk add", "ok", time.Millisecond)
	m.ObserveGRPC("/csi.v1.Controller/CreateVolume", "OK", time.Millisecond)
	m.SetAttachmentManager(func() int { return 1 })
	m.SetAttachmentStats(func() observability.AttachmentStats { return observability.AttachmentStats{} })
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.RunRDSProber(ctx, time.Hour, time.Second, func(context.Context) (observability.PoolStatus, error) {
			select {
			case probed <- struct{}{}:
			default:
			}
			return observability.PoolStatus{TotalBytes: 1 << 40, FreeBytes: 1 << 39}, nil
		})
	}()
	<-probed
	names := map[string]bool{observability.ControllerLeaderName: true}
	deadline := time.Now().Add(10 * time.Second)
	for !names["rds_csi_rds_pool_free_bytes"] && time.Now().Before(deadline) {
		families, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if strings.HasPrefix(f.GetName(), "rds_csi_") {
				names[f.GetName()] = true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	return names
}

var metricInExpr = regexp.MustCompile(`\brds_csi_[a-z_]+`)

// TestGrafanaDashboardShowsTheDriversMetrics checks the shipped dashboard both ways: every metric a
// panel queries exists in the driver (a renamed metric would leave an empty panel), and every metric
// the driver exports has a panel.
func TestGrafanaDashboardShowsTheDriversMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(t), "files", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard has no uid or title; Grafana would make a new copy on every import")
	}
	exported := driverMetricNames(t)
	shown := map[string]bool{}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			for _, name := range metricInExpr.FindAllString(target.Expr, -1) {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if trimmed := strings.TrimSuffix(name, suffix); trimmed != name && exported[trimmed] {
						base = trimmed
					}
				}
				if !exported[base] {
					t.Errorf("panel %q queries %s, which the driver does not export", p.Title, name)
				}
				shown[base] = true
			}
		}
	}
	var missing []string
	for name := range exported {
		if !shown[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics with no panel: %v", missing)
	}
	if len(exported) < 15 {
		t.Errorf("only %d driver metrics found: %v", len(exported), exported)
	}
}

// TestGrafanaDashboardConfigMapCarriesTheFile checks that the optional ConfigMap ships the dashboard
// unchanged and with the label Grafana's sidecar looks for.
func TestGrafanaDashboardConfigMapCarriesTheFile(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(chartDir(t), "files", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range decodeObjects(t, render(t, "capacity-monitoring-values.yaml", renderOptions{})) {
		if o.GetKind() != "ConfigMap" || !strings.HasSuffix(o.GetName(), "-grafana-dashboard") {
			continue
		}
		if o.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("labels %v: want grafana_dashboard=1", o.GetLabels())
		}
		data, _, _ := unstructured.NestedString(o.Object, "data", "rds-csi.json")
		if strings.TrimSpace(data) != strings.TrimSpace(string(want)) {
			t.Error("the ConfigMap's rds-csi.json differs from files/grafana-dashboard.json")
		}
		return
	}
	t.Fatal("no Grafana dashboard ConfigMap rendered with grafanaDashboard.enabled")
}
