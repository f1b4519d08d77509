//go:build e2ekube

package e2ekube

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one process of the lane: a container of the chart run on the host, or the simulator. It can be
// stopped and started again (the restart scenarios). An exit nobody asked for is recorded, so the lane
// fails even when the scenario running at the time did not notice; a container is then started again a
// second later, as kubelet restarts a Deployment's or DaemonSet's container (the sidecars exit on purpose
// when they lose the driver's socket).
type proc struct {
	name        string
	argv        []string // with any wrapper (unshare) in front
	env         []string
	log         string
	keepRunning bool // restartPolicy Always

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopping bool
	exits    []exit // unexpected exits, for the final check
}

type exit struct {
	started, at time.Time // of the run that ended
	msg         string
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==== %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(p.argv, " "))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.cmd, p.done, p.stopping = cmd, make(chan struct{}), false
	started := time.Now()
	go func(cmd *exec.Cmd, done chan struct{}) {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		again := !p.stopping && p.keepRunning
		if !p.stopping {
			p.exits = append(p.exits, exit{started, time.Now(), fmt.Sprintf("%s exited on its own: %v", p.name, err)})
		}
		p.mu.Unlock()
		close(done)
		if again {
			time.Sleep(time.Second)
			p.mu.Lock()
			stopped := p.stopping
			p.mu.Unlock()
			if !stopped {
				_ = p.start()
			}
		}
	}(cmd, p.done)
	return nil
}

func (p *proc) alive() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group and SIGKILL after 20 s.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.stopping = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (p *proc) restart() error {
	p.stop()
	return p.start()
}

func (p *proc) unexpectedExits() []exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]exit(nil), p.exits...)
}

// tail is the end of the process's log, for failure messages.
func (p *proc) tail(lines int) string {
	b, _ := os.ReadFile(p.log)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
