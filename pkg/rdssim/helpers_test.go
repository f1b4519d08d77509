package rdssim

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// startSim starts a simulator on a free loopback port in a fresh data
// directory (unless cfg names one) and closes it when the test ends.
func startSim(t testing.TB, cfg Config) *Simulator {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial opens a real SSH client connection with the generated client key,
// pinning the host key from the simulator's known_hosts file.
func dial(t testing.TB, s *Simulator) *ssh.Client {
	t.Helper()
	c, err := dialErr(s, "admin", s.ClientKeyFile())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialErr(s *Simulator, user, keyFile string) (*ssh.Client, error) {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		return nil, err
	}
	hk, err := knownhosts.New(s.KnownHostsFile())
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk, Timeout: 10 * time.Second,
	})
}

// noStatus marks an exec that ended without an exit status (connection
// dropped, or the session was closed while the command hung).
const noStatus = -1

// run executes one script in its own session and returns stdout and the
// exit status.
func run(t testing.TB, c *ssh.Client, script string) (string, int) {
	t.Helper()
	out, status, err := runErr(c, script)
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	return out, status
}

func runErr(c *ssh.Client, script string) (string, int, error) {
	sess, err := c.NewSession()
	if err != nil {
		return "", noStatus, err
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	err = sess.Run(script)
	if stderr.Len() > 0 {
		return stdout.String(), noStatus, errors.New("unexpected stderr: " + stderr.String())
	}
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return stdout.String(), 0, nil
	case errors.As(err, &exitErr):
		return stdout.String(), exitErr.ExitStatus(), nil
	case errors.As(err, &missing):
		return stdout.String(), noStatus, nil
	}
	return stdout.String(), noStatus, err
}

// mustRun runs a script that must succeed.
func mustRun(t testing.TB, c *ssh.Client, script string) string {
	t.Helper()
	out, status := run(t, c, script)
	if status != 0 {
		t.Fatalf("exec %q: status %d, output:\n%s", script, status, out)
	}
	return out
}
