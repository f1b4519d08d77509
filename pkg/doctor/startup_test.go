package doctor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

func TestStartupCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      rdssim.Config
		basePath string
		err      string // "" = starts
		oneExec  bool
		label    string
	}{
		{"default", rdssim.Config{}, "pool/k8s", "", false, "pool-fs"},
		{"labelled pool", rdssim.Config{PoolLabel: "ocp-storage"}, "pool/k8s", "", false, "ocp-storage"},
		{"script goes on after an error", rdssim.Config{OnError: rdssim.OnErrorContinue}, "pool/k8s", "", true, "pool-fs"},
		{"xfs pool", rdssim.Config{PoolFS: "xfs"}, "pool/k8s", "", false, ""},
		{"no rose-storage", rdssim.Config{System: rdssim.System{RoseStorage: rdssim.PackageMissing}}, "pool/k8s",
			"start-up check rose-storage failed", false, ""},
		{"RouterOS 6", rdssim.Config{System: rdssim.System{Version: "6.49.17"}}, "pool/k8s",
			"start-up check routeros failed", false, ""},
		{"no such pool", rdssim.Config{}, "raid10/k8s", "start-up check pool failed", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, tc.cfg)
			ad, err := StartupCheck(context.Background(), newClient(t, sim), location(t, tc.basePath))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused to start: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one naming %q", err, tc.err)
			case tc.err != "":
				return
			}
			if !ad.Checked || ad.OneCommandPerExec != tc.oneExec || ad.PoolLabel != tc.label {
				t.Errorf("adaptation %+v, want checked, one-command-per-exec %v, label %q", ad, tc.oneExec, tc.label)
			}
			for _, cmd := range sim.Commands() {
				if strings.Contains(cmd, " add") || strings.Contains(cmd, " set") || strings.Contains(cmd, " remove") {
					t.Errorf("the start-up check sent a mutation: %q", cmd)
				}
			}
		})
	}
}

func TestStartupCheckConnection(t *testing.T) {
	sim := startSim(t, rdssim.Config{})
	other := startSim(t, rdssim.Config{})
	signer, err := rds.LoadPrivateKey(sim.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rds.LoadHostKey(other.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := rds.LoadPrivateKey(other.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	rightHost, err := rds.LoadHostKey(sim.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	addr := sim.Addr()
	other.Close()
	for _, tc := range []struct {
		name string
		cfg  rds.Config
		err  string
	}{
		{"wrong host key", rds.Config{Address: addr, User: "admin", Signer: signer, HostKeyCallback: otherKey}, "it presented ssh-ed25519 SHA256:"},
		{"login refused", rds.Config{Address: addr, User: "admin", Signer: wrongKey, HostKeyCallback: rightHost}, "refused the login"},
		{"not answering", rds.Config{Address: other.Addr(), User: "admin", Signer: signer, HostKeyCallback: rightHost,
			DialTimeout: 2 * time.Second}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := rds.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ad, err := StartupCheck(context.Background(), c, location(t, "pool/k8s"))
			if tc.err == "" {
				if err != nil || ad.Checked {
					t.Errorf("an RDS that does not answer: err %v, adaptation %+v; want start with the configured mode", err, ad)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "start-up check ssh failed") {
				t.Errorf("error %v, want one naming the ssh check and %q", err, tc.err)
			}
		})
	}
}

// TestStartupCheckUnderEveryDialect: the controller starts under every dialect, and falls back to one
// command per exec exactly where scripts go on after an error.
func TestStartupCheckUnderEveryDialect(t *testing.T) {
	for _, d := range rdssim.Dialects {
		t.Run(d.Name, func(t *testing.T) {
			sim := startSim(t, d.Apply(rdssim.Config{}))
			ad, err := StartupCheck(context.Background(), newClient(t, sim), location(t, "pool/k8s"))
			if err != nil {
				t.Fatalf("refused to start: %v", err)
			}
			want := d.OnError == rdssim.OnErrorContinue
			if !ad.Checked || ad.OneCommandPerExec != want || ad.PoolLabel == "" {
				t.Errorf("adaptation %+v, want one command per exec %v and a label", ad, want)
			}
			if wantGuards := d.ScriptIf != rdssim.ScriptIfNo; ad.Guards != wantGuards {
				t.Errorf("adaptation %+v, want guards %v", ad, wantGuards)
			}
		})
	}
}

// TestStartupCheckConnectionLostMidway: a connection that drops during a later check (the RDS rebooting
// while the controller starts) is not a missing capability: the controller serves with its configured mode.
// A soak that restarts the simulator found the controller refusing to start on it.
func TestStartupCheckConnectionLostMidway(t *testing.T) {
	sim := startSim(t, rdssim.Config{Faults: []rdssim.Fault{{Kind: rdssim.FaultDropAfter, Match: "/disk print", Count: 1}}})
	c := newClient(t, sim)
	ad, err := StartupCheck(context.Background(), c, location(t, "pool/k8s"))
	if err != nil || ad.Checked {
		t.Fatalf("a connection lost during the pool check: err %v, adaptation %+v; want start with the configured mode", err, ad)
	}
}
