// Package app is the rds-csi program: it turns the command line (Config) into a running process. It builds
// the outside dependencies the CSI handlers of pkg/driver take as interfaces (the RouterOS client, the
// attachment manager on Kubernetes' informers, leader election, the node's NVMe initiator and mounter, the
// metrics server, and the embedded RDS simulator a new user tries first), hands them to driver.New and
// serves until the context ends. cmd/rds-csi only parses flags and calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/doctor"
	"github.com/rds-csi/rds-csi/pkg/driver"
	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nodeid"
	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/observability"
	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Config is everything a process needs, as given on the command line.
type Config struct {
	Mode     driver.Mode
	Endpoint string
	NodeID   string
	// HostNQNFile is the node's NVMe host NQN file (/etc/nvme/hostnqn, which nvme-cli connects with); the
	// node plugin reports its content in its node id (pkg/nodeid). Empty: the default path.
	HostNQNFile string
	DriverName  string
	Version     string

	RDSAddress           string // host[:port]
	RDSUser              string
	RDSKeyFile           string
	RDSHostKeyFile       string
	RDSInsecureHostKey   bool   // tests only: accept any host key
	RDSSimulatorDir      string // start an embedded simulator here and use it
	RDSOneCommandPerExec bool
	RDSMaxSessions       int // exec sessions open at once (rds.Config.MaxSessions); 0: the default
	RDSCommandTimeout    time.Duration

	BasePath    string
	NVMeAddress string
	// RDSBoxesConfig is a file naming more RDS boxes (BoxesFile); the flags above define the default box.
	RDSBoxesConfig string
	NVMePort       int

	MetricsAddress string // serve Prometheus metrics on this address ("" = off)

	// Kubeconfig is a kubeconfig file for the controller's Kubernetes client. Empty: the in-cluster
	// configuration when the process runs in a pod, else no Kubernetes (attachments kept in memory).
	Kubeconfig string
	// LeaderElection runs the controller's background loops only on the replica holding the Lease, so
	// that several replicas can run; it matters only with a Kubernetes client (the flag defaults to true).
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease; empty means the pod's namespace, else "default".
	LeaderElectionNamespace string
	// Leader election timings; client-go's 15s, 10s and 2s when zero.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// MigrationWindow is how long two nodes may hold a block volume before the controller warns;
	// attachment.DefaultMigrationWindow (5 minutes) when zero.
	MigrationWindow time.Duration

	// NVMeInitiator is "nvme-cli" (the kernel NVMe/TCP initiator) or "loop" (the simulator's backing files
	// as loop devices); empty picks loop with --rds-simulator and nvme-cli otherwise.
	NVMeInitiator string
}

