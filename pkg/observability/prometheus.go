// Package observability holds the driver's Prometheus metrics.
//
// Every Metrics value has its own registry, so a controller and a node plugin in one process (or
// two tests) never collide on the global default registry. Metrics that describe state (active
// connections, attachments, migrations) are GaugeFuncs read from callbacks at scrape time, never
// counters bumped up and down: after a restart a derived value is right from the first scrape,
// while an inc/dec gauge would start from zero and lie. Nothing registered here runs an SSH
// command during a scrape; values that come from the RDS are cached by a background prober
// (rds_prober.go).
package observability

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// Namespace is the prefix of every metric name; dashboards of existing users depend on it.
const Namespace = "rds_csi"

// Metric names and help texts that other code and dashboards depend on.
const (
	NVMeConnectionsActiveName = "rds_csi_nvme_connections_active"
	NVMeConnectionsActiveHelp = "Number of active volumes with NVMe/TCP connections " +
		"(counts volumes, not per-node attachments during migration)"
)

// Buckets for operations that take from tens of milliseconds (a local RPC) to a minute (an NVMe
// connect that waits for the target, an RDS command on a busy box).
var operationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics is the driver's set of Prometheus metrics with its own registry.
type Metrics struct {
	registry *prometheus.Registry

	nvmeConnects        *prometheus.CounterVec
	nvmeConnectDuration prometheus.Histogram
	nvmeDisconnects     prometheus.Counter

	grpcRequests *prometheus.CounterVec
	grpcDuration *prometheus.HistogramVec

	routerOSCommands *prometheus.CounterVec
	routerOSDuration *prometheus.HistogramVec

	// mu guards the collectors registered on demand by the Set* methods, so that calling a setter
	// again replaces the callback instead of failing on a duplicate registration.
	mu                sync.Mutex
	connectionsActive prometheus.Collector
	attachmentStats   []prometheus.Collector
	rds               *rdsGauges
}

// NewMetrics creates the metrics with a fresh registry that also carries the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		nvmeConnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "nvme_connects_total",
			Help: "NVMe/TCP connect attempts made by the node plugin, by status (success or failure).",
		}, []string{"status"}),
		nvmeConnectDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "nvme_connect_duration_seconds",
			Help:    "Time taken by successful NVMe/TCP connects, until the block device was found.",
			Buckets: operationBuckets,
		}),
		nvmeDisconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "nvme_disconnects_total",
			Help: "NVMe/TCP disconnects made by the node plugin.",
		}),
		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grpc_requests_total",
			Help: "CSI gRPC requests handled, by method and gRPC status code.",
		}, []string{"method", "code"}),
		grpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "grpc_request_duration_seconds",
			Help:    "Time taken to handle CSI gRPC requests, by method and gRPC status code.",
			Buckets: operationBuckets,
		}, []string{"method", "code"}),
		routerOSCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "routeros_commands_total",
			Help: "RouterOS commands run on the RDS over SSH, by verb and outcome.",
		}, []string{"verb", "outcome"}),
		routerOSDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "routeros_command_duration_seconds",
			Help:    "Time taken by RouterOS commands on the RDS, including the SSH round trip, by verb and outcome.",
			Buckets: operationBuckets,
		}, []string{"verb", "outcome"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.nvmeConnects, m.nvmeConnectDuration, m.nvmeDisconnects,
		m.grpcRequests, m.grpcDuration,
		m.routerOSCommands, m.routerOSDuration,
	)
	// Both statuses exist from the start so that rate() and absent() queries behave before the
	// first failure.
	m.nvmeConnects.WithLabelValues("success")
	m.nvmeConnects.WithLabelValues("failure")
	return m
}

// Registry returns the registry the metrics are served from, for callers that add their own
// collectors and for tests that gather without HTTP.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus exposition format. A collector that fails (for
// example a callback that panicked) drops only its own metric from the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      promErrorLog{},
	})
}

// Serve serves Handler on /metrics on the listener until ctx ends, then shuts down gracefully.
// The caller makes the listener (for --metrics-address), so tests can listen on port 0.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(shutdownCtx)
		if serveErr := <-done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
			err = serveErr
		}
		return err
	}
}

// SetAttachmentManager registers rds_csi_nvme_connections_active, a GaugeFunc that calls
// countFunc on every scrape. It is the only way that metric is registered: on the node plugin,
// which never calls it, the metric is absent. Calling it again replaces the callback; nil
// unregisters the metric.
func (m *Metrics) SetAttachmentManager(countFunc func() int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.connectionsActive != nil {
		m.registry.Unregister(m.connectionsActive)
		m.connectionsActive = nil
	}
	if countFunc == nil {
		return
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: NVMeConnectionsActiveName,
		Help: NVMeConnectionsActiveHelp,
	}, safeCount(NVMeConnectionsActiveName, countFunc))
	m.registry.MustRegister(g)
	m.connectionsActive = g
}

