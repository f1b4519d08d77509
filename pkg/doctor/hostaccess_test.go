package doctor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rds-csi/rds-csi/pkg/rdssim"
)

// targetModel is an rdssim.Exporter that remembers which hosts each export admits, and a Connector that
// connects by those rules: the kernel target's behaviour without the kernel.
type targetModel struct {
	mu      sync.Mutex
	allowed map[string][]string // nqn -> hosts; nil: any host
	tries   []string
}

func (m *targetModel) Export(nqn string, _ int, _ string, hosts []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.allowed == nil {
		m.allowed = map[string][]string{}
	}
	m.allowed[nqn] = hosts
	return nil
}

func (m *targetModel) Unexport(nqn string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.allowed, nqn)
	return nil
}

func (m *targetModel) TryConnect(_ context.Context, _ string, _ int, nqn, hostNQN string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries = append(m.tries, hostNQN)
	hosts, ok := m.allowed[nqn]
	switch {
	case !ok:
		return errors.New("no such subsystem")
	case hosts != nil && !slices.Contains(hosts, hostNQN):
		return errors.New("Failed to write to /dev/nvme-fabrics: Input/output error")
	}
	return nil
}

// TestDoctorHostAccess: the host-access check under each way the RDS may read
// nvme-tcp-server-allow-host-name, with and without an initiator.
func TestDoctorHostAccess(t *testing.T) {
	for _, tc := range []struct {
		name      string
		form      rdssim.AllowHostForm
		connector bool
		line      string
	}{
		{"no initiator", rdssim.AllowHostList, false, "WARN host-access: nvme-tcp-server-allow-host-name is accepted at /disk add and /disk set and printed back; enforcement not checked"},
		{"list", rdssim.AllowHostList, true, "PASS host-access: nvme-tcp-server-allow-host-name is accepted at /disk add and /disk set and printed back; enforced: a host NQN it does not name was refused, the one it names connected, and both of a comma-separated list connect"},
		{"single", rdssim.AllowHostSingle, true, "WARN host-access: nvme-tcp-server-allow-host-name is accepted at /disk add and /disk set and printed back; enforced for one host NQN, but with two listed the second was refused"},
		{"ignored", rdssim.AllowHostIgnored, true, "WARN host-access: nvme-tcp-server-allow-host-name is accepted at /disk add and /disk set and printed back; NOT ENFORCED"},
		{"absent", rdssim.AllowHostAbsent, true, "WARN allow-host-name: the RDS does not know nvme-tcp-server-allow-host-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := &targetModel{}
			sim := prepared(t, rdssim.Config{AllowHostName: tc.form, Exporter: model})
			opts := Options{}
			if tc.connector {
				opts.Connector, opts.NVMeAddress = model, "127.0.0.1"
			}
			rep, out := runDoctor(t, context.Background(), newClient(t, sim), opts)
			if !rep.OK() {
				t.Errorf("a box without host access control failed doctor (it is optional): %v\n%s", rep.Failed(), out)
			}
			if !strings.Contains(out, "\n"+tc.line) {
				t.Errorf("the report lacks %q:\n%s", tc.line, out)
			}
			if tc.form == rdssim.AllowHostAbsent && !strings.Contains(out, "\nSKIP host-access: the RDS does not know") {
				t.Errorf("host-access ran on a box without the property:\n%s", out)
			}
			if !strings.Contains(out, "host access control: ") {
				t.Errorf("the adaptation does not say what host access control does:\n%s", out)
			}
			assertNothingLeft(t, sim)
		})
	}
}

// TestStartupRecordsTheAllowHostProperty: the controller's read-only start-up checks tell a box that does
// not know nvme-tcp-server-allow-host-name, and do not fail on it.
func TestStartupRecordsTheAllowHostProperty(t *testing.T) {
	for form, refused := range map[rdssim.AllowHostForm]bool{rdssim.AllowHostList: false, rdssim.AllowHostAbsent: true} {
		sim := prepared(t, rdssim.Config{AllowHostName: form})
		ad, err := StartupCheck(context.Background(), newClient(t, sim), location(t, "pool/k8s"))
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		if ad.HostAccessRefused != refused {
			t.Errorf("%s: HostAccessRefused %v, want %v", form, ad.HostAccessRefused, refused)
		}
	}
}