// Run starts the configured services and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.DriverName == "" {
		cfg.DriverName = driver.DefaultDriverName
	}
	loc, err := volume.ParseLocation(cfg.BasePath)
	if err != nil {
		return fmt.Errorf("--base-path: %w", err)
	}
	opts := driver.Options{Mode: cfg.Mode, DriverName: cfg.DriverName, Version: cfg.Version, NodeID: cfg.NodeID,
		DefaultLocation: loc, NVMeAddress: cfg.NVMeAddress, NVMePort: cfg.NVMePort}
	var boxes *BoxesFile
	if cfg.RDSBoxesConfig != "" && cfg.Mode.RunsController() { // the node needs no boxes: volume contexts carry the address
		if boxes, err = LoadBoxes(cfg.RDSBoxesConfig); err != nil {
			return err
		}
		opts.DefaultBoxName = boxes.DefaultBox
	}
	metrics := observability.NewMetrics()
	deps := driver.Deps{Interceptors: []grpc.UnaryServerInterceptor{metrics.UnaryServerInterceptor()}}

	var sim *rdssim.Simulator
	if cfg.RDSSimulatorDir != "" {
		sim, err = startSimulator(cfg.RDSSimulatorDir, loc.Pool)
		if err != nil {
			return err
		}
		defer sim.Close()
		cfg.RDSAddress, cfg.RDSUser = sim.Addr(), "admin"
		cfg.RDSKeyFile, cfg.RDSHostKeyFile = sim.ClientKeyFile(), sim.KnownHostsFile()
		if opts.NVMeAddress == "" {
			opts.NVMeAddress = "127.0.0.1"
		}
	}

	var volumes *volume.Manager
	if cfg.Mode.RunsController() || sim != nil {
		client, err := newRDSClient(cfg, metrics)
		if err != nil {
			return err
		}
		defer client.Close()
		// The read-only doctor checks: a missing capability stops the driver here, naming the check; an
		// RDS whose scripts do not stop at a failing command gets one command per exec.
		adapt, err := doctor.StartupCheck(ctx, client, loc)
		if err != nil {
			return err
		}
		if opts.NVMeAddress == "" {
			opts.NVMeAddress = hostOf(cfg.RDSAddress) // data plane on the management address unless told
		}
		volumes = adaptedManager(client, adapt)
		if cfg.Mode.RunsController() {
			deps.Volumes, deps.Prober = volumes, client
			if boxes != nil {
				more, closeBoxes, err := openBoxes(ctx, cfg, boxes, metrics)
				if err != nil {
					return err
				}
				defer closeBoxes()
				deps.Boxes = more
			}
			attachments := driver.NewAttachments(attachment.Options{MigrationWindow: cfg.MigrationWindow}, metrics)
			deps.Attachments = attachments
			// Before serving: the first publish must see every attachment Kubernetes knows.
			bg, err := startControllerBackground(ctx, cfg, attachments, metrics)
			if err != nil {
				return err
			}
			defer bg.stop()
			deps.Nodes = bg.nodes
			go metrics.RunRDSProber(ctx, 30*time.Second, 5*time.Second, poolProbe(volumes, loc.Pool))
		}
	}

	if cfg.Mode.RunsNode() {
		opts.HostNQN = readHostNQN(cfg.HostNQNFile)
		initiator, err := newInitiator(cfg, sim, volumes, loc)
		if err != nil {
			return err
		}
		deps.Node, err = node.New(initiator, mount.NewLinux(mount.Options{}), node.Options{NodeID: cfg.NodeID, Metrics: metrics})
		if err != nil {
			return err
		}
	}

	d, err := driver.New(opts, deps)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	if cfg.MetricsAddress != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			return fmt.Errorf("--metrics-address: %w", err)
		}
		klog.InfoS("serving metrics", "address", ln.Addr().String())
		go func() { errc <- metrics.Serve(ctx, ln) }()
	}
	go func() { errc <- d.Serve(cfg.Endpoint) }()
	select {
	case <-ctx.Done():
		d.Stop()
		return nil
	case err := <-errc:
		return err
	}
}

// DefaultHostNQNFile is where nvme-cli keeps the host NQN it connects with.
const DefaultHostNQNFile = "/etc/nvme/hostnqn"

// readHostNQN reads the node's host NQN for its node id; without one the node reports its bare name and
// volumes with hostAccessControl cannot be published to it (logged, not fatal: other volumes work).
func readHostNQN(path string) string {
	if path == "" {
		path = DefaultHostNQNFile
	}
	nqn, err := nodeid.ReadHostNQN(path)
	if err != nil {
		klog.InfoS("no usable host NQN: the node id is the bare node name", "file", path, "err", err)
		return ""
	}
	return nqn
}

// newInitiator picks the node's data path. The loop initiator attaches files on this machine, so it runs only
// against the embedded simulator, whose files it can find; it is refused for a real RDS.
func newInitiator(cfg Config, sim *rdssim.Simulator, volumes *volume.Manager, loc volume.Location) (nvme.Initiator, error) {
	kind := cfg.NVMeInitiator
	if kind == "" {
		kind = "nvme-cli"
		if sim != nil {
			kind = "loop"
		}
	}
	switch kind {
	case "nvme-cli":
		return nvme.NewCLI(nvme.CLIOptions{}), nil
	case "loop":
		if sim == nil {
			return nil, errors.New("--nvme-initiator=loop works only with --rds-simulator: it attaches the simulator's files as loop devices")
		}
		return nvme.NewLoop(simulatorFiles(sim, volumes, loc), nvme.LoopOptions{}), nil
	}
	return nil, fmt.Errorf("--nvme-initiator %q is not nvme-cli or loop", kind)
}

