package observability

import "github.com/prometheus/client_golang/prometheus"

// ControllerLeaderName is 1 on the controller replica running the background loops, 0 on standbys.
const ControllerLeaderName = "rds_csi_controller_leader"

// ControllerLeaderHelp is its help text.
const ControllerLeaderHelp = "1 while this controller replica runs the background loops (it holds the leader Lease, or " +
	"leader election is off), 0 on a standby."

// SetLeader registers rds_csi_controller_leader, read from leading at scrape time. Only the controller
// calls it: on the node plugin the metric is absent.
func (m *Metrics) SetLeader(leading func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: ControllerLeaderName,
		Help: ControllerLeaderHelp,
	}, func() float64 {
		if leading() {
			return 1
		}
		return 0
	}))
}
