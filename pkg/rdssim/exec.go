package rdssim

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// execCtx is what a running command may need besides its statement.
type execCtx struct {
	ctx   context.Context
	texts []string // the command's canonical and written text, for fault matching
	emit  func(string) error
}

// exec runs one exec request's script and reports its exit status. A
// dropped connection or a hang sends no status, as a crashed box would not.
func (s *Simulator) exec(ctx context.Context, conn *ssh.ServerConn, ch ssh.Channel, script string) {
	defer ch.Close()
	status, ok := s.runScript(ctx, conn, ch, conn.User(), script)
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
	send := func(text string) error {
		if text == "" {
			return nil
		}
		_, err := io.WriteString(out, text)
		return err
	}
	stmts, err := parseScript(script)
	if err != nil {
		s.record(user, strings.TrimSpace(script), false)
		s.logf("rds-sim: rejected user=%s %s: %s", user, logText(script), err)
		_ = send(err.Error() + crlf)
		return s.failureStatus(script), true
	}
	failed := []string(nil) // the texts of the first failed command, when the script goes on after it
	for _, st := range stmts {
		texts := []string{st.canonical, st.text}
		if d := s.commandDelay(texts...); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return 0, false
			}
		}
		if _, hit := s.takeFault(FaultDropBefore, texts...); hit {
			s.logf("rds-sim: fault drop-before user=%s %s", user, logText(st.canonical))
			conn.Close()
			return 0, false
		}
		if _, hit := s.takeFault(FaultHang, texts...); hit {
			s.logf("rds-sim: fault hang user=%s %s", user, logText(st.canonical))
			<-ctx.Done()
			return 0, false
		}
		s.record(user, st.canonical, false)
		s.logf("rds-sim: cmd user=%s %s", user, logText(st.canonical))
		result, err := s.run(&execCtx{ctx: ctx, texts: texts, emit: send}, st)
		if _, hit := s.takeFault(FaultDropAfter, texts...); hit {
			s.logf("rds-sim: fault drop-after user=%s %s", user, logText(st.canonical))
			conn.Close()
			return 0, false
		}
		if serr := send(result); serr != nil {
			return 0, false
		}
		if err != nil {
			_ = send(consoleText(err) + crlf)
			if s.cfg.OnError != OnErrorContinue {
				return s.failureStatus(texts...), true
			}
			if failed == nil {
				failed = texts
			}
		}
	}
	if failed != nil {
		return s.failureStatus(failed...), true
	}
	return 0, true
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
		return s.print(st, s.diskItems, []string{"slot", "type", "fs", "size", "free", "file-path"}), nil
	case cmdFilePrint:
		return s.print(st, s.fileItems, []string{"name", "type", "size", "last-modified"}), nil
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
	s.mu.RLock()
	items := list(s.st)
	s.mu.RUnlock()
	items = filter(items, st.where)
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

// mutate runs fn on a copy of the state under the write lock. Whatever fn
// changed is saved and kept even if it then fails, as RouterOS keeps the
// items a multi-item command handled before its error.
func (s *Simulator) mutate(fn func(next *state) (changed bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	changed, err := fn(next)
	if changed {
		if serr := next.save(s.cfg.DataDir); serr != nil {
			return failure("can not save state: %v", serr)
		}
		s.st = next
	}
	return err
}
