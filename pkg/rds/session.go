package rds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/klog/v2"
)

// execResult is what one exec printed and how it ended.
type execResult struct {
	stdout, stderr string
	// exit is the exit status, or -1 when the RDS closed the session without sending one.
	exit int
}

func (r execResult) exitMissing() bool { return r.exit < 0 }

// output is stdout followed by stderr (RouterOS prints its errors on stdout; stderr is kept in case).
func (r execResult) output() string {
	if r.stderr == "" {
		return r.stdout
	}
	return r.stdout + "\n" + r.stderr
}

// execRequest is one exec to run: a script and what is known about it.
type execRequest struct {
	script string
	// pureRead: running it twice is harmless, so it is retried after a dropped connection even if it
	// was already sent.
	pureRead bool
	// finished tells from the output whether the script provably ran to its end (its last marker is
	// there). Without such proof, a session that ended without an exit status is checked for a dropped
	// connection.
	finished func(execResult) bool
}

// exec runs one script in its own session, redialling once when the connection turns out to be gone
// before the script was sent (or at any point for a pure read). Its errors wrap ErrUnavailable.
//
// The wait for a free session is bounded by ctx alone: CommandTimeout bounds the exec itself and starts
// once the session is ours, so a command queued behind a burst does not time out before it was sent.
func (c *Client) exec(ctx context.Context, req execRequest) (execResult, error) {
	if err := c.sessions.acquire(ctx); err != nil {
		return execResult{}, c.ctxError(ctx, "waiting for a free SSH session to the RDS")
	}
	defer c.sessions.release()
	ctx, cancel := c.withCommandTimeout(ctx)
	defer cancel()
	retried := false
	for {
		cn, err := c.getConn(ctx)
		if err != nil {
			return execResult{}, err
		}
		res, sent, err := c.session(ctx, cn, req.script)
		if err == nil && res.exitMissing() && (req.finished == nil || !req.finished(res)) && cn.lostWithin(lostGrace) {
			err, sent = errors.New("connection closed before the command finished"), true
		}
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			if errors.Is(context.Cause(ctx), errCommandTimeout) {
				go c.checkAlive(cn)
			}
			return execResult{}, c.ctxError(ctx, "running a command on the RDS")
		}
		if errors.Is(err, ErrProtocol) {
			return execResult{}, err // the answer was unusable, the connection is fine
		}
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) || errors.Is(err, errExecRefused) {
			// The connection is fine; the RDS refused one more session or the exec request. Here and
			// below the kind decides what the caller does; the SSH error is kept as text to explain it.
			return execResult{}, fmt.Errorf("the RDS refused to run a command: %s: %w", err.Error(), ErrUnavailable)
		}
		c.drop(cn)
		if !retried && (!sent || req.pureRead) {
			retried = true
			klog.V(2).InfoS("SSH connection to the RDS lost; redialling", "sent", sent, "err", err)
			continue
		}
		if sent {
			return execResult{}, fmt.Errorf("the connection to the RDS was lost after the command was sent, so "+
				"its outcome is unknown (read the state to find out): %s: %w", err.Error(), ErrUnavailable)
		}
		return execResult{}, fmt.Errorf("the connection to the RDS was lost: %s: %w", err.Error(), ErrUnavailable)
	}
}

// errExecRefused: the RDS answered the exec request with a refusal.
var errExecRefused = errors.New("exec request refused")

// lostWithin reports whether the connection ends within d.
func (cn *conn) lostWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-cn.dead:
		return true
	case <-t.C:
		return false
	}
}

// session runs script in a new session on cn. A nil error means the session ended normally (with or
// without an exit status). Otherwise sent tells whether the script may have reached the RDS.
func (c *Client) session(ctx context.Context, cn *conn, script string) (res execResult, sent bool, err error) {
	type outcome struct {
		res  execResult
		sent bool
		err  error
	}
	done := make(chan outcome, 1)
	var (
		mu        sync.Mutex
		sess      *ssh.Session
		abandoned bool
	)
	go func() {
		s, err := cn.cl.NewSession()
		if err != nil {
			done <- outcome{err: err}
			return
		}
		mu.Lock()
		if abandoned {
			mu.Unlock()
			s.Close()
			return
		}
		sess = s
		mu.Unlock()
		// Closed before the outcome is reported, so that a session counted free by the queue is closed
		// on the wire too (the next one may open at once).
		closed := false
		closeSession := func() {
			if !closed {
				closed = true
				s.Close()
			}
		}
		defer closeSession()
		var stdout, stderr limitedBuffer
		s.Stdout, s.Stderr = &stdout, &stderr
		if err := s.Start(script); err != nil {
			if strings.HasPrefix(err.Error(), "ssh: command ") && strings.HasSuffix(err.Error(), " failed") {
				// The RDS answered the exec request with a refusal: nothing ran.
				err = fmt.Errorf("%w: %s", errExecRefused, err.Error())
			}
			closeSession()
			done <- outcome{sent: true, err: err}
			return
		}
		err = s.Wait()
		r := execResult{stdout: stdout.String(), stderr: stderr.String()}
		var exitErr *ssh.ExitError
		var missing *ssh.ExitMissingError
		switch {
		case err == nil:
		case errors.As(err, &exitErr):
			r.exit = exitErr.ExitStatus()
			err = nil
		case errors.As(err, &missing):
			r.exit = -1
			err = nil
		}
		if err == nil && (stdout.overflow || stderr.overflow) {
			err = fmt.Errorf("the command printed more than %d bytes: %w", maxOutput, ErrProtocol)
		}
		closeSession()
		done <- outcome{res: r, sent: true, err: err}
	}()
	select {
	case o := <-done:
		return o.res, o.sent, o.err
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		opened := sess != nil
		if opened {
			sess.Close() // a hung command must not hold the caller: close its channel and walk away
		}
		mu.Unlock()
		return execResult{}, opened, ctx.Err()
	}
}

// checkAlive runs after a command timed out: if the connection cannot even run `:put`, it is dead (a
// half-open TCP connection, an RDS that rebooted) and is dropped so that the next command redials
// instead of timing out again.
func (c *Client) checkAlive(cn *conn) {
	if !cn.probing.TryLock() {
		return
	}
	defer cn.probing.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DialTimeout)
	defer cancel()
	res, _, err := c.session(ctx, cn, pingScript)
	if err == nil && bytes.Contains([]byte(res.stdout), []byte(pingWord)) {
		return
	}
	klog.InfoS("the RDS connection does not answer after a command timed out; dropping it", "address", c.cfg.Address, "err", err)
	c.drop(cn)
}

// limitedBuffer keeps at most maxOutput bytes and remembers whether more came.
type limitedBuffer struct {
	bytes.Buffer
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); len(p) > room {
		b.overflow = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

var _ io.Writer = (*limitedBuffer)(nil)
