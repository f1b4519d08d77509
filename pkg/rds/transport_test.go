package rds

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// hangBound is how long a call against a hung RDS may take beyond its deadline before the test calls it
// hung. It is generous: it catches a hang, it does not measure speed.
const hangBound = 5 * time.Second

func readCmd(t *testing.T) Cmd {
	t.Helper()
	c, err := PrintDisks(Eq("slot", "pvc-1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mutation(t *testing.T) Cmd {
	t.Helper()
	c, err := SetDiskSize("pvc-1", 2<<30)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCallerDeadlineOnHungCommand(t *testing.T) {
	srv := newTestServer(t)
	c := srv.client(Config{})
	if _, err := c.Run(context.Background(), nil, readCmd(t)); err != nil {
		t.Fatal(err)
	}
	srv.setHook(func(n int, _ string) action { return actHang })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, []Cmd{mutation(t)})
	if took := time.Since(start); took > 200*time.Millisecond+hangBound {
		t.Fatalf("Run against a hung RDS returned after %v", took)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want ErrUnavailable wrapping the caller's deadline", err)
	}
	// The connection itself is fine (only that command hung): the next command reuses it.
	srv.setHook(nil)
	if _, err := c.Run(context.Background(), nil, readCmd(t)); err != nil {
		t.Fatal(err)
	}
	if n := srv.acceptedConns(); n != 1 {
		t.Errorf("%d connections, want 1: a timeout on a live connection must not drop it", n)
	}
}

func TestCommandTimeoutIsUnavailable(t *testing.T) {
	srv := newTestServer(t)
	srv.setHook(func(int, string) action { return actHang })
	c := srv.client(Config{CommandTimeout: 200 * time.Millisecond, DialTimeout: 2 * time.Second})
	_, err := c.Run(context.Background(), nil, readCmd(t))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want ErrUnavailable, not the caller's deadline (the caller had none)", err)
	}
	if !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("message %q does not say the RDS did not answer in time", err)
	}
}

