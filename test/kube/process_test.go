package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rds-csi/rds-csi/test/procenv"
)

// EnvBinary names the variable that points the tests at an rds-csi binary built elsewhere.
const EnvBinary = "RDS_CSI_BINARY"

// waitTimeout bounds every wait for the process: start-up, informers delivering a change, a fail-over
// (a lease of leaseDuration). Generous, for a loaded CI machine; waits end as soon as their condition holds.
const waitTimeout = 60 * time.Second

// driverBinary returns the rds-csi binary: RDS_CSI_BINARY, or one built from this checkout on first use.
func driverBinary(tb testing.TB) string {
	tb.Helper()
	if b := os.Getenv(EnvBinary); b != "" {
		return b
	}
	return procenv.DriverBinary(tb)
}

// controllerProcess is one rds-csi process in controller mode.
type controllerProcess struct {
	tb      testing.TB
	name    string
	cmd     *exec.Cmd
	out     *procenv.Output
	exited  chan struct{}
	waitErr error
	started time.Time
	// ready is when the process logged that it serves CSI, and startupRequests what it had asked the
	// API server by then.
	ready           time.Time
	startupRequests map[string]int
	socket          string
	metricsAddr     string
	api             *apiProxy
	conn            *grpc.ClientConn
	controller      csi.ControllerClient
}

var metricsAddrLine = regexp.MustCompile(`"serving metrics" address="([^"]+)"`)

// startController runs the binary in controller mode with the given extra flags, its Kubernetes client
// going through its own counting proxy, and returns once it serves CSI and metrics. The process is killed
// at the end of the test if it still runs; its output is printed when the test failed.
func startController(tb testing.TB, name string, args ...string) *controllerProcess {
	tb.Helper()
	// Unix socket paths are limited to 108 bytes: a short directory rather than the test's TempDir.
	dir, err := os.MkdirTemp("", "rdscsi")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	p := &controllerProcess{tb: tb, name: name, out: &procenv.Output{}, exited: make(chan struct{}),
		socket: filepath.Join(dir, "csi.sock"), api: newAPIProxy(tb)}
	all := append([]string{"--mode=controller", "--endpoint=unix://" + p.socket, "--kubeconfig=" + p.api.kubeconfig,
		"--metrics-address=127.0.0.1:0", "--v=2"}, args...)
	p.cmd = exec.Command(driverBinary(tb), all...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.kill()
		if p.conn != nil {
			p.conn.Close()
		}
		if tb.Failed() {
			tb.Logf("--- output of %s ---\n%s", p.name, tail(p.out.String(), 150))
		}
	})
	p.waitLog(`"serving CSI"`)
	p.ready = time.Now()
	p.startupRequests = p.api.counter.Counts()
	m := metricsAddrLine.FindStringSubmatch(p.out.String())
	if m == nil {
		tb.Fatalf("%s serves CSI but did not log its metrics address", name)
	}
	p.metricsAddr = m[1]
	p.conn, err = grpc.NewClient("unix://"+p.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	p.controller = csi.NewControllerClient(p.conn)
	return p
}

// waitLog waits until the output matches pattern (a regular expression) and returns the match; it fails
// the test when the process exits first or waitTimeout passes.
func (p *controllerProcess) waitLog(pattern string) string {
	p.tb.Helper()
	re := regexp.MustCompile(pattern)
	var got string
	p.eventually("output of "+p.name+" to match "+pattern, func() bool {
		got = re.FindString(p.out.String())
		return got != ""
	})
	return got
}

// logged reports whether the output so far matches pattern.
func (p *controllerProcess) logged(pattern string) bool {
	return regexp.MustCompile(pattern).MatchString(p.out.String())
}

// eventually polls cond every 20 ms until it holds, failing the test after waitTimeout or when the
// process exits.
func (p *controllerProcess) eventually(what string, cond func() bool) {
	p.tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		select {
		case <-p.exited:
			p.tb.Fatalf("%s exited (%v) while waiting for %s", p.name, p.waitErr, what)
		default:
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL, as a node failure or an OOM kill would: no lease release, no cleanup.
func (p *controllerProcess) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// terminate sends SIGTERM, as the kubelet does when it stops a pod, and waits for the process to exit;
// a clean stop exits with status 0.
func (p *controllerProcess) terminate() {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.tb.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		p.tb.Fatalf("%s did not exit within %s of SIGTERM", p.name, waitTimeout)
	}
	if p.waitErr != nil {
		p.tb.Errorf("%s exited after SIGTERM with %v, want status 0", p.name, p.waitErr)
	}
}

// rpc returns a context for one CSI call.
func rpc(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("[... %d lines before]", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}
