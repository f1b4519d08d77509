//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rds-csi/rds-csi/internal/testenv"
	"github.com/rds-csi/rds-csi/pkg/nodeid"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

var (
	simMode    = flag.String("e2e.sim", "inprocess", "how to run the RDS simulator: inprocess (the rdssim package with its nvmet exporter) or binary (the rds-sim command, which must export through nvmet by itself)")
	driverBin  = flag.String("e2e.driver", "/bin/rds-csi", "the rds-csi binary")
	simBin     = flag.String("e2e.rds-sim", "/bin/rds-sim", "the rds-sim binary (with -e2e.sim=binary)")
	bareStage  = flag.String("e2e.bare-stage", "/bin/e2e-bare-stage.sh", "the shell baseline NodeStage is timed against")
	workDir    = flag.String("e2e.dir", "/run/e2e", "where the simulator's pool, the CSI socket and the mount points go")
	driverArgs = flag.String("e2e.driver-args", "-v=2", "extra rds-csi flags, space separated")
)

const (
	// nodeID is the one node of the guest.
	nodeID = "e2e-vm"
	// dataAddress is where the kernel target listens and the initiator connects: the guest's loopback.
	dataAddress = "127.0.0.1"
	nvmetRoot   = rdssim.DefaultNVMetRoot
)

var (
	// env is the running simulator + driver, or nil when the tests cannot run here (skipReason) or it
	// failed to start (envErr).
	env        *stack
	envErr     error
	skipReason string
)

func TestMain(m *testing.M) {
	flag.Parse()
	switch {
	case os.Geteuid() != 0:
		skipReason = "not root: the e2e tests connect NVMe/TCP, format and mount (run them through make e2e-nvme)"
	case !rdssim.NVMetAvailable(nvmetRoot):
		skipReason = nvmetRoot + " is missing (no nvmet module or configfs): the e2e tests run inside the VM of make e2e-nvme"
	}
	if skipReason != "" {
		fmt.Println("e2e: skipping:", skipReason)
		os.Exit(m.Run())
	}
	start := time.Now()
	env, envErr = startStack(*workDir)
	if envErr != nil {
		fmt.Printf("E2E-STEP-FAIL: starting the simulator and the driver: %v\n", envErr)
	} else {
		fmt.Printf("e2e: simulator (%s) and driver ready in %.2fs\n", *simMode, time.Since(start).Seconds())
	}
	code := m.Run()
	if env != nil {
		if err := env.checkNothingLeft(); err != nil {
			fmt.Printf("E2E-STEP-FAIL: after the tests: %v\n", err)
			code = 1
		} else {
			fmt.Println("E2E-CHECK: no volume, snapshot, NVMe controller or nvmet subsystem or port is left")
		}
		env.stop()
	}
	os.Exit(code)
}

// need returns the running stack, skips when the tests cannot run here, and fails when the stack should
// have started but did not.
func need(t *testing.T) *stack {
	t.Helper()
	if skipReason != "" {
		testenv.Missing(t, skipReason)
	}
	if env == nil {
		t.Fatalf("the simulator and driver did not start: %v", envErr)
	}
	return env
}

// stack is the RDS simulator exporting through the kernel target and the rds-csi process talking to it,
// with a CSI client on the driver's socket.
type stack struct {
	dir        string
	sim        *rdssim.Simulator // -e2e.sim=inprocess
	simProc    *process          // -e2e.sim=binary
	driver     *process
	conn       *grpc.ClientConn
	identity   csi.IdentityClient
	controller csi.ControllerClient
	node       csi.NodeClient

	controllerCaps map[csi.ControllerServiceCapability_RPC_Type]bool
	nodeCaps       map[csi.NodeServiceCapability_RPC_Type]bool
}