// TestDeadConnectionDroppedAfterTimeout: when even the liveness check after a timeout gets no answer,
// the connection is dropped and the next command dials a new one instead of timing out again.
func TestDeadConnectionDroppedAfterTimeout(t *testing.T) {
	srv := newTestServer(t)
	srv.setHook(func(int, string) action { return actHang })
	c := srv.client(Config{CommandTimeout: 100 * time.Millisecond, DialTimeout: 300 * time.Millisecond})
	if _, err := c.Run(context.Background(), nil, readCmd(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run = %v, want ErrUnavailable", err)
	}
	deadline := time.Now().Add(hangBound)
	for {
		c.mu.Lock()
		gone := c.cur == nil
		c.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unanswering connection was never dropped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.setHook(nil)
	if _, err := c.Run(context.Background(), nil, readCmd(t)); err != nil {
		t.Fatal(err)
	}
	if n := srv.acceptedConns(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestReconnectAfterServerDrop(t *testing.T) {
	srv := newTestServer(t)
	c := srv.client(Config{})
	for i := 0; i < 3; i++ {
		if _, err := c.Run(context.Background(), []Cmd{mutation(t)}, readCmd(t)); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		srv.dropAll() // the RDS reboots between calls
	}
	if n := srv.acceptedConns(); n != 3 {
		t.Errorf("%d connections for 3 calls separated by drops, want 3", n)
	}
}

// TestDropPoints covers where a connection can die and what may be retried: before the command was sent
// anything is retried once; after, only a pure read is, and a mutation reports ErrUnavailable (its
// outcome is unknown) without running again.
func TestDropPoints(t *testing.T) {
	tests := []struct {
		name       string
		dropOnOpen int
		act        action
		mutate     bool
		wantErr    error
		wantExecs  int
	}{
		{"mutation, dropped before it was sent", 1, actRun, true, nil, 1},
		{"read, dropped before it was sent", 1, actRun, false, nil, 1},
		{"mutation, dropped after it was received", 0, actDropBefore, true, ErrUnavailable, 1},
		{"read, dropped after it was received", 0, actDropBefore, false, nil, 2},
		{"mutation, dropped midway", 0, actDropAfterFirst, true, ErrUnavailable, 1},
		{"read, dropped midway", 0, actDropAfterFirst, false, nil, 2},
		{"read, dropped twice", 0, actDropAfterFirst, false, ErrUnavailable, 2},
		{"mutation, dropped on open twice", 2, actRun, true, ErrUnavailable, 0},
	}
	for _, noExit := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("exit-status=%v/%s", !noExit, tc.name), func(t *testing.T) {
				srv := newTestServer(t)
				srv.configure(func(s *testServer) {
					s.noExitStatus = noExit
					s.respond = (&fakeRouterOS{answers: map[string]string{"/disk print": diskListing}}).respond
				})
				c := srv.client(Config{})
				if err := c.Ping(context.Background()); err != nil { // connect first
					t.Fatal(err)
				}
				first := len(srv.recorded())
				drops := 1
				if strings.Contains(tc.name, "twice") {
					drops = 2
				}
				srv.configure(func(s *testServer) {
					s.dropOnOpen = tc.dropOnOpen
					s.hook = func(n int, _ string) action {
						if n-first <= drops {
							return tc.act
						}
						return actRun
					}
				})
				var err error
				if tc.mutate {
					_, err = c.Run(context.Background(), []Cmd{mutation(t)})
				} else {
					_, err = c.Run(context.Background(), nil, readCmd(t))
				}
				switch {
				case tc.wantErr == nil && err != nil:
					t.Fatalf("Run: %v", err)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Fatalf("Run = %v, want %v", err, tc.wantErr)
				}
				if tc.mutate && tc.wantErr != nil && tc.dropOnOpen == 0 && !strings.Contains(err.Error(), "outcome is unknown") {
					t.Errorf("message %q does not say the outcome is unknown", err)
				}
				if got := len(srv.recorded()) - first; got != tc.wantExecs {
					t.Errorf("the RDS received %d execs, want %d", got, tc.wantExecs)
				}
			})
		}
	}
}

func TestConcurrentRuns(t *testing.T) {
	srv := newTestServer(t)
	srv.configure(func(s *testServer) {
		s.respond = (&fakeRouterOS{answers: map[string]string{"/disk print": diskListing}}).respond
	})
	c := srv.client(Config{MaxSessions: 4})
	const workers, rounds = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				out, err := c.Run(context.Background(), []Cmd{mutation(t)}, readCmd(t))
				if err == nil && len(out[0]) != 1 {
					err = errors.New("read-back lost its item")
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(srv.recorded()); got != workers*rounds {
		t.Errorf("%d execs, want %d", got, workers*rounds)
	}
	if n := srv.acceptedConns(); n != 1 {
		t.Errorf("%d connections, want 1 shared by all goroutines", n)
	}
}

func TestMaxSessionsWaitsWithinContext(t *testing.T) {
	srv := newTestServer(t)
	srv.setHook(func(int, string) action { return actHang })
	c := srv.client(Config{MaxSessions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Run(ctx, nil, readCmd(t))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run = %v, want the deadline", err)
		}
	}
	if got := len(srv.recorded()); got != 1 {
		t.Errorf("%d execs reached the RDS with MaxSessions 1, want 1", got)
	}
}

func TestClose(t *testing.T) {
	srv := newTestServer(t)
	c := srv.client(Config{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping after Close = %v, want ErrUnavailable", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := newTestServer(t)
	c := srv.client(Config{DialTimeout: time.Second})
	srv.close()
	if err := c.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping of a closed port = %v, want ErrUnavailable", err)
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	srv := newTestServer(t)
	signer, _ := LoadPrivateKey(srv.keyFile)
	hk, _ := LoadHostKey(srv.hostFile)
	full := Config{Address: srv.addr(), User: "csi", Signer: signer, HostKeyCallback: hk}
	for name, mod := range map[string]func(*Config){
		"no address": func(c *Config) { c.Address = "" }, "no port": func(c *Config) { c.Address = "10.0.0.1" },
		"no user": func(c *Config) { c.User = "" }, "no key": func(c *Config) { c.Signer = nil },
		"no host key": func(c *Config) { c.HostKeyCallback = nil },
	} {
		cfg := full
		mod(&cfg)
		if _, err := New(cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", name, err)
		}
	}
}

func TestAuthRefused(t *testing.T) {
	srv := newTestServer(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(other)
	hk, _ := LoadHostKey(srv.hostFile)
	c, err := New(Config{Address: srv.addr(), User: "csi", Signer: signer, HostKeyCallback: hk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()); !errors.Is(err, ErrPermission) {
		t.Fatalf("Ping with an unknown key = %v, want ErrPermission", err)
	}
}

func TestHostKeyMismatch(t *testing.T) {
	srv := newTestServer(t)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	path := filepath.Join(t.TempDir(), "host.pub")
	writeFile(t, path, string(ssh.MarshalAuthorizedKey(other)))
	hk, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := LoadPrivateKey(srv.keyFile)
	c, err := New(Config{Address: srv.addr(), User: "csi", Signer: signer, HostKeyCallback: hk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Ping(context.Background())
	var hke *HostKeyError
	if !errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, ErrUnavailable) || !errors.As(err, &hke) {
		t.Fatalf("Ping = %v, want a HostKeyError", err)
	}
	for _, want := range []string{"did not match", ssh.FingerprintSHA256(srv.hostKey.PublicKey()), ssh.FingerprintSHA256(other)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if got := srv.recorded(); len(got) != 0 {
		t.Errorf("commands were sent to an unverified host: %q", got)
	}
}

// TestHostKeyTypeNegotiation: an RDS with an RSA and an ed25519 host key, of which only one is pinned,
// must be reachable whichever type the SSH library would ask for first.
func TestHostKeyTypeNegotiation(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, _ := ssh.NewSignerFromKey(rsaKey)
	for _, pinRSA := range []bool{false, true} {
		srv := newTestServer(t, rsaSigner)
		pinned := srv.hostKey.PublicKey()
		if pinRSA {
			pinned = rsaSigner.PublicKey()
		}
		path := filepath.Join(t.TempDir(), "host.pub")
		writeFile(t, path, string(ssh.MarshalAuthorizedKey(pinned)))
		hk, _ := LoadHostKey(path)
		signer, _ := LoadPrivateKey(srv.keyFile)
		c, err := New(Config{Address: srv.addr(), User: "csi", Signer: signer, HostKeyCallback: hk})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(context.Background()); err != nil {
			t.Errorf("pinned %s: %v", pinned.Type(), err)
		}
		c.Close()
	}
}

func TestLoadHostKey(t *testing.T) {
	srv := newTestServer(t)
	key := srv.hostKey.PublicKey()
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	otherLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))
	hashed := "|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= " + line
	tests := []struct {
		name    string
		content string
		accept  bool
		wantErr string
	}{
		{"authorized_keys format", line + " rds@example\n", true, ""},
		{"known_hosts line", "rds.example,10.0.0.1 " + line + "\n", true, ""},
		{"several lines, ours not first", "# RDS keys\n\nrds " + otherLine + "\n[10.0.0.1]:22 " + line + "\n", true, ""},
		{"hashed known_hosts", hashed + "\n", true, ""},
		{"a different key", otherLine + "\n", false, ""},
		{"empty", "", false, "holds no key"},
		{"comments only", "# nothing\n", false, "holds no key"},
		{"garbage", "hello world\n", false, "neither a known_hosts line nor a public key"},
		{"revoked", "@revoked * " + line + "\n", false, "@revoked"},
		{"cert authority", "@cert-authority * " + line + "\n", false, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hostkey")
			writeFile(t, path, tc.content)
			hk, err := LoadHostKey(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadHostKey = %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = hk("10.0.0.1:22", nil, key)
			if tc.accept != (err == nil) {
				t.Errorf("callback = %v, want accept %v", err, tc.accept)
			}
		})
	}
	if _, err := LoadHostKey(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing host key file: %v", err)
	}
}

func TestLoadPrivateKey(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	enc, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := ssh.MarshalPrivateKey(priv, "")
	files := map[string]string{
		"encrypted": string(pem.EncodeToMemory(enc)),
		"plain":     string(pem.EncodeToMemory(plain)),
		"garbage":   "not a key",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "plain")); err != nil {
		t.Errorf("plain key: %v", err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "encrypted")); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("encrypted key: %v", err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "garbage")); err == nil {
		t.Error("garbage key accepted")
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key accepted")
	}
}
