// Command bench measures a CSI driver over its gRPC socket: the latency of each controller operation
// (median and p99), the throughput of many creates and deletes in flight at once, and, when it can read
// the RDS simulator's log, how many SSH execs (round trips) and RouterOS commands each operation cost.
//
// By default it starts an rds-sim process with --latency and the rds-csi driver (controller mode) against
// it, and stops both at the end. `make bench` runs it that way. To measure any other driver, start the
// driver yourself and pass its socket:
//
//	go run ./hack/bench --endpoint unix:///tmp/other.sock --node-id NODE [--sim-log rds-sim.log] [--param k=v]
//
// --sim-log names a file the simulator's standard output goes to (rds-sim ... > rds-sim.log): the bench
// reads the lines appended while it runs to count execs per operation; without it those columns are "-".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	endpoint       string
	driverBin      string
	simBin         string
	simLog         string
	nodeID         string
	params         paramList
	driverArgs     string
	simArgs        string
	latency        time.Duration
	commandLatency time.Duration
	roundTrip      time.Duration
	sequential     int
	volumes        int
	concurrency    int
	listRuns       int
	dir            string
	timeout        time.Duration
}

type paramList map[string]string

func (p paramList) String() string { return fmt.Sprint(map[string]string(p)) }

func (p paramList) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("parameter %q: want KEY=VALUE", v)
	}
	p[k] = val
	return nil
}

func main() {
	o := options{params: paramList{}}
	flag.StringVar(&o.endpoint, "endpoint", "", "CSI socket of a driver that is already running (unix:///path); empty: start --driver and --sim")
	flag.StringVar(&o.driverBin, "driver", "bin/rds-csi", "rds-csi binary to start (without --endpoint)")
	flag.StringVar(&o.simBin, "sim", "bin/rds-sim", "rds-sim binary to start (without --endpoint)")
	flag.StringVar(&o.simLog, "sim-log", "", "with --endpoint: file the simulator's stdout is written to, to count execs per operation")
	flag.StringVar(&o.nodeID, "node-id", "bench-node", "node to publish to")
	flag.Var(o.params, "param", "StorageClass parameter KEY=VALUE for CreateVolume (repeatable)")
	flag.StringVar(&o.driverArgs, "driver-args", "", "extra flags for the started driver, space separated")
	flag.StringVar(&o.simArgs, "sim-args", "", "extra flags for the started rds-sim, space separated (e.g. a dialect: --pool-label pool)")
	flag.DurationVar(&o.latency, "latency", 30*time.Millisecond, "rds-sim --latency: one round trip per exec")
	flag.DurationVar(&o.commandLatency, "command-latency", 0, "rds-sim --command-latency (passed only when not zero)")
	flag.DurationVar(&o.roundTrip, "round-trip", 0, "one round trip, for the ratio column (default: --latency)")
	flag.IntVar(&o.sequential, "n", 20, "sequential samples per operation")
	flag.IntVar(&o.volumes, "volumes", 1000, "volumes created and deleted concurrently and listed (0: skip)")
	flag.IntVar(&o.concurrency, "concurrency", 200, "operations in flight in the concurrent phases")
	flag.IntVar(&o.listRuns, "list-runs", 5, "ListVolumes runs over the created volumes")
	flag.StringVar(&o.dir, "dir", "", "working directory (default: a temporary one, removed at the end)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "deadline of each RPC")
	flag.Parse()
	if o.roundTrip == 0 {
		o.roundTrip = o.latency
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.dir == "" {
		tmp, err := os.MkdirTemp("", "rds-csi-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.dir = tmp
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var counter *execCounter
	endpoint := o.endpoint
	if endpoint == "" {
		st, err := startStack(o)
		if err != nil {
			return err
		}
		defer st.stop()
		endpoint, counter = st.endpoint, st.counter
	} else if o.simLog != "" {
		c, err := tailLog(ctx, o.simLog)
		if err != nil {
			return err
		}
		counter = c
	}
	b, err := newBench(endpoint, o, counter)
	if err != nil {
		return err
	}
	defer b.close()
	fmt.Printf("bench: endpoint=%s latency=%s command-latency=%s n=%d volumes=%d concurrency=%d\n",
		endpoint, o.latency, o.commandLatency, o.sequential, o.volumes, o.concurrency)
	return b.runAll(ctx, filepath.Base(o.driverBin))
}
