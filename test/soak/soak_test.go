package soak

import (
	"context"
	"flag"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/test/procenv"
)

var (
	flagOps       = flag.Int("soak.ops", 30, "operations to run; `make soak` runs thousands")
	flagDuration  = flag.Duration("soak.duration", 2*time.Minute, "stop starting operations after this long")
	flagSeed      = flag.Int64("soak.seed", 0, "random seed (0: from the clock); a failure prints the seed to rerun it")
	flagKillRate  = flag.Float64("soak.kill-rate", 0.15, "share of operations during which the controller is SIGKILLed")
	flagBasePaths = flag.String("soak.base-paths", strings.Join(allBasePaths, ","),
		"comma-separated base paths to spread volumes over (\"\" is the controller's default)")
)

func TestMain(m *testing.M) {
	code := m.Run()
	procenv.RemoveBuilt()
	os.Exit(code)
}

// allBasePaths are the base paths a StorageClass may name: the controller's default, spelled out or left out
// (""), and others, nested too.
var allBasePaths = []string{"", "pool/k8s", "pool/team-a", "pool/deep/er"}

// faultMenu is what the rds-sim is restarted with between epochs (pkg/rdssim/fault.go grammar). Each fires
// once or twice and then the simulator behaves again, as a flaky network or a busy RDS would.
var faultMenu = []string{
	"drop-after=/disk add#1", "drop-before=/disk add#1", "hang=/disk add#1", "disk-full@/disk add#1",
	"drop-after=/disk remove#1", "drop-before=/disk remove#1",
	"drop-after=/file remove#1", "drop-before=/file remove#1",
	"drop-after=subvolume/add#1", "drop-before=subvolume/add#1", "drop-after=subvolume/remove#1",
	"drop-after=/disk set#1", "hang=/disk set#1", "exit-zero#2", "latency=300ms@/disk print#2",
	"drop-after=/disk print#1",
}

type world struct {
	t         *testing.T
	rng       *rand.Rand
	dir       string
	simDir    string
	sock      string
	simBin    string
	csiBin    string
	sim       *proc
	simAddr   string
	ctrl      *proc
	conn      *grpc.ClientConn
	cc        csi.ControllerClient
	m         *model
	basePaths []string
	stats     stats
	faultLog  []string
}

type stats struct {
	ops, retries, kills, simRestarts, faultsArmed, faultsFired int
	refused                                                    int // hostile requests refused as they must be
	failed                                                     map[codes.Code]int
}

// TestSoak drives create / snapshot / restore / expand / delete over random names and base paths while the
// controller process is SIGKILLed mid-operation and the simulator is restarted with injected faults, then
// asserts that the RDS holds exactly the volumes and snapshots whose creation was acknowledged and that
// were not deleted: no orphan disk, file or subvolume, and the user's own data untouched. Operations that
// failed are retried until they succeed, as the CSI sidecars would; the final check runs once every one
// of them has.
func TestSoak(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("seed %d (rerun with -soak.seed=%d)", seed, seed)
	// Not t.TempDir: a failed soak keeps its logs and the simulator's data directory for a look.
	dir, err := os.MkdirTemp("", "rds-csi-soak-")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, rng: rand.New(rand.NewSource(seed)), dir: dir, simDir: filepath.Join(dir, "rds"),
		sock: filepath.Join(dir, "csi.sock"), csiBin: procenv.DriverBinary(t), simBin: buildSim(t),
		m: newModel(), stats: stats{failed: map[codes.Code]int{}}, basePaths: strings.Split(*flagBasePaths, ",")}
	t.Cleanup(func() {
		if w.ctrl != nil && w.ctrl.running() {
			w.stopController(false)
		}
		if w.sim != nil && w.sim.running() {
			w.sim.stop(t)
		}
		if t.Failed() {
			t.Logf("kept: logs %s/rds-csi.log and %s/rds-sim.log, the RDS in %s/rds; rerun with -soak.seed=%d",
				dir, dir, dir, seed)
			return
		}
		os.RemoveAll(dir)
	})
	w.startSim(nil)
	user := seedUserData(t, w)
	w.startController()

	deadline := time.Now().Add(*flagDuration)
	for w.stats.ops < *flagOps && time.Now().Before(deadline) {
		w.epoch(deadline)
	}
	// Quiesce: a simulator without faults, a controller that is not killed, and every pending operation
	// retried to its end, as the sidecars would.
	w.stopController(false)
	w.sim.stop(t)
	w.startSim(nil)
	w.startController()
	for tries := 0; len(w.m.pending) > 0; tries++ {
		if tries > 50*len(w.m.pending)+50 {
			t.Fatalf("operations that never succeed on a healthy RDS: %v", w.m.pending)
		}
		w.retryPending()
	}
	orphans := w.check(user)
	w.stopController(false)
	w.sim.stop(t)
	w.countFiredFaults()
	t.Logf("soak: %d operations (%d retries), %d controller SIGKILLs, %d simulator restarts, %d faults armed, "+
		"%d fired; failed answers by code: %v; %d hostile requests refused; at the end %d volumes, %d snapshots, "+
		"%d orphans", w.stats.ops, w.stats.retries, w.stats.kills, w.stats.simRestarts, w.stats.faultsArmed,
		w.stats.faultsFired, w.stats.failed, w.stats.refused, len(w.m.vols), len(w.m.snaps), orphans)
}