// simulatorFiles resolves an NQN to the simulator's backing file of that volume: the disk's own file-path
// while the disk exists, else where this driver would have put it (a volume deleted while attached must
// still be detachable).
func simulatorFiles(sim *rdssim.Simulator, volumes *volume.Manager, loc volume.Location) nvme.BackingFileResolver {
	return func(ctx context.Context, nqn string) (string, error) {
		id, ok := strings.CutPrefix(nqn, nvme.NQNPrefix)
		if !ok || rds.ValidName(id) != nil {
			return "", fmt.Errorf("NQN %q is not one of this driver's", nqn)
		}
		v, err := volumes.Get(ctx, id)
		switch {
		case err == nil:
			return sim.HostPath(v.FilePath)
		case errors.Is(err, volume.ErrNotFound):
			return sim.HostPath(loc.FilePath(id, volume.LayoutSubvolume))
		}
		return "", err
	}
}

func startSimulator(dir, pool string) (*rdssim.Simulator, error) {
	// The simulator's command log goes to standard output, as rds-sim's does: one line per command.
	cfg := rdssim.Config{Listen: "127.0.0.1:0", DataDir: dir, PoolName: pool, Log: os.Stdout}
	if rdssim.NVMetAvailable("") {
		// Where the kernel NVMe target exists, exported disks are real NVMe/TCP subsystems on loopback, so
		// --nvme-initiator=nvme-cli works against the embedded simulator too.
		cfg.Exporter = rdssim.NewNVMet("", "127.0.0.1")
	}
	sim, err := rdssim.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded RDS simulator in %s: %w", dir, err)
	}
	if err := sim.Start(); err != nil {
		return nil, fmt.Errorf("embedded RDS simulator: %w", err)
	}
	klog.InfoS("embedded RDS simulator running", "address", sim.Addr(), "dataDir", dir)
	return sim, nil
}

// newRDSClient builds the RouterOS client. A missing or unreadable host key is an error: the driver never
// falls back to trusting whatever answers.
func newRDSClient(cfg Config, metrics *observability.Metrics) (*rds.Client, error) {
	if cfg.RDSAddress == "" {
		return nil, errors.New("--rds-address is required (or --rds-simulator DIR to try the driver without an RDS)")
	}
	addr := cfg.RDSAddress
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	signer, err := rds.LoadPrivateKey(cfg.RDSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--rds-key-file: %w", err)
	}
	var hostKey ssh.HostKeyCallback
	switch {
	case cfg.RDSInsecureHostKey:
		klog.Warning("--rds-insecure-skip-host-key-check: the RDS host key is NOT verified; use only in tests")
		hostKey = ssh.InsecureIgnoreHostKey() //nolint:gosec // explicitly requested, for tests only
	case cfg.RDSHostKeyFile == "":
		return nil, errors.New("--rds-host-key is required: the RDS's SSH host key (a known_hosts line or public key); " +
			"get it with `ssh-keyscan <rds>` and check its fingerprint on the RDS console")
	default:
		hostKey, err = rds.LoadHostKey(cfg.RDSHostKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--rds-host-key: %w", err)
		}
	}
	rc := rds.Config{Address: addr, User: cfg.RDSUser, Signer: signer, HostKeyCallback: hostKey,
		CommandTimeout: cfg.RDSCommandTimeout, OneCommandPerExec: cfg.RDSOneCommandPerExec,
		MaxSessions: cfg.RDSMaxSessions}
	if metrics != nil {
		rc.Observe = metrics.ObserveRouterOSCommand
	}
	return rds.New(rc)
}

// poolProbe is the background RDS check behind the reachability and pool gauges: one exec reads the pool,
// which proves the RDS answers. Scrapes only read what it cached.
func poolProbe(volumes *volume.Manager, pool string) observability.RDSProbe {
	return func(ctx context.Context) (observability.PoolStatus, error) {
		size, free, err := volumes.PoolSpace(ctx, pool)
		return observability.PoolStatus{TotalBytes: size, FreeBytes: free}, err
	}
}

func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// adaptedManager is the volume manager of one RDS, adapted to what its start-up check found: one command per
// exec where scripts go on after a failed command; guarded creates, snapshots and restores only where the
// check showed that scripts stop at a failure and `:if` runs (an RDS that could not be asked gets neither).
func adaptedManager(client *rds.Client, adapt doctor.Adaptation) *volume.Manager {
	if adapt.OneCommandPerExec {
		client.SendOneCommandPerExec()
	}
	m := volume.NewManager(client)
	m.SetGuards(adapt.Checked && adapt.Guards && !adapt.OneCommandPerExec) // pkg/volume create_guard.go
	m.SetHostAccess(!adapt.HostAccessRefused)                              // pkg/volume hostaccess.go
	return m
}
