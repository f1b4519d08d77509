// Command rds-sim runs a simulated MikroTik ROSE Data Server: an SSH server
// speaking the RouterOS console subset rds-csi uses, backed by sparse files.
// See pkg/rdssim/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
	"k8s.io/klog/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// faultList collects repeated --fault flags.
type faultList []rdssim.Fault

func (f *faultList) String() string {
	parts := make([]string, len(*f))
	for i, x := range *f {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}

func (f *faultList) Set(spec string) error {
	x, err := rdssim.ParseFault(spec)
	if err != nil {
		return err
	}
	*f = append(*f, x)
	return nil
}

// sizeFlag is a byte count written as 100GiB, 512M or plain bytes.
type sizeFlag int64

func (s *sizeFlag) String() string { return fmt.Sprint(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := rdssim.ParseSize(v)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("the pool size must be positive")
	}
	*s = sizeFlag(n)
	return nil
}

// run is main without the process: it returns the exit code (2 for bad
// flags, 1 when the simulator cannot start, 0 after a clean stop when ctx
// ends).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rds-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg    rdssim.Config
		faults faultList
		size   sizeFlag
	)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:2222", "address to serve SSH on (port 0 picks a free one)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for keys, state and the pool's files (required)")
	fs.StringVar(&cfg.User, "user", "admin", "the user that may log in")
	fs.StringVar(&cfg.AuthorizedKeysFile, "authorized-keys", "", "authorized_keys file; default: generate DATA-DIR/client_key")
	fs.Var(&size, "pool-size", "pool capacity, e.g. 100GiB (default 100GiB, or the size stored in DATA-DIR)")
	fs.StringVar(&cfg.PoolName, "pool-name", "", "slot and mount-point of the pool disk (default pool)")
	fs.StringVar(&cfg.PoolFS, "pool-fs", "", "filesystem of the pool: btrfs or xfs (default btrfs)")
	fs.StringVar(&cfg.PoolLabel, "pool-label", "", "label of the pool's filesystem, what btrfs commands take as fs= (default POOL-NAME-fs)")
	subvolumeNames := fs.String("subvolume-name", "leaf", "how a subvolume's name prints and matches: leaf (as the manual implies) or path")
	subvolumeParent := fs.String("subvolume-parent", "leaf", "what subvolume add parent= takes: leaf (as in the manual) or path")
	addParents := fs.String("subvolume-add-parents", "create", "whether subvolume add name=a/b/c makes missing "+
		"parent directories: create, or refuse (the add fails; UNVERIFIED which the real box does)")
	onError := fs.String("on-error", "stop", "what a script does after a runtime error: stop, or continue with the next command "+
		"(a failing exec exiting 0 is --fault exit-zero)")
	allowHost := fs.String("allow-host-name", "list", "how nvme-tcp-server-allow-host-name restricts an export: list "+
		"(comma-separated host NQNs), single (the whole value is one host NQN), ignored (restricts nothing) or absent "+
		"(no such property; UNVERIFIED which the real box does)")
	scriptIf := fs.String("script-if", "yes", "whether scripts may use :if (...) do={...} (as the manual documents): yes, or no (a bad command name)")
	fs.StringVar(&cfg.System.Version, "routeros-version", rdssim.DefaultRouterOSVersion, "RouterOS version /system resource print shows")
	roseStorage := fs.String("rose-storage", "installed", "the rose-storage package: installed, disabled, available or missing")
	fs.DurationVar(&cfg.Latency, "latency", 0, "delay charged once per exec: the network round trip, e.g. 30ms")
	fs.DurationVar(&cfg.CommandLatency, "command-latency", 0, "delay charged before each command a script runs: RouterOS's own work")
	fs.Var(&faults, "fault", "inject a fault: KIND[=VALUE][@MATCH][#N] (repeatable; see pkg/rdssim/README.md)")
	fs.IntVar(&cfg.Width, "width", 80, "column at which print detail wraps")
	nvmeAddr := fs.String("nvme-address", "127.0.0.1", "address the kernel NVMe/TCP target listens on when "+
		rdssim.DefaultNVMetRoot+" exists (disks with nvme-tcp-export=yes are then really exported)")
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.Var(klogFlags.Lookup("v").Value, "v", "log verbosity of diagnostics on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: rds-sim --data-dir DIR [flags]\n\nA simulated MikroTik ROSE Data Server over SSH.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rds-sim: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.DataDir == "" {
		fmt.Fprintln(stderr, "rds-sim: --data-dir is required")
		return 2
	}
	cfg.PoolSize, cfg.Faults, cfg.Log = int64(size), faults, stdout
	var err error
	if cfg.SubvolumeNames, err = rdssim.ParseNameForm(*subvolumeNames); err == nil {
		if cfg.SubvolumeParent, err = rdssim.ParseNameForm(*subvolumeParent); err == nil {
			if cfg.OnError, err = rdssim.ParseOnError(*onError); err == nil {
				cfg.SubvolumeAddParents, err = rdssim.ParseParents(*addParents)
			}
		}
	}
	if err == nil {
		cfg.System.RoseStorage, err = rdssim.ParsePackageState(*roseStorage)
	}
	if err == nil {
		cfg.AllowHostName, err = rdssim.ParseAllowHostForm(*allowHost)
	}
	if err == nil {
		cfg.ScriptIf, err = rdssim.ParseScriptIf(*scriptIf)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rds-sim: %v\n", err)
		return 2
	}
	if rdssim.NVMetAvailable("") {
		cfg.Exporter = rdssim.NewNVMet("", *nvmeAddr)
	}

	sim, err := rdssim.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rds-sim: %v\n", err)
		return 1
	}
	if err := sim.Start(); err != nil {
		fmt.Fprintf(stderr, "rds-sim: %v\n", err)
		return 1
	}
	key := sim.ClientKeyFile()
	if key == "" {
		key = "(from " + cfg.AuthorizedKeysFile + ")"
	}
	fmt.Fprintf(stdout, "rds-sim: listening on %s data-dir=%s user=%s client-key=%s known-hosts=%s\n",
		sim.Addr(), cfg.DataDir, cfg.User, key, sim.KnownHostsFile())
	if cfg.Exporter != nil { // after the first line, which tools read for the address and keys
		fmt.Fprintf(stdout, "rds-sim: exporting disks through the kernel NVMe target on %s\n", *nvmeAddr)
	}
	<-ctx.Done()
	done := make(chan error, 1)
	go func() { done <- sim.Close() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		err = errors.New("timed out waiting for sessions to end")
	}
	if err != nil {
		fmt.Fprintf(stderr, "rds-sim: stopping: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "rds-sim: stopped")
	return 0
}
