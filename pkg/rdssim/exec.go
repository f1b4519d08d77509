package rdssim

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// execCtx is what a running command may need besides its statement.
type execCtx struct {
	ctx   context.Context
	texts []string // the command's canonical and written text, for fault matching
	emit  func(string) error
	// allocated is the pool's allocated bytes, when a command measured them before taking the state lock.
	allocated      int64
	allocatedKnown bool
}

// exec runs one exec request's script and reports its exit status. A
// dropped connection or a hang sends no status, as a crashed box would not.
func (s *Simulator) exec(ctx context.Context, conn *ssh.ServerConn, ch ssh.Channel, script string) {
	defer ch.Close()
	status, ok := s.runScript(ctx, conn, ch, conn.User(), script)
	// What the script changed is on disk before the client hears that it ended (see persist).
	if err := s.persistLatest(); err != nil && ok {
		_, _ = io.WriteString(ch, consoleText(failure("can not save state: %v", err))+crlf)
		status = 1
	}
	if !ok {
		return
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
}

// runScript parses the whole script first (a parse error runs nothing), then
// runs its commands in order and stops at the first runtime error (or, with
// OnErrorContinue, prints it and goes on). Output and errors both go to stdout.
func (s *Simulator) runScript(ctx context.Context, conn io.Closer, out io.Writer, user, script string) (int, bool) {
	s.record(user, script, true)
	// One line per exec request, so that a log reader (the benchmark, a user) can count round trips apart
	// from the commands each one ran.
	s.logf("rds-sim: exec user=%s", user)
	// The round trip is paid once per exec, before anything runs, whether the script parses or not.
	if !s.wait(ctx, s.execDelay()) {
		return 0, false
	}
	send := func(text string) error {
		if text == "" {
			return nil
		}
		_, err := io.WriteString(out, text)
		return err
	}
	stmts, err := parseScriptWith(script, parseOptions{noIf: s.cfg.ScriptIf == ScriptIfNo,
		noAllowHost: s.cfg.AllowHostName == AllowHostAbsent})
	if err != nil {
		s.record(user, strings.TrimSpace(script), false)
		s.logf("rds-sim: rejected user=%s %s: %s", user, logText(script), err)
		_ = send(err.Error() + crlf)
		return s.failureStatus(script), true
	}
	r := &scriptRun{ctx: ctx, conn: conn, user: user, send: send}
	if stopped, ok := s.runStatements(r, stmts); stopped || !ok {
		return r.status, ok
	}
	if r.failed != nil {
		return s.failureStatus(r.failed...), true
	}
	return 0, true
}

// scriptRun is one exec's script while it runs.
type scriptRun struct {
	ctx    context.Context
	conn   io.Closer
	user   string
	send   func(string) error
	failed []string // the texts of the first failed command, when the script goes on after it
	status int      // the exit status, once stopped
}

// runStatements runs stmts in order (a script, or the block an :if chose). stopped: the script ends here
// with r.status (a runtime error); ok false: the exec ends with no status (a dropped connection, a hang).
func (s *Simulator) runStatements(r *scriptRun, stmts []*statement) (stopped, ok bool) {
	for _, st := range stmts {
		texts := []string{st.canonical, st.text}
		if !s.wait(r.ctx, s.commandDelay(texts...)) {
			return true, false
		}
		if _, hit := s.takeFault(FaultDropBefore, texts...); hit {
			s.logf("rds-sim: fault drop-before user=%s %s", r.user, logText(st.canonical))
			r.conn.Close()
			return true, false
		}
		if _, hit := s.takeFault(FaultHang, texts...); hit {
			s.logf("rds-sim: fault hang user=%s %s", r.user, logText(st.canonical))
			// What ran before the hang is durable on a real box, also if it is killed while hanging.
			_ = s.persistLatest()
			<-r.ctx.Done()
			return true, false
		}
		s.record(r.user, st.canonical, false)
		s.logf("rds-sim: cmd user=%s %s", r.user, logText(st.canonical))
		if st.spec.id == cmdIf {
			block := st.otherwise
			if truthy(st.cond.eval(s, s.published())) {
				block = st.then
			}
			if stopped, ok := s.runStatements(r, block); stopped || !ok {
				return stopped, ok
			}
			continue
		}
		result, err := s.run(&execCtx{ctx: r.ctx, texts: texts, emit: r.send}, st)
		if _, hit := s.takeFault(FaultDropAfter, texts...); hit {
			s.logf("rds-sim: fault drop-after user=%s %s", r.user, logText(st.canonical))
			r.conn.Close()
			return true, false
		}
		if serr := r.send(result); serr != nil {
			return true, false
		}
		if err != nil {
			_ = r.send(consoleText(err) + crlf)
			if s.cfg.OnError != OnErrorContinue {
				r.status = s.failureStatus(texts...)
				return true, true
			}
			if r.failed == nil {
				r.failed = texts
			}
		}
	}
	return false, true
}

// failureStatus is 1, or 0 while an exit-zero fault matches.
func (s *Simulator) failureStatus(texts ...string) int {
	if _, hit := s.takeFault(FaultExitZero, texts...); hit {
		return 0
	}
	return 1
}

// consoleText is the line the console prints for err: a RouterOS message as
// is, anything unexpected as a failure.
func consoleText(err error) string {
	var se *scriptError
	if errors.As(err, &se) {
		return se.msg
	}
	return "failure: " + err.Error()
}

// logText keeps each log entry on one line.
func logText(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\n\r\t") {
		return strconv.Quote(s)
	}
	return s
}

