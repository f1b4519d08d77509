package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/rds-csi/rds-csi/internal/testenv"
)

// The test binary doubles as rds-sim: with RDS_SIM_RUN_MAIN=1 it runs main,
// so the process-level contract (flags, stdout log, signals, exit codes) is
// tested on a real process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("RDS_SIM_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// simProcess runs rds-sim with args and waits until it listens.
type simProcess struct {
	cmd    *exec.Cmd
	addr   string
	lines  chan string
	stderr *bytes.Buffer
}

func startProcess(t *testing.T, args ...string) *simProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RDS_SIM_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &simProcess{cmd: cmd, lines: make(chan string, 1000), stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			// A test that ended before stopping it: killed on purpose, so how it died says nothing.
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	listening := regexp.MustCompile(`^rds-sim: listening on (\S+) `)
	select {
	case line, ok := <-p.lines:
		m := listening.FindStringSubmatch(line)
		if !ok || m == nil {
			t.Fatalf("first line %q, stderr: %s", line, p.stderr)
		}
		p.addr = m[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("rds-sim did not start; stderr: %s", p.stderr)
	}
	return p
}

// next returns the next stdout line.
func (p *simProcess) next(t *testing.T) string {
	t.Helper()
	select {
	case line := <-p.lines:
		return line
	case <-time.After(10 * time.Second):
		t.Fatal("no output line from rds-sim")
	}
	return ""
}

func sshExec(t *testing.T, addr, dir, script string) (string, int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "client_key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(filepath.Join(dir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "admin", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Output(script)
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exitErr):
		return string(out), exitErr.ExitStatus()
	}
	t.Fatalf("exec %q: %v", script, err)
	return "", 0
}

func TestProcessServesLogsAndStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := startProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir, "--pool-size", "1GiB",
				"--fault", "exit-zero@/disk remove", "--fault", "latency=1ms", "--width", "120",
				"--latency", "1ms", "--command-latency", "1ms")
			out, status := sshExec(t, p.addr, dir, `/disk add type=file file-path=pool/a.img file-size=100M slot=a; /disk print detail where mount-point="pool"`)
			if status != 0 || !strings.Contains(out, "size=1 073 741 824") {
				t.Errorf("pool size flag not applied: status %d\n%s", status, out)
			}
			for _, want := range []string{"rds-sim: exec user=admin", "rds-sim: cmd user=admin /disk add type=file file-path=pool/a.img file-size=100M slot=a",
				`rds-sim: cmd user=admin /disk print detail where mount-point="pool"`} {
				if got := p.next(t); got != want {
					t.Errorf("log line %q, want %q", got, want)
				}
			}
			if out, status := sshExec(t, p.addr, dir, `/disk remove nothing`); status != 0 || out != "no such item\r\n" {
				t.Errorf("--fault exit-zero: status %d output %q", status, out)
			}
			if out, status := sshExec(t, p.addr, dir, `/disk set nothing file-size=1G`); status != 1 || out != "no such item\r\n" {
				t.Errorf("exit-zero must only apply to /disk remove: status %d output %q", status, out)
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := p.cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v; stderr: %s", sig, err, p.stderr)
			}
			var rest []string
			for line := range p.lines {
				rest = append(rest, line)
			}
			if len(rest) == 0 || rest[len(rest)-1] != "rds-sim: stopped" {
				t.Errorf("last lines %q, want rds-sim: stopped", rest)
			}
		})
	}
}

func TestProcessKeepsKeysAndStateAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	sshExec(t, p.addr, dir, `/disk add type=file file-path=pool/a.img file-size=1M slot=a`)
	key1, _ := os.ReadFile(filepath.Join(dir, "client_key"))
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, p.stderr)
	}

	p2 := startProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	if key2, _ := os.ReadFile(filepath.Join(dir, "client_key")); !bytes.Equal(key1, key2) {
		t.Error("client key regenerated on restart")
	}
	if out, _ := sshExec(t, p2.addr, dir, `/disk print detail where slot=a`); !strings.Contains(out, `slot="a"`) {
		t.Errorf("disk lost across restart:\n%s", out)
	}
}

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--listen", "127.0.0.1:0"}, 2, "--data-dir is required"},
		{[]string{"--data-dir", dir, "--fault", "explode"}, 2, `unknown kind "explode"`},
		{[]string{"--data-dir", dir, "--pool-size", "lots"}, 2, "invalid size"},
		{[]string{"--data-dir", dir, "--latency", "soon"}, 2, "invalid value"},
		{[]string{"--data-dir", dir, "--command-latency", "-1s"}, 1, "negative command latency"},
		{[]string{"--data-dir", dir, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--data-dir", dir, "--pool-fs", "ext4"}, 1, `pool filesystem "ext4"`},
		{[]string{"--data-dir", dir, "--listen", "256.0.0.1:1"}, 1, "listen"},
		{[]string{"--data-dir", dir, "--subvolume-name", "full"}, 2, `subvolume name form "full"`},
		{[]string{"--data-dir", dir, "--subvolume-parent", "uuid"}, 2, `subvolume name form "uuid"`},
		{[]string{"--data-dir", dir, "--on-error", "ignore"}, 2, `on-error "ignore"`},
		{[]string{"--data-dir", dir, "--subvolume-add-parents", "mkdir"}, 2, `subvolume-add-parents "mkdir"`},
		{[]string{"--data-dir", dir, "--pool-label", "a b"}, 1, "pool label"},
		{[]string{"--data-dir", dir, "--rose-storage", "maybe"}, 2, `package state "maybe"`},
		{[]string{"--help"}, 0, "Usage: rds-sim"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a run that starts stops at once
			code := run(ctx, tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// TestOpenSSHClient is the smoke test of the brief: the stock OpenSSH client,
// with the generated key and known_hosts, runs a command and sees exit codes.
func TestOpenSSHClient(t *testing.T) {
	testenv.RequireTools(t, "apt-get install -y openssh-client", "ssh")
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	_, port, _ := strings.Cut(p.addr, ":")
	openssh := func(script string) (string, int) {
		cmd := exec.Command(sshPath, "-i", filepath.Join(dir, "client_key"), "-o", "UserKnownHostsFile="+filepath.Join(dir, "known_hosts"),
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "GlobalKnownHostsFile=/dev/null",
			"-p", port, "admin@127.0.0.1", script)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatalf("ssh: %v %s", err, stderr.String())
		}
		if code := cmd.ProcessState.ExitCode(); code == 255 {
			t.Fatalf("ssh failed to connect: %s", stderr.String())
		}
		return stdout.String(), cmd.ProcessState.ExitCode()
	}
	out, code := openssh("/disk print detail")
	if code != 0 || !strings.HasPrefix(out, "Flags: B - BLOCK-DEVICE; M - MOUNTED\r\n 0 BM type=raid slot=\"pool\"") {
		t.Errorf("exit %d, output:\n%q", code, out)
	}
	if out, code := openssh("/disk addd"); code != 1 || out != "bad command name addd (line 1 column 7)\r\n" {
		t.Errorf("failing command: exit %d output %q", code, out)
	}
}

// TestDialectFlags: the switches for the UNVERIFIED behaviours reach the simulator.
func TestDialectFlags(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir, "--pool-label", "ocp-storage",
		"--subvolume-name", "path", "--subvolume-parent", "path", "--on-error", "continue", "--subvolume-add-parents", "refuse")
	if out, status := sshExec(t, p.addr, dir, `/disk/btrfs/subvolume/add fs=ocp-storage name=k8s/a`); status != 1 ||
		!strings.Contains(out, "parent directory does not exist") {
		t.Errorf("a missing parent with --subvolume-add-parents refuse: %d %q", status, out)
	}
	if out, status := sshExec(t, p.addr, dir, `/disk/btrfs/subvolume/add fs=ocp-storage name=k8s`); status != 0 {
		t.Fatalf("the base subvolume: %d %q", status, out)
	}
	if out, status := sshExec(t, p.addr, dir, `/disk/btrfs/subvolume/add fs=pool name=k8s/a`); status != 1 ||
		!strings.Contains(out, "input does not match any value of fs") {
		t.Errorf("fs= by mount point with a label: %d %q", status, out)
	}
	script := "/disk/btrfs/subvolume/add fs=ocp-storage name=k8s/a\n" +
		"/disk/btrfs/subvolume/add fs=ocp-storage parent=a name=k8s/b\n" + // a leaf: refused by --subvolume-parent path
		"/disk/btrfs/subvolume/add fs=ocp-storage parent=k8s/a name=k8s/c\n" +
		`/disk/btrfs/subvolume/print detail where name="k8s/c"`
	out, status := sshExec(t, p.addr, dir, script)
	if status != 1 || !strings.Contains(out, "no such item") || !strings.Contains(out, `name="k8s/c" fs=ocp-storage parent="k8s/a"`) {
		t.Errorf("went on after the error, names by path: %d %q", status, out)
	}
}
