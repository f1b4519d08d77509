package driver

import (
	"context"
	"errors"
	"slices"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/nodeid"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Host access control (docs/architecture.md §3): a volume whose StorageClass says hostAccessControl: "true"
// is exported only to the host NQNs of the nodes it is published to. The node plugin reports its host NQN
// in its node id (pkg/nodeid), so ControllerPublish and ControllerUnpublish know it without any other
// channel. The RDS's nvme-tcp-server-allow-host-name is the only record: publish adds the node's NQN
// (replaces the list for a single-node volume), unpublish removes it, and a volume no node holds is
// allowed to volume.NoHost, never to "" (which allows any host). During a live migration of a block RWX
// volume both nodes' NQNs are listed, comma-separated (UNVERIFIED that RouterOS reads a list: rds-csi
// doctor checks it; simulator --allow-host-name).

// publishHostNQN returns the host NQN to allow for a publish ("" when the volume is not under host access
// control), or why the publish cannot go on.
func publishHostNQN(volumeContext map[string]string, node string) (string, error) {
	if volumeContext[paramHostAccessControl] != "true" {
		return "", nil
	}
	name, hostNQN, err := nodeid.Parse(node)
	if err != nil {
		return "", invalid("node id: %v", err)
	}
	if hostNQN == "" {
		return "", errorOf(errNoHostNQN, "volume has hostAccessControl, but node %q did not report its NVMe host NQN "+
			"(its node plugin is older than host access control, or it has no /etc/nvme/hostnqn: see the node "+
			"plugin's log); upgrade the node plugin or use a StorageClass without hostAccessControl", name)
	}
	return hostNQN, nil
}

// holds tells whether node already holds volume id.
func (d *Driver) holds(id, node string) bool {
	return slices.Contains(d.attach.Holders(id), nodeid.Name(node))
}

// allowOnPublish makes hostNQN one of the hosts the export of v (volume id on box b) allows: the only one
// while node is the only holder, one of the two during a migration.
func (d *Driver) allowOnPublish(ctx context.Context, b *box, id string, v *volume.Volume, node, hostNQN string) error {
	want := []string{hostNQN}
	if len(d.attach.Holders(id)) > 1 {
		want = addHost(v.AllowedHosts(), hostNQN)
	}
	if sameSet(want, v.AllowedHosts()) {
		return nil
	}
	if _, err := b.Volumes.SetAllowedHosts(ctx, v.ID, want); err != nil {
		return err
	}
	klog.InfoS("volume export allowed to the published node", "volumeID", id, "node", nodeid.Name(node),
		"hostNQN", hostNQN, "allowed", want)
	return nil
}

// noteOpen remembers whether the export of volume id, as its publish read it (v) and will leave it, is open
// to any host: only the driver restricts an export, at a publish with hostAccessControl or at the create of
// such a volume, so an open one stays open until it is deleted.
func (d *Driver) noteOpen(id string, v *volume.Volume, hostNQN string) {
	if hostNQN == "" && !v.Restricted() {
		d.open.Store(id, struct{}{})
	} else {
		d.open.Delete(id)
	}
}

// revokeOnUnpublish takes the unpublished node's host NQN off the export of volume id (name on box b), if
// the export is restricted; a volume no node holds any more is closed (NoHost) whatever the node id says.
// A volume this process published open needs no read (noteOpen); any other is read, so that a restarted
// controller still closes what it restricted.
func (d *Driver) revokeOnUnpublish(ctx context.Context, b *box, id, name, node string) error {
	if _, ok := d.open.Load(id); ok {
		return nil
	}
	v, err := b.Volumes.Get(ctx, name)
	switch {
	case errors.Is(err, volume.ErrNotFound), errors.Is(err, volume.ErrNotOwned):
		return nil // nothing of ours to restrict
	case err != nil:
		return err
	case !v.Restricted():
		return nil // not under host access control
	}
	want := []string{volume.NoHost}
	if len(d.attach.Holders(id)) > 0 {
		_, hostNQN, _ := nodeid.Parse(node)
		want = removeHost(v.AllowedHosts(), hostNQN)
	}
	if sameSet(want, v.AllowedHosts()) {
		return nil
	}
	if _, err := b.Volumes.SetAllowedHosts(ctx, name, want); err != nil {
		return err
	}
	klog.InfoS("volume export no longer allows the unpublished node", "volumeID", id, "node", nodeid.Name(node), "allowed", want)
	return nil
}

// addHost returns hosts with h, without NoHost.
func addHost(hosts []string, h string) []string {
	out := removeHost(hosts, h)
	out = slices.DeleteFunc(out, func(x string) bool { return x == volume.NoHost })
	return append(out, h)
}

// removeHost returns hosts without h (h "" removes nothing); NoHost when none is left.
func removeHost(hosts []string, h string) []string {
	out := slices.DeleteFunc(slices.Clone(hosts), func(x string) bool { return x == h })
	if len(out) == 0 {
		return []string{volume.NoHost}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