// run dispatches one command.
func (s *Simulator) run(x *execCtx, st *statement) (string, error) {
	switch st.spec.id {
	case cmdPut:
		return st.put + crlf, nil
	case cmdDiskFind, cmdFileFind, cmdSubvolumeFind, cmdFilesystemFind:
		// A find on its own returns a list to a script and prints nothing.
		return "", nil
	case cmdDiskPrint:
		return s.print(st, func(x *state) []item { return s.diskItemsWhere(x, st.where) }, []string{"slot", "type", "fs", "size", "free", "file-path"}), nil
	case cmdFilePrint:
		return s.print(st, func(x *state) []item { return s.fileItemsWhere(x, st.where, true) }, []string{"name", "type", "size", "last-modified"}), nil
	case cmdSubvolumePrint:
		return s.print(st, s.subvolumeItems, []string{"name", "fs", "parent", "read-only", "creation-time"}), nil
	case cmdFilesystemPrint:
		return s.print(st, s.filesystemItems, []string{"label", "devs", "data", "meta", "system"}), nil
	case cmdDiskAdd:
		return "", s.diskAdd(x, st)
	case cmdDiskSet:
		return "", s.diskSet(x, st)
	case cmdDiskRemove:
		return "", s.diskRemove(st)
	case cmdDiskMonitorTraffic:
		return s.monitorTraffic(x, st)
	case cmdFileRemove:
		return "", s.fileRemove(st)
	case cmdSubvolumeAdd:
		return "", s.subvolumeAdd(x, st)
	case cmdSubvolumeRemove:
		return "", s.subvolumeRemove(st)
	}
	if out, handled, err := s.runSystem(st); handled { // system.go
		return out, err
	}
	return "", failure("unsupported command")
}

func (s *Simulator) print(st *statement, list func(*state) []item, columns []string) string {
	items := filter(list(s.published()), st.where)
	switch {
	case st.words["terse"]:
		return formatTerse(st.menu.flags, items)
	case st.words["detail"]:
		return formatDetail(st.menu.flags, items, s.cfg.Width)
	default:
		return formatTable(st.menu.flags, items, columns)
	}
}

func filter(items []item, e expr) []item {
	if e == nil {
		return items
	}
	var out []item
	for i := range items {
		if e.match(&items[i]) {
			out = append(out, items[i])
		}
	}
	return out
}

// resolve turns a numbers reference into items: every match of a find, or
// each name, index ("3") or internal id ("*3"). A name that matches nothing
// is "no such item"; a find that matches nothing is simply empty.
func resolve(ref *itemRef, items []item) ([]item, error) {
	if ref == nil {
		return nil, errNoSuchItem
	}
	if ref.isFind {
		return filter(items, ref.find), nil
	}
	var out []item
	seen := map[int]bool{}
	for _, n := range ref.names {
		found := -1
		for i := range items {
			if matchesName(&items[i], n) {
				found = i
				break
			}
		}
		if found < 0 {
			return nil, errNoSuchItem
		}
		if !seen[found] {
			seen[found] = true
			out = append(out, items[found])
		}
	}
	return out, nil
}

func matchesName(it *item, n string) bool {
	if idx, err := strconv.Atoi(n); err == nil && idx >= 0 {
		return it.index == idx
	}
	if hex, ok := strings.CutPrefix(n, "*"); ok {
		v, err := strconv.ParseInt(hex, 16, 64)
		return err == nil && int64(it.index) == v
	}
	return strings.TrimPrefix(it.name, "/") == strings.TrimPrefix(n, "/")
}

// mutate runs fn on a copy of the state under the write lock and publishes
// the copy if fn changed it. Whatever fn changed is kept even if it then
// fails, as RouterOS keeps the items a multi-item command handled before its
// error. state.json is written once per exec, after the script and before
// its exit status (exec, persist), not under the lock.
func (s *Simulator) mutate(fn func(next *state) (changed bool, err error)) error {
	s.mu.Lock()
	next := s.st.clone()
	changed, err := fn(next)
	if changed {
		s.st = next
		s.version++
	}
	s.mu.Unlock()
	return err
}

// published is the current state. It is never changed once published (a mutation swaps in a changed
// copy), so a reader lists it without holding the lock: a print's stats and walks of the pool do not hold
// up mutations.
func (s *Simulator) published() *state {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// persistLatest writes the newest state unless state.json already holds it.
func (s *Simulator) persistLatest() error {
	s.mu.RLock()
	v := s.version
	s.mu.RUnlock()
	return s.persist(v)
}

// persist returns once state.json holds version or a later one. Writes are
// group commits: an exec that waited for another's write finds its own
// changes already written by it, or writes the newest state for every exec
// waiting behind it; a script of several mutations is written once. (Before, each mutation marshalled and fsynced
// the whole state under the state lock: 1,000 volumes made every create
// wait for everyone else's JSON and two fsyncs.)
func (s *Simulator) persist(version uint64) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.saved >= version {
		return s.saveErr
	}
	s.mu.RLock()
	st, latest := s.st, s.version
	s.mu.RUnlock()
	s.saveErr = st.save(s.cfg.DataDir) // st is never changed once published, so no lock is needed
	s.saved = latest
	return s.saveErr
}
