package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// proc is one running process of the soak: the rds-sim or the rds-csi controller.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t *testing.T, logFile string, stdout io.Writer, name string, args ...string) *proc {
	t.Helper()
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(log, "=== %s %s\n", filepath.Base(name), strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stderr = log
	cmd.Stdout = log
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(log, stdout)
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (a crash: no cleanup of any kind) and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits; it kills after 30 s.
func (p *proc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", p.cmd.Path)
		p.kill()
	}
}

// lineWriter hands the first line written to it to a channel (the rds-sim's "listening on" line).
type lineWriter struct {
	w     *io.PipeWriter
	lines chan string
}

func newLineWriter() *lineWriter {
	r, w := io.Pipe()
	lw := &lineWriter{w: w, lines: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		first := true
		for sc.Scan() {
			if first {
				lw.lines <- sc.Text()
				first = false
			}
		}
	}()
	return lw
}

func (l *lineWriter) Write(p []byte) (int, error) { return l.w.Write(p) }

// startSim starts rds-sim on a free port with the given faults and returns it with its address.
func (w *world) startSim(faults []string) {
	t := w.t
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", w.simDir, "--pool-size", "10TiB", "--pool-label", "pool-fs"}
	for _, f := range faults {
		args = append(args, "--fault", f)
	}
	lw := newLineWriter()
	w.sim = start(t, filepath.Join(w.dir, "rds-sim.log"), lw, w.simBin, args...)
	select {
	case line := <-lw.lines:
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "listening" {
			t.Fatalf("rds-sim said %q", line)
		}
		w.simAddr = f[3]
	case <-w.sim.done:
		t.Fatalf("rds-sim exited: %v (log: %s)", w.sim.err, filepath.Join(w.dir, "rds-sim.log"))
	case <-time.After(30 * time.Second):
		t.Fatal("rds-sim did not start within 30s")
	}
}

// startController starts the rds-csi binary in controller mode against the simulator and connects to it.
func (w *world) startController() {
	t := w.t
	w.ctrl = start(t, filepath.Join(w.dir, "rds-csi.log"), nil, w.csiBin, "--mode=controller",
		"--endpoint", "unix://"+w.sock, "--rds-address", w.simAddr, "--rds-user", "admin",
		"--rds-key-file", filepath.Join(w.simDir, "client_key"), "--rds-host-key", filepath.Join(w.simDir, "known_hosts"),
		"--base-path", "pool/k8s", "--nvme-address", "127.0.0.1", "--rds-command-timeout", "1s", "--v", "2")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if w.ctrl.running() && socketAnswers(w.sock) {
			break
		}
		if !w.ctrl.running() {
			t.Fatalf("rds-csi exited: %v (log: %s)", w.ctrl.err, filepath.Join(w.dir, "rds-csi.log"))
		}
		if time.Now().After(deadline) {
			t.Fatal("rds-csi did not serve within 30s")
		}
	}
	conn, err := grpc.NewClient("unix://"+w.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	w.conn, w.cc = conn, csi.NewControllerClient(conn)
}

// socketAnswers tells whether a fresh process serves on sock (a SIGKILLed one leaves its socket file).
func socketAnswers(sock string) bool {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	return err == nil
}

func (w *world) stopController(kill bool) {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	if kill {
		w.ctrl.kill()
		w.stats.kills++
		return
	}
	w.ctrl.stop(w.t)
}
