package rds

import (
	"context"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// TestExecIsRaw: Exec returns what RouterOS printed and its exit status as they are, a failure included.
func TestExecIsRaw(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	c := simClient(t, sim, Config{})
	out, err := c.Exec(context.Background(), ":put \"a\"\n/disk monitor-traffic nothing-here once\n:put \"b\"")
	if err != nil {
		t.Fatal(err)
	}
	if out.Stdout != "a\r\nno such item\r\n" || out.ExitStatus != 1 || out.Stderr != "" {
		t.Errorf("Exec = %q (stderr %q), exit %d", out.Stdout, out.Stderr, out.ExitStatus)
	}
	if _, err := c.Exec(context.Background(), ""); err == nil {
		t.Error("an empty script was sent")
	}
}

// TestSendOneCommandPerExec: after the switch, a Run of two commands costs two execs instead of one script.
func TestSendOneCommandPerExec(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	c := simClient(t, sim, Config{})
	disks, err := PrintDisks()
	if err != nil {
		t.Fatal(err)
	}
	files, err := PrintFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		switched bool
		execs    int
	}{{false, 1}, {true, 2}} {
		if tc.switched {
			c.SendOneCommandPerExec()
		}
		before := len(sim.Scripts())
		if _, err := c.Run(context.Background(), nil, disks, files); err != nil {
			t.Fatal(err)
		}
		got := sim.Scripts()[before:]
		if len(got) != tc.execs {
			t.Errorf("switched=%v: %d execs, want %d: %q", tc.switched, len(got), tc.execs, got)
		}
		if tc.switched && strings.Contains(got[0], ":put") {
			t.Errorf("a lone command still carries a marker: %q", got[0])
		}
	}
}
