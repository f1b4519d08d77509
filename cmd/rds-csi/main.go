// Command rds-csi is the CSI driver for MikroTik ROSE Data Server storage. It only parses flags;
// internal/app wires the program together and pkg/driver serves CSI. `rds-csi doctor` checks an RDS
// instead (package doctor); `rds-csi orphans` and `rds-csi import` compare the RDS with the cluster and
// import an existing disk (package inventory).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/app"
	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/doctor"
	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/inventory"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/rdsflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "doctor" {
		os.Exit(doctor.Main(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "orphans" {
		os.Exit(inventory.OrphansMain(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "import" {
		os.Exit(inventory.ImportMain(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	var cfg app.Config
	var conn rdsflag.Values
	mode := flag.String("mode", "all", "services to run: controller, node or all")
	flag.StringVar(&cfg.Endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix socket)")
	flag.StringVar(&cfg.NodeID, "node-id", "", "this node's name (required for node and all modes)")
	flag.StringVar(&cfg.HostNQNFile, "host-nqn-file", app.DefaultHostNQNFile, "the node's NVMe host NQN file; the node "+
		"plugin reports it with its node id, so that volumes with hostAccessControl can be allowed to this node only")
	flag.StringVar(&cfg.DriverName, "driver-name", driver.DefaultDriverName, "CSI driver name")
	rdsflag.Register(flag.CommandLine, &conn) // the RDS flags, shared with `rds-csi doctor`
	flag.StringVar(&cfg.RDSSimulatorDir, "rds-simulator", "", "start an embedded RDS simulator keeping its state in DIR and use it")
	flag.StringVar(&cfg.RDSBoxesConfig, "rds-boxes-config", "", "YAML or JSON file naming more RDS boxes (name, address, user, keyFile, hostKeyFile, basePath, nvmeAddress); the --rds-* flags define the default box, and a StorageClass picks one with rdsBox")
	flag.StringVar(&cfg.MetricsAddress, "metrics-address", "", "serve Prometheus metrics on this address, e.g. :9809 (empty: off)")
	flag.StringVar(&cfg.NVMeAddress, "nvme-address", "", "NVMe/TCP data-plane address of the RDS (default: the host of --rds-address)")
	flag.IntVar(&cfg.NVMePort, "nvme-port", nvme.DefaultPort, "default NVMe/TCP port")
	flag.StringVar(&cfg.NVMeInitiator, "nvme-initiator", "", "node data path: nvme-cli (kernel NVMe/TCP) or loop (simulator files as loop devices); default loop with --rds-simulator, else nvme-cli")
	flag.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig file of the controller's Kubernetes client (default: in-cluster when in a pod; neither: attachments in memory)")
	flag.BoolVar(&cfg.LeaderElection, "leader-election", true, "with a Kubernetes client, run the controller's background loops only on the replica holding a Lease")
	flag.StringVar(&cfg.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: the pod's namespace from POD_NAMESPACE or the service account, else default)")
	flag.DurationVar(&cfg.LeaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a standby waits before taking over a Lease that is not renewed")
	flag.DurationVar(&cfg.RenewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps retrying to renew before giving the loops up")
	flag.DurationVar(&cfg.RetryPeriod, "leader-election-retry-period", 2*time.Second, "interval between attempts to acquire or renew the Lease")
	flag.DurationVar(&cfg.MigrationWindow, "migration-window", attachment.DefaultMigrationWindow, "how long two nodes may hold a block volume (live migration) before the controller warns; it never detaches")
	klog.InitFlags(nil)
	flag.Parse()
	cfg.RDSAddress, cfg.RDSUser, cfg.RDSKeyFile, cfg.RDSHostKeyFile = conn.Address, conn.User, conn.KeyFile, conn.HostKeyFile
	cfg.RDSInsecureHostKey, cfg.RDSOneCommandPerExec, cfg.RDSCommandTimeout = conn.InsecureHostKey, conn.OneCommandPerExec, conn.CommandTimeout
	cfg.RDSMaxSessions, cfg.BasePath = conn.MaxSessions, conn.BasePath

	m, err := driver.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rds-csi:", err)
		os.Exit(2)
	}
	cfg.Mode, cfg.Version = m, version
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg); err != nil {
		klog.ErrorS(err, "rds-csi stopped")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
