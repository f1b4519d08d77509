package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// execCounter counts the simulator's log lines: one "rds-sim: exec" per SSH exec (round trip), one
// "rds-sim: cmd" per RouterOS command run.
type execCounter struct {
	execs, cmds atomic.Int64
	lines       atomic.Int64
}

func (c *execCounter) consume(r io.Reader, first chan<- string) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if first != nil {
			first <- line
			first = nil
		}
		switch {
		case strings.HasPrefix(line, "rds-sim: exec "):
			c.execs.Add(1)
		case strings.HasPrefix(line, "rds-sim: cmd "):
			c.cmds.Add(1)
		}
		c.lines.Add(1)
	}
}

// settle waits until the log stops growing for a moment, so that the counts include every line of the
// operations that just answered (the log is written while they run and read through a pipe).
func (c *execCounter) settle() (execs, cmds int64) {
	if c == nil {
		return 0, 0
	}
	last := c.lines.Load()
	for i := 0; i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		now := c.lines.Load()
		if now == last && i >= 2 {
			break
		}
		last = now
	}
	return c.execs.Load(), c.cmds.Load()
}

// tailLog counts the lines appended to path from now on.
func tailLog(ctx context.Context, path string) (*execCounter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--sim-log: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		buf := make([]byte, 64<<10)
		for ctx.Err() == nil {
			n, err := f.Read(buf)
			if n > 0 {
				_, _ = pw.Write(buf[:n])
			}
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
		pw.Close()
	}()
	c := &execCounter{}
	go c.consume(pr, nil)
	return c, nil
}

// stack is an rds-sim process and an rds-csi controller process using it.
type stack struct {
	endpoint string
	counter  *execCounter
	procs    []*proc
}

// proc is a started process and a channel closed once it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

var listening = regexp.MustCompile(`^rds-sim: listening on (\S+) .*client-key=(\S+) known-hosts=(\S+)`)

func startStack(o options) (*stack, error) {
	st := &stack{counter: &execCounter{}}
	simArgs := []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(o.dir, "rds"), "--latency", o.latency.String()}
	simArgs = append(simArgs, strings.Fields(o.simArgs)...)
	if o.commandLatency > 0 {
		simArgs = append(simArgs, "--command-latency", o.commandLatency.String())
	}
	sim := exec.Command(o.simBin, simArgs...)
	simErr, err := os.Create(filepath.Join(o.dir, "rds-sim.stderr"))
	if err != nil {
		return nil, err
	}
	sim.Stderr = simErr
	out, err := sim.StdoutPipe()
	if err != nil {
		return nil, err
	}
	simProc, err := startProc(sim)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", o.simBin, err)
	}
	st.procs = append(st.procs, simProc)
	first := make(chan string, 1)
	go st.counter.consume(out, first)
	var line string
	select {
	case line = <-first:
	case <-time.After(30 * time.Second):
		st.stop()
		return nil, fmt.Errorf("%s printed nothing within 30s", o.simBin)
	}
	m := listening.FindStringSubmatch(line)
	if m == nil {
		st.stop()
		return nil, fmt.Errorf("unexpected first line from rds-sim: %q", line)
	}
	sock := filepath.Join(o.dir, "csi.sock")
	args := []string{"--mode=controller", "--endpoint=unix://" + sock, "--node-id=" + o.nodeID,
		"--rds-address=" + m[1], "--rds-key-file=" + m[2], "--rds-host-key=" + m[3], "--base-path=pool/k8s"}
	args = append(args, strings.Fields(o.driverArgs)...)
	drv := exec.Command(o.driverBin, args...)
	logFile, err := os.Create(filepath.Join(o.dir, "rds-csi.log"))
	if err != nil {
		st.stop()
		return nil, err
	}
	drv.Stdout, drv.Stderr = logFile, logFile
	drvProc, err := startProc(drv)
	if err != nil {
		st.stop()
		return nil, fmt.Errorf("starting %s: %w", o.driverBin, err)
	}
	st.procs = append(st.procs, drvProc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case <-drvProc.done:
			st.stop()
			b, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("the driver exited (%w) before listening:\n%s", drvProc.err, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			st.stop()
			return nil, errors.New("the driver did not listen within 30s")
		}
	}
	st.endpoint = "unix://" + sock
	return st, nil
}

// stop ends the driver, then the simulator (SIGTERM, then SIGKILL after 10 s).
func (st *stack) stop() {
	for i := len(st.procs) - 1; i >= 0; i-- {
		p := st.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	st.procs = nil
}