func startStack(dir string) (_ *stack, err error) {
	s := &stack{dir: dir}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var rdsAddr, keyFile, knownHosts string
	simDir := filepath.Join(dir, "rds-sim")
	switch *simMode {
	case "inprocess":
		s.sim, err = rdssim.New(rdssim.Config{Listen: "127.0.0.1:0", DataDir: simDir, PoolName: "pool",
			Exporter: rdssim.NewNVMet(nvmetRoot, dataAddress), Log: newPrefixWriter("rds-sim")})
		if err == nil {
			err = s.sim.Start()
		}
		if err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
		rdsAddr, keyFile, knownHosts = s.sim.Addr(), s.sim.ClientKeyFile(), s.sim.KnownHostsFile()
	case "binary":
		rdsAddr, keyFile, knownHosts, err = s.startSimBinary(simDir)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("-e2e.sim=%q: want inprocess or binary", *simMode)
	}

	sock := filepath.Join(dir, "csi.sock")
	args := []string{"--mode=all", "--endpoint=unix://" + sock, "--node-id=" + nodeID,
		"--rds-address=" + rdsAddr, "--rds-user=admin", "--rds-key-file=" + keyFile, "--rds-host-key=" + knownHosts,
		"--nvme-initiator=nvme-cli", "--nvme-address=" + dataAddress, "--base-path=pool/k8s"}
	args = append(args, strings.Fields(*driverArgs)...)
	if s.driver, err = startProcess("rds-csi", *driverBin, args...); err != nil {
		return nil, err
	}
	if err := waitForSocket(sock, s.driver, 60*time.Second); err != nil {
		return nil, err
	}
	s.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	s.identity, s.controller, s.node = csi.NewIdentityClient(s.conn), csi.NewControllerClient(s.conn), csi.NewNodeClient(s.conn)
	return s, s.readCapabilities()
}

func (s *stack) readCapabilities() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.identity.Probe(ctx, &csi.ProbeRequest{}); err != nil {
		return fmt.Errorf("Probe: %w", err)
	}
	cc, err := s.controller.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("ControllerGetCapabilities: %w", err)
	}
	s.controllerCaps = map[csi.ControllerServiceCapability_RPC_Type]bool{}
	for _, c := range cc.GetCapabilities() {
		s.controllerCaps[c.GetRpc().GetType()] = true
	}
	nc, err := s.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetCapabilities (is the node service there?): %w", err)
	}
	s.nodeCaps = map[csi.NodeServiceCapability_RPC_Type]bool{}
	for _, c := range nc.GetCapabilities() {
		s.nodeCaps[c.GetRpc().GetType()] = true
	}
	info, err := s.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetInfo: %w", err)
	}
	// The node id carries the guest's host NQN (pkg/nodeid); the node is the one called nodeID.
	if nodeid.Name(info.GetNodeId()) != nodeID {
		return fmt.Errorf("NodeGetInfo says node %q, want %q", info.GetNodeId(), nodeID)
	}
	fmt.Printf("e2e: controller capabilities %v; node capabilities %v\n", keys(s.controllerCaps), keys(s.nodeCaps))
	return nil
}

func keys[K interface {
	comparable
	String() string
}](m map[K]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k.String())
	}
	return out
}

// startSimBinary runs rds-sim and reads where it listens and its key files from its first line.
func (s *stack) startSimBinary(dir string) (addr, key, knownHosts string, err error) {
	s.simProc, err = startProcess("rds-sim", *simBin, "--listen=127.0.0.1:0", "--data-dir="+dir, "--pool-name=pool", "-v=2")
	if err != nil {
		return "", "", "", err
	}
	select {
	case line := <-s.simProc.firstLine:
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "client-key":
				key = v
			case "known-hosts":
				knownHosts = v
			}
		}
		if i := strings.Index(line, "listening on "); i >= 0 {
			addr = strings.Fields(line[i+len("listening on "):])[0]
		}
		if addr == "" || key == "" || knownHosts == "" {
			return "", "", "", fmt.Errorf("rds-sim started with %q: no address, client-key or known-hosts", line)
		}
		return addr, key, knownHosts, nil
	case err := <-s.simProc.done:
		return "", "", "", fmt.Errorf("rds-sim exited: %w", err)
	case <-time.After(30 * time.Second):
		return "", "", "", errors.New("rds-sim printed nothing for 30s")
	}
}

