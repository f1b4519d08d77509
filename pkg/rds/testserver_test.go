package rds

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testServer is a small real SSH server for the transport tests: public-key auth, exec only, every exec
// recorded. By default it runs a script the way the docs say RouterOS does: line by line, `:put "x"`
// prints x, other lines are answered by respond, and the first failure stops the script. Hooks inject the
// faults a real RDS shows: hangs, dropped connections, missing exit status.
type testServer struct {
	t        testing.TB
	ln       net.Listener
	hostKey  ssh.Signer
	config   *ssh.ServerConfig
	keyFile  string // client private key (OpenSSH PEM)
	hostFile string // known_hosts line for the server

	mu       sync.Mutex
	scripts  []string
	conns    []net.Conn
	accepted int
	// dropOnOpen closes the connection when a session is opened, that many times: the client then
	// fails before its command was sent.
	dropOnOpen int
	// respond answers one command line: its output and whether it failed (which stops the script).
	respond func(cmd string) (out string, failed bool)
	// goOn runs the rest of a script after a failure (a RouterOS that does not stop at errors); the script
	// still counts as failed.
	goOn bool
	// exitOnFailure is the exit status sent when a script stopped at a failure; 0 otherwise.
	exitOnFailure int
	// exitOnSuccess is the exit status sent when a script ran to its end (normally 0).
	exitOnSuccess int
	// noExitStatus closes sessions without sending an exit status.
	noExitStatus bool
	// hook, if set, is called with the script before it runs; it may return an action.
	hook func(n int, script string) action
	wg   sync.WaitGroup
}

type action int

const (
	actRun            action = iota
	actHang                  // never answer this exec
	actDropBefore            // close the connection before running the script
	actDropAfterFirst        // run only the first command, print its output, then close the connection
	actWrongOutput           // print a RouterOS error and exit 0, whatever the script
)

// newTestServer starts a server with an ed25519 host key, plus extraHostKeys if given.
func newTestServer(t testing.TB, extraHostKeys ...ssh.Signer) *testServer {
	t.Helper()
	dir := t.TempDir()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, hostKey: hostKey, keyFile: filepath.Join(dir, "id_ed25519"),
		hostFile: filepath.Join(dir, "known_hosts")}
	writeFile(t, s.keyFile, string(pem.EncodeToMemory(block)))
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	s.config = &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(authorized.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	s.config.AddHostKey(hostKey)
	for _, k := range extraHostKeys {
		s.config.AddHostKey(k)
	}
	s.respond = func(string) (string, bool) { return "", false }
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.hostFile, "["+s.host()+"]:"+s.port()+" "+string(ssh.MarshalAuthorizedKey(hostKey.PublicKey())))
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }
func (s *testServer) host() string { h, _, _ := net.SplitHostPort(s.addr()); return h }
func (s *testServer) port() string { _, p, _ := net.SplitHostPort(s.addr()); return p }

func (s *testServer) close() {
	s.ln.Close()
	s.dropAll()
	s.wg.Wait()
}

// dropAll closes every open connection, as an RDS that reboots does.
func (s *testServer) dropAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// recorded returns the scripts of every exec received so far.
func (s *testServer) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.scripts...)
}

// acceptedConns counts the TCP connections accepted so far.
func (s *testServer) acceptedConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// configure changes the server's behaviour under its lock (its goroutines read it concurrently).
func (s *testServer) configure(f func(s *testServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *testServer) setHook(h func(n int, script string) action) {
	s.configure(func(s *testServer) { s.hook = h })
}

// client returns a Client for this server with cfg's other fields.
func (s *testServer) client(cfg Config) *Client {
	s.t.Helper()
	signer, err := LoadPrivateKey(s.keyFile)
	if err != nil {
		s.t.Fatal(err)
	}
	hk, err := LoadHostKey(s.hostFile)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.Address, cfg.User, cfg.Signer, cfg.HostKeyCallback = s.addr(), "csi", signer, hk
	c, err := New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, nc)
		s.accepted++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(nc)
		}()
	}
}

func (s *testServer) handleConn(nc net.Conn) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions") // fails only if the client is gone
			continue
		}
		s.mu.Lock()
		drop := s.dropOnOpen > 0
		if drop {
			s.dropOnOpen--
		}
		s.mu.Unlock()
		if drop {
			nc.Close()
			return
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go s.handleSession(nc, ch, creqs)
	}
}

// handleSession answers one exec. Its replies, writes and exit status fail only when the client has gone
// away, which the client's side of each test observes; this goroutine may outlive its test, so it cannot
// report them itself and discards them.
func (s *testServer) handleSession(nc net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil) // no PTY, no shell: RouterOS over exec only
			continue
		}
		script := string(req.Payload[4:])
		_ = req.Reply(true, nil)
		s.mu.Lock()
		s.scripts = append(s.scripts, script)
		n := len(s.scripts)
		hook := s.hook
		s.mu.Unlock()
		act := actRun
		if hook != nil {
			act = hook(n, script)
		}
		switch act {
		case actHang:
			go ssh.DiscardRequests(reqs)
			return // the channel stays open; nothing is ever sent
		case actDropBefore:
			nc.Close()
			return
		}
		out, failed := s.runScript(script, act == actDropAfterFirst)
		if act == actWrongOutput {
			out, failed = "bad command name :put (line 1 column 1)\r\n", false
		}
		_, _ = ch.Write([]byte(out))
		if act == actDropAfterFirst {
			time.Sleep(10 * time.Millisecond)
			nc.Close()
			return
		}
		s.mu.Lock()
		noExit, exitCode := s.noExitStatus, s.exitOnSuccess
		if failed {
			exitCode = s.exitOnFailure
		}
		s.mu.Unlock()
		if !noExit {
			var status [4]byte
			binary.BigEndian.PutUint32(status[:], uint32(exitCode))
			_, _ = ch.SendRequest("exit-status", false, status[:])
		}
		ch.Close()
		return
	}
}

// runScript runs the lines of script; onlyFirst stops after the first line.
func (s *testServer) runScript(script string, onlyFirst bool) (string, bool) {
	var out strings.Builder
	s.mu.Lock()
	goOn := s.goOn
	s.mu.Unlock()
	anyFailed := false
	for _, line := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
		if v, ok := strings.CutPrefix(line, ":put "); ok {
			out.WriteString(strings.Trim(v, `"`) + "\r\n")
		} else {
			s.mu.Lock()
			respond := s.respond
			s.mu.Unlock()
			text, failed := respond(line)
			out.WriteString(text)
			if failed && !goOn {
				return out.String(), true
			}
			anyFailed = anyFailed || failed
		}
		if onlyFirst {
			break
		}
	}
	return out.String(), anyFailed
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
