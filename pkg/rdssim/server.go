package rdssim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/klog/v2"
)

// Simulator is a simulated RDS: an SSH server speaking the RouterOS subset
// the driver uses, backed by real sparse files under DataDir.
type Simulator struct {
	cfg            Config
	poolName       string
	hostSigner     ssh.Signer
	authorized     map[string]bool // ssh wire-format public keys
	clientKeyFile  string
	knownHostsFile string

	mu      sync.RWMutex // guards st and version: a mutation holds it only while it changes a copy
	st      *state       // never changed once published: a mutation swaps in a changed copy
	version uint64       // counts published states

	slotLocks keyLocks // per disk slot and pool path: file work outside the state lock (keylock.go)
	// fileHook, when set (tests), runs after a command's file work and before its commit.
	fileHook func(rel string)

	alloc   allocCache
	saveMu  sync.Mutex // one writer of state.json at a time; see persist
	saved   uint64     // the version state.json holds
	saveErr error      // the outcome of the last write

	fmu            sync.Mutex // faults, latency and the command log
	faults         []*activeFault
	latency        time.Duration // per exec: the round trip
	commandLatency time.Duration // per command: RouterOS's own work
	// sleep waits d or until ctx ends (false then); tests replace it to count what is charged.
	sleep    func(ctx context.Context, d time.Duration) bool
	commands []string
	scripts  []string
	logMu    sync.Mutex

	lmu     sync.Mutex // listener and connections
	ln      net.Listener
	conns   map[*ssh.ServerConn]struct{}
	closed  bool
	started bool
	wg      sync.WaitGroup
}

// New prepares a simulator: it creates or loads the host key, the client key
// (unless AuthorizedKeysFile is set) and the state in cfg.DataDir. It does not
// listen yet.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.User = orDefault(cfg.User, defaultUser)
	if cfg.Width == 0 {
		cfg.Width = defaultWidth
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("rdssim: data dir: %w", err)
	}
	st, err := loadState(cfg.DataDir, cfg)
	if err != nil {
		return nil, fmt.Errorf("rdssim: %w", err)
	}
	s := &Simulator{
		cfg:            cfg,
		poolName:       st.Pool.Name,
		st:             st,
		authorized:     map[string]bool{},
		knownHostsFile: filepath.Join(cfg.DataDir, knownHostsName),
		conns:          map[*ssh.ServerConn]struct{}{},
		faults:         activate(cfg.Faults),
		latency:        cfg.Latency,
		commandLatency: cfg.CommandLatency,
		sleep:          sleepCtx,
	}
	if err := os.MkdirAll(s.poolDir(), 0o755); err != nil {
		return nil, fmt.Errorf("rdssim: pool dir: %w", err)
	}
	if err := st.save(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("rdssim: write state: %w", err)
	}
	if s.hostSigner, _, err = loadOrCreateKey(filepath.Join(cfg.DataDir, hostKeyFile), "rds-sim host"); err != nil {
		return nil, fmt.Errorf("rdssim: host key: %w", err)
	}
	var keys []ssh.PublicKey
	if cfg.AuthorizedKeysFile != "" {
		if keys, err = loadAuthorizedKeys(cfg.AuthorizedKeysFile); err != nil {
			return nil, fmt.Errorf("rdssim: %w", err)
		}
	} else {
		pub, keyFile, err := ensureClientKey(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("rdssim: client key: %w", err)
		}
		keys, s.clientKeyFile = []ssh.PublicKey{pub}, keyFile
	}
	for _, k := range keys {
		s.authorized[string(k.Marshal())] = true
	}
	return s, nil
}

func (s *Simulator) serverConfig() *ssh.ServerConfig {
	conf := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() == s.cfg.User && s.authorized[string(key.Marshal())] {
				return &ssh.Permissions{}, nil
			}
			klog.V(2).InfoS("rds-sim refused a login", "user", meta.User(), "remote", meta.RemoteAddr().String(),
				"key", ssh.FingerprintSHA256(key))
			return nil, fmt.Errorf("public key of %q not authorized", meta.User())
		},
		ServerVersion: "SSH-2.0-ROSSSH",
	}
	conf.AddHostKey(s.hostSigner)
	return conf
}