func waitForSocket(sock string, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-p.done:
			return fmt.Errorf("%s exited before serving %s: %w", p.name, sock, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s", p.name, sock, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkNothingLeft is the lane's last word: every test deleted what it made, so no volume, snapshot, NVMe
// controller or nvmet subsystem or port may remain.
func (s *stack) checkNothingLeft() error {
	var problems []string
	if s.controllerCaps[csi.ControllerServiceCapability_RPC_LIST_VOLUMES] {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := s.controller.ListVolumes(ctx, &csi.ListVolumesRequest{})
		if err != nil {
			problems = append(problems, fmt.Sprintf("ListVolumes: %v", err))
		}
		for _, e := range resp.GetEntries() {
			problems = append(problems, "volume "+e.GetVolume().GetVolumeId()+" was not deleted")
		}
	}
	if s.controllerCaps[csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS] {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := s.controller.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
		if err != nil {
			problems = append(problems, fmt.Sprintf("ListSnapshots: %v", err))
		}
		for _, e := range resp.GetEntries() {
			problems = append(problems, "snapshot "+e.GetSnapshot().GetSnapshotId()+" was not deleted")
		}
	}
	ctrls, err := nvmeControllers()
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, c := range ctrls {
		problems = append(problems, fmt.Sprintf("NVMe controller %s (%s, %s) is still there", c.name, c.nqn, c.state))
	}
	for _, d := range []string{"subsystems", "ports"} {
		names, err := os.ReadDir(filepath.Join(nvmetRoot, d))
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, n := range names {
			problems = append(problems, fmt.Sprintf("nvmet %s/%s is still configured", d, n.Name()))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (s *stack) stop() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.driver != nil {
		s.driver.stop()
	}
	if s.sim != nil {
		if err := s.sim.Close(); err != nil {
			fmt.Printf("e2e: closing the simulator: %v\n", err)
		}
	}
	if s.simProc != nil {
		s.simProc.stop()
	}
}

// process is a child whose output goes to the console line by line behind its name, so the serial log
// shows the driver's and the simulator's view next to the tests'.
type process struct {
	name      string
	cmd       *exec.Cmd
	done      chan error // receives the exit once
	firstLine chan string
}

func startProcess(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), done: make(chan error, 1), firstLine: make(chan string, 1)}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = newPrefixWriter(name)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	fmt.Printf("e2e: started %s (pid %d): %s %s\n", name, p.cmd.Process.Pid, bin, strings.Join(args, " "))
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		w := newPrefixWriter(name)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			if first {
				p.firstLine <- sc.Text()
				first = false
			}
			fmt.Fprintln(w, sc.Text())
		}
	}()
	go func() {
		<-copied
		p.done <- p.cmd.Wait()
	}()
	return p, nil
}

// stop asks the process to end (SIGTERM, as kubelet would) and kills it after 20 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		fmt.Printf("e2e: %s stopped: %v\n", p.name, err)
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		fmt.Printf("e2e: %s did not stop within 20s after SIGTERM; killed\n", p.name)
	}
}

// prefixWriter writes whole lines to stdout as "[name] line".
type prefixWriter struct {
	prefix string
	mu     sync.Mutex
	buf    []byte
}

var stdoutMu sync.Mutex

func newPrefixWriter(name string) io.Writer { return &prefixWriter{prefix: "[" + name + "] "} }

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		stdoutMu.Lock()
		fmt.Print(w.prefix + string(w.buf[:i+1]))
		stdoutMu.Unlock()
		w.buf = w.buf[i+1:]
	}
}