// epoch restarts the simulator with up to two random faults and runs a few operations against it.
func (w *world) epoch(deadline time.Time) {
	if w.stats.ops > 0 {
		w.stopController(w.rng.Intn(2) == 0)
		w.sim.stop(w.t)
		var faults []string
		for i := w.rng.Intn(3); i > 0; i-- {
			faults = append(faults, faultMenu[w.rng.Intn(len(faultMenu))])
		}
		w.stats.faultsArmed += len(faults)
		w.stats.simRestarts++
		w.faultLog = append(w.faultLog, strings.Join(faults, ","))
		w.startSim(faults)
		w.startController()
	}
	for n := 3 + w.rng.Intn(8); n > 0 && w.stats.ops < *flagOps && time.Now().Before(deadline); n-- {
		if len(w.m.pending) > 0 && w.rng.Intn(2) == 0 {
			w.retryPending()
			continue
		}
		op := w.m.randomOp(w.rng, w.basePaths)
		if op == nil {
			continue
		}
		w.stats.ops++
		w.run(op)
	}
}

// run sends op, SIGKILLing the controller during it now and then; an op that did not succeed is pending.
func (w *world) run(op *op) {
	killed := make(chan struct{})
	kill := w.rng.Float64() < *flagKillRate
	if kill {
		delay := time.Duration(w.rng.Intn(40)) * time.Millisecond
		go func() {
			defer close(killed)
			time.Sleep(delay)
			w.ctrl.kill()
		}()
	}
	err := w.send(op)
	if kill {
		<-killed
		w.stats.kills++
		if w.conn != nil {
			w.conn.Close()
		}
		w.startController()
	}
	w.settle(op, err)
}

func (w *world) retryPending() {
	op := w.m.pending[0]
	w.m.pending = w.m.pending[1:]
	w.stats.retries++
	w.run(op)
}

// settle applies an acknowledged op to the model, or keeps it pending for a retry. An answer that no retry
// can change (a refusal) fails the soak: every operation the soak sends is valid.
func (w *world) settle(op *op, err error) {
	if want, hostile := hostileWant[op.kind]; hostile {
		switch code := status.Code(err); code {
		case want:
			w.stats.refused++
		case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded:
			// Interrupted (a kill, a fault): nothing to retry, the final check sees whether it did harm.
		default:
			w.t.Errorf("%s: %v, want %s", op, err, want)
		}
		return
	}
	if err == nil {
		w.m.apply(op)
		return
	}
	code := status.Code(err)
	w.stats.failed[code]++
	switch code {
	case codes.Unavailable, codes.Aborted, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled, codes.Internal:
		w.m.pending = append(w.m.pending, op)
		if code == codes.Internal {
			w.t.Logf("Internal answer to %s (retried): %v", op, err)
		}
	default:
		w.t.Errorf("%s: %v (a valid request refused; faults of this epoch: %s)", op, err, w.lastFaults())
		w.m.pending = append(w.m.pending, op) // keep the model honest: it may still have happened
	}
}

func (w *world) lastFaults() string {
	if len(w.faultLog) == 0 {
		return "none"
	}
	return w.faultLog[len(w.faultLog)-1]
}

func (w *world) send(op *op) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return op.send(ctx, w.cc)
}

func (w *world) countFiredFaults() {
	b, _ := os.ReadFile(filepath.Join(w.dir, "rds-sim.log"))
	w.stats.faultsFired = strings.Count(string(b), "rds-sim: fault ")
}

// buildSim builds the rds-sim command from this checkout (procenv builds rds-csi the same way).
func buildSim(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rds-sim")
	cmd := exec.Command("go", "build", "-o", out, "github.com/rds-csi/rds-csi/cmd/rds-sim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rds-sim: %v\n%s", err, b)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