// Start listens on cfg.Listen, writes DataDir/known_hosts for the bound
// address, re-exports exported disks through the Exporter and serves in the
// background. It returns once connections are being accepted.
func (s *Simulator) Start() error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed || s.started {
		return errors.New("rdssim: Start called twice or after Close")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("rdssim: listen: %w", err)
	}
	line, err := knownHostsLine(ln.Addr().String(), s.hostSigner.PublicKey())
	if err == nil {
		err = writeFileAtomic(s.knownHostsFile, []byte(line), 0o644)
	}
	if err == nil {
		err = s.exportAll()
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("rdssim: start: %w", err)
	}
	s.ln, s.started = ln, true
	conf := s.serverConfig()
	s.wg.Add(1)
	go s.acceptLoop(ln, conf)
	klog.V(1).InfoS("rds-sim listening", "address", ln.Addr().String(), "dataDir", s.cfg.DataDir)
	return nil
}

// Addr is the address actually bound (host:port); empty before Start.
func (s *Simulator) Addr() string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening, drops every connection, waits for running commands
// to end and withdraws NVMe exports.
func (s *Simulator) Close() error {
	s.lmu.Lock()
	if s.closed {
		s.lmu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.lmu.Unlock()
	s.wg.Wait()
	if uerr := s.unexportAll(); uerr != nil && err == nil {
		err = uerr
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// ClientKeyFile is the generated private key the simulator accepts; empty
// when an authorized keys file was given.
func (s *Simulator) ClientKeyFile() string { return s.clientKeyFile }

// KnownHostsFile holds the host key as a known_hosts line, written by Start.
func (s *Simulator) KnownHostsFile() string { return s.knownHostsFile }

// HostPublicKey is the simulator's persistent host key.
func (s *Simulator) HostPublicKey() ssh.PublicKey { return s.hostSigner.PublicKey() }

// Commands returns every command run so far, in order, with its menu path
// spelled canonically ("/disk add ...", ":put ..."). A script that failed to
// parse ran nothing; it is recorded whole, so a test asserting that nothing
// reached the box also catches rejected scripts.
func (s *Simulator) Commands() []string {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return append([]string(nil), s.commands...)
}

// Scripts returns the text of every exec request received, in order.
func (s *Simulator) Scripts() []string {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return append([]string(nil), s.scripts...)
}

// ResetCommands forgets the commands and scripts recorded so far.
func (s *Simulator) ResetCommands() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.commands, s.scripts = nil, nil
}

func (s *Simulator) record(user, text string, script bool) {
	s.fmu.Lock()
	if script {
		s.scripts = append(s.scripts, text)
	} else {
		s.commands = append(s.commands, text)
	}
	s.fmu.Unlock()
}

func (s *Simulator) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.cfg.Log, format+"\n", args...)
}

func (s *Simulator) acceptLoop(ln net.Listener, conf *ssh.ServerConfig) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				klog.ErrorS(err, "rds-sim accept failed")
			}
			return
		}
		s.wg.Add(1)
		go s.serveConn(nc, conf)
	}
}

func (s *Simulator) serveConn(nc net.Conn, conf *ssh.ServerConfig) {
	defer s.wg.Done()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	conn, chans, reqs, err := ssh.NewServerConn(nc, conf)
	if err != nil {
		klog.V(2).InfoS("rds-sim handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.lmu.Lock()
	if s.closed {
		s.lmu.Unlock()
		conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.lmu.Unlock()
	defer func() {
		s.lmu.Lock()
		delete(s.conns, conn)
		s.lmu.Unlock()
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = conn.Wait()
		cancel()
	}()
	// RouterOS does not answer keepalive@openssh.com; every global request
	// gets a plain "false".
	go ssh.DiscardRequests(reqs)

	var sessions sync.WaitGroup
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only session channels are supported")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			s.serveSession(ctx, conn, ch, chReqs)
		}()
	}
	sessions.Wait()
}

type execPayload struct{ Command string }

// serveSession answers one session channel: a single "exec" runs a script;
// "shell", "pty-req" and everything else are refused, since the driver never
// needs them.
func (s *Simulator) serveSession(connCtx context.Context, conn *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	ctx, cancel := context.WithCancel(connCtx)
	defer cancel()
	done := make(chan struct{})
	started := false
	for req := range reqs {
		if req.Type != "exec" || started {
			_ = req.Reply(false, nil)
			continue
		}
		var p execPayload
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			_ = req.Reply(false, nil)
			continue
		}
		_ = req.Reply(true, nil)
		started = true
		go func() {
			defer close(done)
			s.exec(ctx, conn, ch, p.Command)
		}()
	}
	// The client closed the channel (or the connection went away): a hung
	// command may now give up.
	cancel()
	if started {
		<-done
	}
	ch.Close()
}
