package rds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/klog/v2"
)

// Config configures a Client.
type Config struct {
	// Address is host:port of the RDS's SSH service.
	Address string
	// User is the RouterOS user the driver logs in as, with public-key authentication.
	User   string
	Signer ssh.Signer
	// HostKeyCallback checks the RDS's host key; see LoadHostKey.
	HostKeyCallback ssh.HostKeyCallback
	// DialTimeout bounds connecting and the SSH handshake (default 10s).
	DialTimeout time.Duration
	// CommandTimeout bounds each exec when the caller's context has no earlier deadline (default 30s).
	CommandTimeout time.Duration
	// OneCommandPerExec runs every command as its own exec instead of one script per Run, for firmware
	// on which multi-command exec does not behave (it is unverified on hardware).
	OneCommandPerExec bool
	// MaxSessions bounds the exec sessions open at once on the connection (default 8; OpenSSH allows 10
	// per connection, RouterOS's limit is unknown). Callers beyond it wait in arrival order, within their
	// context; CommandTimeout starts only once a session is theirs.
	MaxSessions int
	// Observe, if set, is called once per exec with its verb ("disk.add", "disk.print", "script", "ping",
	// ...), its outcome ("ok", "error" or "unavailable") and its duration.
	Observe func(verb, outcome string, d time.Duration)
}

const (
	defaultDialTimeout    = 10 * time.Second
	defaultCommandTimeout = 30 * time.Second
	defaultMaxSessions    = 8
	// maxOutput bounds what one exec may print; a listing of thousands of disks is far below it.
	maxOutput = 32 << 20
	// lostGrace is how long to wait, after a session ended without an exit status and without proof in
	// its output that it finished, for the connection to report that it died (the SSH library closes
	// the channels of a dead connection a moment before it reports the connection closed).
	lostGrace = 100 * time.Millisecond
)

// Client runs RouterOS commands on one RDS over one SSH connection, dialled on first use and redialled
// after the RDS drops it. It is safe for concurrent use.
type Client struct {
	cfg      Config
	sessions *sessionQueue
	reads    sharedReads

	mu           sync.Mutex
	cur          *conn
	dialing      *dialCall
	closed       bool
	hostKeyAlgos []string // set after the RDS offered a key type that is not pinned

	// goesOn is set once a script showed that this RDS goes on after a failed command: from then on every
	// command is its own exec, so that no command runs after one it depends on has failed.
	goesOn atomic.Bool
}

type conn struct {
	cl   *ssh.Client
	dead chan struct{} // closed when the connection has ended
	// probing is held by the liveness check after a timed-out command, so only one runs at a time.
	probing sync.Mutex
}

type dialCall struct {
	done chan struct{}
	cn   *conn
	err  error
}

// New checks cfg and returns a Client. It does not connect yet.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Address == "":
		return nil, fmt.Errorf("RDS address is empty: %w", ErrInvalid)
	case cfg.User == "":
		return nil, fmt.Errorf("RDS user is empty: %w", ErrInvalid)
	case cfg.Signer == nil:
		return nil, fmt.Errorf("no SSH key to log in to the RDS with: %w", ErrInvalid)
	case cfg.HostKeyCallback == nil:
		return nil, fmt.Errorf("no host key check for the RDS (see LoadHostKey): %w", ErrInvalid)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("RDS address %q must be host:port: %w", cfg.Address, ErrInvalid)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = defaultCommandTimeout
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = defaultMaxSessions
	}
	return &Client{cfg: cfg, sessions: newSessionQueue(cfg.MaxSessions)}, nil
}

// Close closes the connection. Commands in flight fail; later ones fail with ErrUnavailable.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cn := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cn != nil {
		return cn.cl.Close()
	}
	return nil
}

// getConn returns the current connection, dialling one if there is none. Concurrent callers share one
// dial, and each stops waiting when its own context ends.
func (c *Client) getConn(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, fmt.Errorf("RDS client is closed: %w", ErrUnavailable)
	case c.cur != nil:
		cn := c.cur
		c.mu.Unlock()
		return cn, nil
	case c.dialing != nil:
		call := c.dialing
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.cn, call.err
		case <-ctx.Done():
			return nil, c.ctxError(ctx, "waiting for the connection to the RDS")
		}
	}
	call := &dialCall{done: make(chan struct{})}
	c.dialing = call
	c.mu.Unlock()
	// The dial is shared by every waiter, so it runs on its own, bounded by DialTimeout rather than by
	// the context of whoever started it.
	go c.runDial(context.WithoutCancel(ctx), call)
	select {
	case <-call.done:
		return call.cn, call.err
	case <-ctx.Done():
		return nil, c.ctxError(ctx, "connecting to the RDS")
	}
}