// AttachmentStats is what the attachment manager reports at scrape time. It is defined here so
// that this package does not import pkg/attachment; the driver converts one into the other.
type AttachmentStats struct {
	// NodeAttachments counts (volume, node) pairs: a volume held by two nodes counts twice.
	NodeAttachments int
	// Migrations counts volumes held by two nodes at once.
	Migrations int
	// MigrationsOverWindow counts migrations that have lasted longer than the migration window.
	MigrationsOverWindow int
}

// SetAttachmentStats registers the attachment and migration gauges, read from statsFunc at scrape
// time. Like SetAttachmentManager it may be called again to replace the callback, or with nil to
// remove the gauges. statsFunc is called once per scrape for all three gauges.
func (m *Metrics) SetAttachmentStats(statsFunc func() AttachmentStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.attachmentStats {
		m.registry.Unregister(c)
	}
	m.attachmentStats = nil
	if statsFunc == nil {
		return
	}
	c := &attachmentStatsCollector{stats: statsFunc}
	m.registry.MustRegister(c)
	m.attachmentStats = append(m.attachmentStats, c)
}

var (
	attachmentsDesc = prometheus.NewDesc("rds_csi_attachments", "Volume attachments to nodes known to the controller; "+
		"a volume held by two nodes during a migration counts twice.", nil, nil)
	migrationsDesc = prometheus.NewDesc("rds_csi_migrations_in_progress",
		"Volumes held by two nodes at once (live migrations in progress).", nil, nil)
	migrationsOverWindowDesc = prometheus.NewDesc("rds_csi_migrations_over_window",
		"Migrations in progress for longer than the migration window; the driver warns but never detaches on its own.", nil, nil)
)

// attachmentStatsCollector reports the three attachment gauges from one call of the stats callback per
// scrape (the callback walks every tracked volume). A callback that panics reports NaN, like safeCount.
type attachmentStatsCollector struct {
	stats func() AttachmentStats
}

func (c *attachmentStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- attachmentsDesc
	ch <- migrationsDesc
	ch <- migrationsOverWindowDesc
}

func (c *attachmentStatsCollector) Collect(ch chan<- prometheus.Metric) {
	values := [3]float64{math.NaN(), math.NaN(), math.NaN()}
	func() {
		defer func() {
			if r := recover(); r != nil {
				klog.ErrorS(fmt.Errorf("%v", r), "Metric callback panicked; reporting NaN", "metric", "rds_csi_attachments")
			}
		}()
		s := c.stats()
		values = [3]float64{float64(s.NodeAttachments), float64(s.Migrations), float64(s.MigrationsOverWindow)}
	}()
	for i, d := range []*prometheus.Desc{attachmentsDesc, migrationsDesc, migrationsOverWindowDesc} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, values[i])
	}
}

// RecordNVMeConnect counts a connect attempt by outcome and, on success, observes its duration.
// It does not touch rds_csi_nvme_connections_active, which is derived from the attachment state.
func (m *Metrics) RecordNVMeConnect(err error, duration time.Duration) {
	if err != nil {
		m.nvmeConnects.WithLabelValues("failure").Inc()
		return
	}
	m.nvmeConnects.WithLabelValues("success").Inc()
	m.nvmeConnectDuration.Observe(duration.Seconds())
}

// RecordNVMeDisconnect counts a disconnect. It changes no gauge (see RecordNVMeConnect).
func (m *Metrics) RecordNVMeDisconnect() {
	m.nvmeDisconnects.Inc()
}

// ObserveRouterOSCommand counts and times one RouterOS command by its verb (for example
// "/disk add") and outcome (for example "ok", "not-found", "unavailable"). Its signature matches
// the rds client's Config.Observe hook so it can be passed directly.
func (m *Metrics) ObserveRouterOSCommand(verb, outcome string, d time.Duration) {
	m.routerOSCommands.WithLabelValues(verb, outcome).Inc()
	m.routerOSDuration.WithLabelValues(verb, outcome).Observe(d.Seconds())
}

// safeCount turns a count callback into a GaugeFunc body that cannot take the process down: a
// panic in the callback is logged and the scrape reports NaN (Prometheus' "no value") for it.
func safeCount(name string, f func() int) func() float64 {
	return func() (v float64) {
		defer func() {
			if r := recover(); r != nil {
				klog.ErrorS(fmt.Errorf("%v", r), "Metric callback panicked; reporting NaN", "metric", name)
				v = math.NaN()
			}
		}()
		return float64(f())
	}
}

// promErrorLog sends promhttp's errors to klog.
type promErrorLog struct{}

func (promErrorLog) Println(v ...interface{}) {
	klog.ErrorS(errors.New(fmt.Sprint(v...)), "Serving metrics")
}
