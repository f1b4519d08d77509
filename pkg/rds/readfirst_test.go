package rds

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// ScriptsStop learns, in one probe exec per process, whether the RDS stops a script at a failed command, and
// the probe leaves every other script as it was (independent commands still run as one exec).
func TestScriptsStopProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  rdssim.Config
		one  bool
		want bool
	}{
		{"stops", rdssim.Config{}, false, true},
		{"stops, failing execs exit 0", rdssim.Config{Faults: []rdssim.Fault{{Kind: rdssim.FaultExitZero}}}, false, true},
		{"goes on", rdssim.Config{OnError: rdssim.OnErrorContinue}, false, false},
		{"goes on, failing execs exit 0", rdssim.Config{OnError: rdssim.OnErrorContinue, Faults: []rdssim.Fault{{Kind: rdssim.FaultExitZero}}}, false, false},
		{"one command per exec", rdssim.Config{OnError: rdssim.OnErrorContinue}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, tc.cfg)
			c := simClient(t, sim, Config{OneCommandPerExec: tc.one})
			ctx := context.Background()
			for i := 0; i < 2; i++ {
				if got := c.ScriptsStop(ctx); got != tc.want {
					t.Fatalf("call %d: ScriptsStop = %v, want %v", i, got, tc.want)
				}
			}
			probes := 0
			for _, s := range sim.Scripts() {
				if strings.Contains(s, "rds-csi-probe-") {
					probes++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[tc.one]; probes != want || len(sim.Scripts()) != want {
				t.Fatalf("%d probes in %d execs, want %d: %q", probes, len(sim.Scripts()), want, sim.Scripts())
			}
			if c.goesOn.Load() {
				t.Fatal("the probe switched the client to one command per exec")
			}
		})
	}
}

// RunReadFirst returns what the reads before the steps saw, also when a step fails; the steps after a failed
// one never run.
func TestRunReadFirst(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	c := simClient(t, sim, Config{})
	ctx := context.Background()
	v := volumeFor(t, "pvc-rf", 1<<30)
	pre := []Cmd{v.readDisk}
	preOut, out, err := c.RunReadFirst(ctx, pre, v.create, v.readDisk)
	if err != nil {
		t.Fatal(err)
	}
	if len(preOut) != 1 || len(preOut[0]) != 0 || len(out) != 1 || len(out[0]) != 1 {
		t.Fatalf("before %v, after %v: want no disk before and one after", preOut, out)
	}
	if n := len(sim.Scripts()); n != 1 {
		t.Fatalf("%d execs, want 1", n)
	}
	// Again: the disk is there before, the first step fails, and nothing after it runs.
	sim.ResetCommands()
	preOut, out, err = c.RunReadFirst(ctx, pre, v.create, v.readDisk)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Step != v.create[0].text {
		t.Fatalf("got %v, want the first step's failure", err)
	}
	if len(preOut) != 1 || len(preOut[0]) != 1 || out != nil {
		t.Fatalf("before %v, after %v: want the disk before, nothing after", preOut, out)
	}
	for _, cmd := range sim.Commands() {
		if strings.HasPrefix(cmd, "/disk add") {
			t.Fatalf("a step after the failed one ran: %q", sim.Commands())
		}
	}
	// A removal that may find its target gone is no step of RunReadFirst.
	if _, _, err := c.RunReadFirst(ctx, pre, v.remove, v.readDisk); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a removal as a step: %v, want ErrInvalid", err)
	}
}