func (c *Client) runDial(ctx context.Context, call *dialCall) {
	cn, err := c.dial(ctx)
	c.mu.Lock()
	c.dialing = nil
	if err == nil {
		if c.closed {
			cn.cl.Close()
			cn, err = nil, fmt.Errorf("RDS client is closed: %w", ErrUnavailable)
		} else {
			c.cur = cn
		}
	}
	c.mu.Unlock()
	call.cn, call.err = cn, err
	close(call.done)
}

// drop forgets cn (if it is still the current connection) and closes it, so the next command redials.
func (c *Client) drop(cn *conn) {
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	c.mu.Unlock()
	cn.cl.Close()
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	cn, err := c.dialOnce(ctx)
	var hk *HostKeyError
	if errors.As(err, &hk) {
		// The RDS may hold several host keys and offer one of a type that is not pinned: ask for the
		// pinned types, once.
		c.mu.Lock()
		retry := c.hostKeyAlgos == nil && !pinnedType(hk)
		if retry {
			c.hostKeyAlgos = hostKeyAlgorithms(hk.Want)
		}
		c.mu.Unlock()
		if retry {
			cn, err = c.dialOnce(ctx)
		}
	}
	return cn, err
}

func pinnedType(hk *HostKeyError) bool {
	for _, k := range hk.Want {
		if k.Type() == hk.Got.Type() {
			return true
		}
	}
	return false
}

func (c *Client) dialOnce(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Address)
	if err != nil {
		// ErrUnavailable decides (even for the dial timeout); the dialer's error explains it.
		return nil, fmt.Errorf("connecting to the RDS at %s: %s: %w", c.cfg.Address, err.Error(), ErrUnavailable)
	}
	// The handshake has no context of its own: a deadline on the socket bounds it.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	c.mu.Lock()
	algos := c.hostKeyAlgos
	c.mu.Unlock()
	sc, chans, reqs, err := ssh.NewClientConn(nc, c.cfg.Address, &ssh.ClientConfig{
		User:              c.cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(c.cfg.Signer)},
		HostKeyCallback:   c.cfg.HostKeyCallback,
		HostKeyAlgorithms: algos,
		Timeout:           c.cfg.DialTimeout,
	})
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			sc.Close()
			err = ctx.Err()
		}
		return nil, c.dialError(err)
	}
	_ = nc.SetDeadline(time.Time{})
	cn := &conn{cl: ssh.NewClient(sc, chans, reqs), dead: make(chan struct{})}
	go func() {
		err := cn.cl.Wait()
		close(cn.dead)
		c.mu.Lock()
		if c.cur == cn {
			c.cur = nil
		}
		c.mu.Unlock()
		klog.V(2).InfoS("SSH connection to the RDS ended", "address", c.cfg.Address, "err", err)
	}()
	klog.V(2).InfoS("connected to the RDS", "address", c.cfg.Address, "user", c.cfg.User, "duration", time.Since(start))
	return cn, nil
}

func (c *Client) dialError(err error) error {
	var hk *HostKeyError
	switch {
	case errors.As(err, &hk):
		return fmt.Errorf("%w: %w", ErrHostKeyMismatch, hk)
	case isAuthFailure(err):
		return fmt.Errorf("logging in to the RDS at %s as %q with its SSH key was refused (is the key in the "+
			"user's authorized keys on the RDS?): %s: %w", c.cfg.Address, c.cfg.User, err.Error(), ErrPermission)
	}
	return fmt.Errorf("SSH handshake with the RDS at %s: %s: %w", c.cfg.Address, err.Error(), ErrUnavailable)
}

func isAuthFailure(err error) bool {
	var se *ssh.ServerAuthError
	if errors.As(err, &se) {
		return true
	}
	return err != nil && (strings.Contains(err.Error(), "unable to authenticate") ||
		strings.Contains(err.Error(), "no supported methods remain"))
}

// ctxError reports that the caller's context ended (wrapping its error, so errors.Is(err,
// context.DeadlineExceeded) holds) or that the command timeout fired (the RDS did not answer in time).
func (c *Client) ctxError(ctx context.Context, doing string) error {
	if cause := context.Cause(ctx); errors.Is(cause, errCommandTimeout) {
		return fmt.Errorf("%s: no answer within %v: %w", doing, c.cfg.CommandTimeout, ErrUnavailable)
	}
	return fmt.Errorf("%s: %w: %w", doing, ErrUnavailable, ctx.Err())
}

var errCommandTimeout = errors.New("command timeout")

// withCommandTimeout bounds one exec by CommandTimeout unless ctx already ends sooner; its expiry is told
// apart from the caller's own deadline by the context's cause.
func (c *Client) withCommandTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.cfg.CommandTimeout, errCommandTimeout)
}
