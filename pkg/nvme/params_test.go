package nvme

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestDefaultConnectParams(t *testing.T) {
	p := DefaultConnectParams()
	// An RDS reboot must never make the kernel drop the controller.
	if p.CtrlLossTmo != -1 {
		t.Errorf("default CtrlLossTmo = %d, want -1 (retry forever)", p.CtrlLossTmo)
	}
	if p.Transport != "tcp" || p.Port != 4420 || p.ReconnectDelay < 1 || p.KeepAliveTmo < 1 {
		t.Errorf("defaults %+v", p)
	}
}

func TestParseConnectParams(t *testing.T) {
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"nvmeAddress": "10.0.0.5", "nqn": nqnA, "otherKey": "ignored"}
		for k, v := range extra {
			if v == "<delete>" {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	withDefaults := func(mod func(*ConnectParams)) ConnectParams {
		p := DefaultConnectParams()
		p.Address, p.NQN = "10.0.0.5", nqnA
		if mod != nil {
			mod(&p)
		}
		return p
	}
	tests := []struct {
		name    string
		ctx     map[string]string
		want    ConnectParams
		wantErr error
	}{
		{name: "minimal context takes the defaults", ctx: base(nil), want: withDefaults(nil)},
		{
			name: "everything set",
			ctx:  base(map[string]string{"nvmePort": "4421", "ctrlLossTmo": "600", "reconnectDelay": "2", "keepAliveTmo": "15"}),
			want: withDefaults(func(p *ConnectParams) {
				p.Port, p.CtrlLossTmo, p.ReconnectDelay, p.KeepAliveTmo = 4421, 600, 2, 15
			}),
		},
		{name: "ctrlLossTmo -1 is forever", ctx: base(map[string]string{"ctrlLossTmo": "-1"}), want: withDefaults(nil)},
		{name: "ctrlLossTmo 0 fails fast", ctx: base(map[string]string{"ctrlLossTmo": "0"}),
			want: withDefaults(func(p *ConnectParams) { p.CtrlLossTmo = 0 })},
		{name: "IPv6 address", ctx: base(map[string]string{"nvmeAddress": "fd00::5"}),
			want: withDefaults(func(p *ConnectParams) { p.Address = "fd00::5" })},
		{name: "DNS name", ctx: base(map[string]string{"nvmeAddress": "rds-data.storage.example"}),
			want: withDefaults(func(p *ConnectParams) { p.Address = "rds-data.storage.example" })},

		{name: "no address", ctx: base(map[string]string{"nvmeAddress": "<delete>"}), wantErr: ErrInvalidParams},
		{name: "no NQN", ctx: base(map[string]string{"nqn": "<delete>"}), wantErr: ErrForeignNQN},
		{name: "foreign NQN", ctx: base(map[string]string{"nqn": foreignNQN}), wantErr: ErrForeignNQN},
		{name: "NQN with a space", ctx: base(map[string]string{"nqn": NQNPrefix + "pvc 1"}), wantErr: ErrInvalidParams},
		{name: "NQN too long", ctx: base(map[string]string{"nqn": NQNPrefix + strings.Repeat("a", 224)}), wantErr: ErrInvalidParams},
		{name: "address as an option", ctx: base(map[string]string{"nvmeAddress": "-q"}), wantErr: ErrInvalidParams},
		{name: "address with a space", ctx: base(map[string]string{"nvmeAddress": "10.0.0.5 -n x"}), wantErr: ErrInvalidParams},
		{name: "port zero", ctx: base(map[string]string{"nvmePort": "0"}), wantErr: ErrInvalidParams},
		{name: "port too big", ctx: base(map[string]string{"nvmePort": "65536"}), wantErr: ErrInvalidParams},
		{name: "port not a number", ctx: base(map[string]string{"nvmePort": "4420.0"}), wantErr: ErrInvalidParams},
		{name: "empty port", ctx: base(map[string]string{"nvmePort": ""}), wantErr: ErrInvalidParams},
		{name: "ctrlLossTmo below -1", ctx: base(map[string]string{"ctrlLossTmo": "-2"}), wantErr: ErrInvalidParams},
		{name: "reconnectDelay zero", ctx: base(map[string]string{"reconnectDelay": "0"}), wantErr: ErrInvalidParams},
		{name: "keepAliveTmo zero disables keep-alive", ctx: base(map[string]string{"keepAliveTmo": "0"}), wantErr: ErrInvalidParams},
		{name: "timeout overflow", ctx: base(map[string]string{"keepAliveTmo": "99999999999"}), wantErr: ErrInvalidParams},
		{name: "timeout with spaces", ctx: base(map[string]string{"keepAliveTmo": " 5"}), wantErr: ErrInvalidParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConnectParams(tc.ctx)
			checkErr(t, err, tc.wantErr)
			if tc.wantErr == nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseConnectParams = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseConnectParams: whatever a volume context holds, parsing never
// panics, and what it accepts is valid, carries our prefix and survives a
// round trip through the volume context unchanged.
func FuzzParseConnectParams(f *testing.F) {
	f.Add("10.0.0.5", "4420", nqnA, "-1", "5", "5")
	f.Add("fd00::5", "4421", NQNPrefix+"x", "600", "10", "30")
	f.Add("-a", "0", foreignNQN, "-2", "0", "0")
	f.Add("rds.example.", "+4420", NQNPrefix, "1e3", "0x10", "")
	f.Fuzz(func(t *testing.T, addr, port, nqn, ctrlLoss, reconnect, keepAlive string) {
		in := map[string]string{
			"nvmeAddress": addr, "nvmePort": port, "nqn": nqn,
			"ctrlLossTmo": ctrlLoss, "reconnectDelay": reconnect, "keepAliveTmo": keepAlive,
		}
		p, err := ParseConnectParams(in)
		if err != nil {
			return
		}
		if verr := p.Validate(); verr != nil {
			t.Fatalf("accepted %v, but Validate says %v", in, verr)
		}
		if !strings.HasPrefix(p.NQN, NQNPrefix) || len(p.NQN) <= len(NQNPrefix) {
			t.Fatalf("accepted foreign NQN %q", p.NQN)
		}
		if strings.HasPrefix(p.Address, "-") || strings.ContainsAny(p.Address+p.NQN, " \t\n=") {
			t.Fatalf("accepted an argument nvme-cli could misread: %+v", p)
		}
		back, err := ParseConnectParams(map[string]string{
			"nvmeAddress": p.Address, "nvmePort": strconv.Itoa(p.Port), "nqn": p.NQN,
			"ctrlLossTmo": strconv.Itoa(p.CtrlLossTmo), "reconnectDelay": strconv.Itoa(p.ReconnectDelay),
			"keepAliveTmo": strconv.Itoa(p.KeepAliveTmo),
		})
		if err != nil || back != p {
			t.Fatalf("round trip of %+v gave %+v, %v", p, back, err)
		}
	})
}
