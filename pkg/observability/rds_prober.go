package observability

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// PoolStatus is what one RDS probe learned about the storage pool. Zero TotalBytes means the
// probe did not read the pool, and the capacity gauges keep their last value.
type PoolStatus struct {
	TotalBytes int64
	FreeBytes  int64
}

// RDSProbe checks that the RDS answers (one cheap SSH command) and may read the pool's capacity
// on the way. It must honour ctx's deadline.
type RDSProbe func(ctx context.Context) (PoolStatus, error)

// rdsGauges are plain gauges written only by the prober goroutine; a scrape reads the cached
// values and never reaches the RDS.
type rdsGauges struct {
	reachable     prometheus.Gauge
	lastProbe     prometheus.Gauge
	probeDuration prometheus.Histogram
	poolTotal     prometheus.Gauge
	poolFree      prometheus.Gauge
	// poolRegistered is guarded by Metrics.mu.
	poolRegistered bool
}

func newRDSGauges() *rdsGauges {
	return &rdsGauges{
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "rds_reachable",
			Help: "1 if the last background probe of the RDS over SSH succeeded, 0 if it failed.",
		}),
		lastProbe: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "rds_last_probe_timestamp_seconds",
			Help: "Unix time of the last finished RDS probe, to tell a stale value from a fresh one.",
		}),
		probeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "rds_probe_duration_seconds",
			Help:    "Time taken by background RDS probes, successful or not.",
			Buckets: operationBuckets,
		}),
		poolTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "rds_pool_size_bytes",
			Help: "Size of the RDS storage pool, as of the last probe that read it.",
		}),
		poolFree: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "rds_pool_free_bytes",
			Help: "Free space in the RDS storage pool, as of the last probe that read it.",
		}),
	}
}

// RunRDSProber probes the RDS now and then every interval until ctx ends, each probe bounded by
// timeout, and keeps the reachability and pool gauges. The gauges appear in scrapes only once a
// prober runs (the node plugin, which never talks to the RDS, has none). It blocks; run it in a
// goroutine. Running two probers on one Metrics is allowed but pointless.
func (m *Metrics) RunRDSProber(ctx context.Context, interval, timeout time.Duration, probe RDSProbe) {
	g := m.rdsGauges()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		m.probeRDSOnce(ctx, g, timeout, probe)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if ctx.Err() != nil {
				return // both were ready and select picked the tick
			}
		}
	}
}

// rdsGauges registers the RDS gauges on first use.
func (m *Metrics) rdsGauges() *rdsGauges {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rds == nil {
		m.rds = newRDSGauges()
		m.registry.MustRegister(m.rds.reachable, m.rds.lastProbe, m.rds.probeDuration)
	}
	return m.rds
}

func (m *Metrics) probeRDSOnce(ctx context.Context, g *rdsGauges, timeout time.Duration, probe RDSProbe) {
	probeCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	pool, err := probe(probeCtx)
	g.probeDuration.Observe(time.Since(start).Seconds())
	g.lastProbe.SetToCurrentTime()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the failure says nothing about the RDS
		}
		g.reachable.Set(0)
		klog.V(2).InfoS("RDS probe failed", "err", err)
		return
	}
	g.reachable.Set(1)
	if pool.TotalBytes > 0 {
		m.setPool(g, pool)
	}
}

// setPool registers the pool gauges the first time a probe reads the pool, so that a probe that
// only checks reachability does not publish a misleading zero capacity.
func (m *Metrics) setPool(g *rdsGauges, pool PoolStatus) {
	m.mu.Lock()
	if !g.poolRegistered {
		m.registry.MustRegister(g.poolTotal, g.poolFree)
		g.poolRegistered = true
	}
	m.mu.Unlock()
	g.poolTotal.Set(float64(pool.TotalBytes))
	g.poolFree.Set(float64(pool.FreeBytes))
}
