package volume

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// NoHost is the host NQN a volume under host access control is allowed to while no node holds it: an empty
// nvme-tcp-server-allow-host-name allows any host, so a closed export must name a host, and this one
// belongs to nobody (it is not of the nvme-cli forms nqn.2014-08.org.nvmexpress:uuid:… or …:hostnqn).
const NoHost = "nqn.2000-02.io.srvlab.rds-csi:no-host"

// SetAllowedHosts restricts volume id's export to hosts (host NQNs; NoHost alone closes it) and reads the
// disk back in the same exec. The set is guarded by the volume's NQN, so a disk that is not the volume is
// never changed. An RDS that refuses the property, or does not show exactly what was set, is
// ErrHostAccessUnsupported.
func (m *Manager) SetAllowedHosts(ctx context.Context, id string, hosts []string) (*Volume, error) {
	if err := rds.ValidName(id); err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("volume %q: no host to allow (NoHost closes the export): %w", id, rds.ErrInvalid)
	}
	if err := m.checkHostAccess(hosts); err != nil {
		return nil, err
	}
	set, err := rds.SetAllowedHosts(id, NQN(id), hosts)
	if err != nil {
		return nil, err
	}
	v, err := m.runThenRead(ctx, id, set)
	switch {
	case errors.Is(err, rds.ErrProtocol), errors.Is(err, rds.ErrInvalid) && isCommandError(err):
		// RouterOS did not take the argument (an unknown property, a value it refuses).
		return nil, fmt.Errorf("volume %q: %v: %w", id, err, ErrHostAccessUnsupported)
	case err != nil:
		return nil, err
	case !v.AllowHostShown || !sameHosts(v.AllowedHosts(), hosts):
		return nil, fmt.Errorf("volume %q: set %s=%q, the RDS shows %q: %w", id, rds.AllowHostKey,
			strings.Join(hosts, ","), v.AllowHostName, ErrHostAccessUnsupported)
	}
	return v, nil
}

// SetHostAccess says whether the RDS knows nvme-tcp-server-allow-host-name (the start-up check
// allow-host-name); without it, creates and sets that name hosts fail at once with ErrHostAccessUnsupported.
func (m *Manager) SetHostAccess(known bool) { m.noHostAccess.Store(!known) }

func (m *Manager) checkHostAccess(hosts []string) error {
	if len(hosts) > 0 && m.noHostAccess.Load() {
		return fmt.Errorf("the start-up check allow-host-name found that the RDS does not know %s, so the export "+
			"cannot be restricted; use a StorageClass without hostAccessControl, or update RouterOS and restart "+
			"the controller: %w", rds.AllowHostKey, ErrHostAccessUnsupported)
	}
	return nil
}

// hostAccessError tells a create with AllowedHosts that RouterOS refused as malformed for what it most
// likely is: a box without the property (ErrHostAccessUnsupported, a FailedPrecondition, not a bug).
func hostAccessError(r CreateRequest, err error) error {
	if err == nil || len(r.AllowedHosts) == 0 || !errors.Is(err, rds.ErrProtocol) || !isCommandError(err) ||
		errors.Is(err, ErrHostAccessUnsupported) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrHostAccessUnsupported, err)
}

func isCommandError(err error) bool {
	var ce *rds.CommandError
	return errors.As(err, &ce)
}

// sameHosts compares two host lists as sets.
func sameHosts(a, b []string) bool {
	seen := map[string]bool{}
	for _, h := range a {
		seen[h] = true
	}
	if len(seen) != len(uniq(b)) {
		return false
	}
	for _, h := range b {
		if !seen[h] {
			return false
		}
	}
	return true
}

func uniq(hs []string) map[string]bool {
	out := map[string]bool{}
	for _, h := range hs {
		out[h] = true
	}
	return out
}

// AllowedHosts are the host NQNs the export is restricted to; none means any host may connect.
func (v *Volume) AllowedHosts() []string { return rds.SplitHosts(v.AllowHostName) }

// Restricted tells whether the volume's export names the hosts it allows (it is under host access
// control): NoHost or any host NQN.
func (v *Volume) Restricted() bool { return len(v.AllowedHosts()) > 0 }
