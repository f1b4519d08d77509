package driver

import (
	"context"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/attachment"
	"github.com/rds-csi/rds-csi/pkg/nodeid"
)

// Attachments is what the controller needs from the attachment manager (pkg/attachment).
type Attachments interface {
	Attach(volumeID, node string, mode attachment.Mode) error
	Detach(volumeID, node string)
	Holders(volumeID string) []string
	// PublishedNodeIDs are the holders' CSI node ids (as CSINode has them), for published_node_ids.
	PublishedNodeIDs(volumeID string) []string
}

// Nodes tells whether a node exists (the Kubernetes Node object). Without Kubernetes only the driver's own
// node id is a known node.
type Nodes interface {
	Exists(ctx context.Context, name string) (bool, error)
}

// ControllerPublishVolume grants a node access to a volume under the attachment rules and tells the node
// how to reach it.
func (d *Driver) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	id := req.GetVolumeId()
	b, name, err := d.resolve(id, "volume")
	if err != nil {
		return nil, err
	}
	node := req.GetNodeId()
	if node == "" {
		return nil, invalid("node id is missing")
	}
	c := req.GetVolumeCapability()
	if c == nil {
		return nil, invalid("volume capability is missing")
	}
	if err := checkCapability(c); err != nil {
		return nil, invalid("unsupported volume capability: %v", err)
	}
	hostNQN, err := publishHostNQN(req.GetVolumeContext(), node)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := d.checkNode(ctx, node); err != nil {
		return nil, err
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	v, err := b.Volumes.Get(ctx, name)
	if err != nil {
		return nil, toStatus(err)
	}
	d.noteOpen(id, v, hostNQN)
	held := d.holds(id, node)
	if err := d.attach.Attach(id, node, attachMode(c)); err != nil {
		return nil, toStatus(err)
	}
	if hostNQN != "" {
		if err := d.allowOnPublish(ctx, b, id, v, node, hostNQN); err != nil {
			if !held {
				d.attach.Detach(id, node) // the node does not hold a volume it cannot reach
			}
			return nil, toStatus(err)
		}
	}
	addr := req.GetVolumeContext()[paramNVMeAddress]
	if addr == "" {
		addr = b.NVMeAddress
	}
	return &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{
		paramNVMeAddress: addr, paramNVMePort: strconv.Itoa(v.Port), ctxNQN: v.NQN,
	}}, nil
}

// ControllerUnpublishVolume releases a node's hold on a volume; unknown volumes and nodes are success.
func (d *Driver) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, invalid("volume id is missing")
	}
	// The hold is released even when the box is not configured; its export is restricted again only when it
	// is (host access control reads the disk: revokeOnUnpublish).
	if _, _, err := ParseID(id); err != nil {
		return nil, invalid("volume id %q is not a valid id (<name> or <box>/<name>): %v", id, err)
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	nodes := []string{req.GetNodeId()}
	if req.GetNodeId() == "" { // CSI: an empty node id means every node
		nodes = d.attach.Holders(id)
	}
	for _, n := range nodes {
		d.attach.Detach(id, n)
	}
	if b, name, err := d.resolve(id, "volume"); err == nil {
		if err := d.revokeOnUnpublish(ctx, b, id, name, req.GetNodeId()); err != nil {
			return nil, toStatus(err)
		}
	} else {
		klog.InfoS("released the hold on a volume of a box that is not configured; its export cannot be restricted",
			"volumeID", id, "err", err)
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

func (d *Driver) checkNode(ctx context.Context, node string) error {
	node = nodeid.Name(node)
	if d.nodes == nil {
		if node != d.opts.NodeID {
			return toStatus(errorOf(errUnknownNode, "node %q is not known (without Kubernetes the only node is %q)", node, d.opts.NodeID))
		}
		return nil
	}
	ok, err := d.nodes.Exists(ctx, node)
	if err != nil {
		return toStatus(errorOf(errNodeCheck, "checking node %q in Kubernetes: %v", node, err))
	}
	if !ok {
		return toStatus(errorOf(errUnknownNode, "node %q does not exist in Kubernetes", node))
	}
	return nil
}

// attachMode is how many nodes may hold a volume with this capability: two for raw block with
// MULTI_NODE_MULTI_WRITER (the source and target of a live migration), one otherwise.
func attachMode(c *csi.VolumeCapability) attachment.Mode {
	if c.GetBlock() != nil && blockOnlyModes[c.GetAccessMode().GetMode()] {
		return attachment.MultiNodeBlock
	}
	return attachment.SingleNode
}
