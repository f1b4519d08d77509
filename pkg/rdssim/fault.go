package rdssim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a failure the simulator can inject.
type FaultKind string

const (
	FaultLatency    FaultKind = "latency"     // delay each matching command by Fault.Latency (on top of CommandLatency)
	FaultDiskFull   FaultKind = "disk-full"   // every allocation fails: "failure: not enough space"
	FaultDropBefore FaultKind = "drop-before" // close the SSH connection before the command runs
	FaultDropAfter  FaultKind = "drop-after"  // run the command, then close the connection before its output is sent
	FaultHang       FaultKind = "hang"        // never answer, until the client closes the session
	FaultExitZero   FaultKind = "exit-zero"   // report failed scripts with exit status 0
)

var faultKinds = []FaultKind{FaultLatency, FaultDiskFull, FaultDropBefore, FaultDropAfter, FaultHang, FaultExitZero}

// Fault is one injected failure. Match limits it to commands whose text
// contains the substring (empty: every command); Count limits it to the
// first Count matches (0: no limit).
type Fault struct {
	Kind    FaultKind
	Match   string
	Count   int
	Latency time.Duration // for FaultLatency
}

// ParseFault reads the --fault grammar (see README.md):
//
//	KIND[=VALUE][@MATCH][#N]
//
// latency takes a duration as VALUE (latency=30ms@/disk add#3); for
// drop-before, drop-after and hang the VALUE is the match substring
// (drop-after=/disk add); disk-full and exit-zero take no VALUE
// (disk-full@/disk set#1).
func ParseFault(spec string) (Fault, error) {
	s := strings.TrimSpace(spec)
	var f Fault
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		n, err := strconv.Atoi(s[i+1:])
		if err == nil {
			if n < 1 {
				return Fault{}, fmt.Errorf("fault %q: count #%d must be at least 1", spec, n)
			}
			f.Count = n
			s = s[:i]
		}
	}
	kind, value, hasValue := strings.Cut(s, "=")
	if !hasValue {
		var hasMatch bool
		kind, f.Match, hasMatch = strings.Cut(s, "@")
		if hasMatch && f.Match == "" {
			return Fault{}, fmt.Errorf("fault %q: empty match after '@'", spec)
		}
	}
	f.Kind = FaultKind(kind)
	switch f.Kind {
	case FaultLatency:
		if !hasValue {
			return Fault{}, fmt.Errorf("fault %q: latency needs a duration, e.g. latency=30ms", spec)
		}
		d, match, hasMatch := strings.Cut(value, "@")
		lat, err := time.ParseDuration(d)
		if err != nil || lat < 0 {
			return Fault{}, fmt.Errorf("fault %q: %q is not a duration such as 30ms", spec, d)
		}
		if hasMatch && match == "" {
			return Fault{}, fmt.Errorf("fault %q: empty match after '@'", spec)
		}
		f.Latency, f.Match = lat, match
	case FaultDropBefore, FaultDropAfter, FaultHang:
		if hasValue {
			if value == "" {
				return Fault{}, fmt.Errorf("fault %q: empty match after '='", spec)
			}
			f.Match = value
		}
	case FaultDiskFull, FaultExitZero:
		if hasValue {
			return Fault{}, fmt.Errorf("fault %q: %s takes no value (limit it with @MATCH)", spec, f.Kind)
		}
	default:
		names := make([]string, len(faultKinds))
		for i, k := range faultKinds {
			names[i] = string(k)
		}
		return Fault{}, fmt.Errorf("fault %q: unknown kind %q (want one of %s)", spec, kind, strings.Join(names, ", "))
	}
	return f, nil
}

// String prints the fault in the grammar ParseFault reads.
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	switch f.Kind {
	case FaultLatency:
		b.WriteString("=" + f.Latency.String())
		if f.Match != "" {
			b.WriteString("@" + f.Match)
		}
	case FaultDropBefore, FaultDropAfter, FaultHang:
		if f.Match != "" {
			b.WriteString("=" + f.Match)
		}
	default:
		if f.Match != "" {
			b.WriteString("@" + f.Match)
		}
	}
	if f.Count > 0 {
		fmt.Fprintf(&b, "#%d", f.Count)
	}
	return b.String()
}

// activeFault tracks how many more times a counted fault may fire.
type activeFault struct {
	Fault
	remaining int // -1: unlimited
}

func activate(faults []Fault) []*activeFault {
	out := make([]*activeFault, len(faults))
	for i, f := range faults {
		rem := -1
		if f.Count > 0 {
			rem = f.Count
		}
		out[i] = &activeFault{Fault: f, remaining: rem}
	}
	return out
}

// SetFaults replaces the active faults (and restarts their counts).
func (s *Simulator) SetFaults(f ...Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = activate(f)
}

// SetLatency sets the delay charged once per exec (the round trip).
func (s *Simulator) SetLatency(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.latency = d
}

// SetCommandLatency sets the delay charged before each command a script runs.
func (s *Simulator) SetCommandLatency(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.commandLatency = d
}

// execDelay is the round-trip latency charged once per exec.
func (s *Simulator) execDelay() time.Duration {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.latency
}

// wait sleeps d (nothing for d <= 0) and reports false if ctx ended first.
func (s *Simulator) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	sleep := s.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return sleep(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// takeFault consumes one firing of the first active fault of kind whose
// match is found in one of texts.
func (s *Simulator) takeFault(kind FaultKind, texts ...string) (Fault, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for _, f := range s.faults {
		if f.Kind != kind || f.remaining == 0 || !matchesAny(f.Match, texts) {
			continue
		}
		if f.remaining > 0 {
			f.remaining--
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// commandDelay is the per-command latency plus every matching latency fault.
func (s *Simulator) commandDelay(texts ...string) time.Duration {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	d := s.commandLatency
	for _, f := range s.faults {
		if f.Kind != FaultLatency || f.remaining == 0 || !matchesAny(f.Match, texts) {
			continue
		}
		if f.remaining > 0 {
			f.remaining--
		}
		d += f.Latency
	}
	return d
}

func matchesAny(sub string, texts []string) bool {
	if sub == "" {
		return true
	}
	for _, t := range texts {
		if strings.Contains(t, sub) {
			return true
		}
	}
	return false
}
