package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/mount"
	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nodeid"
)

// Node handlers are thin, like the controller's: validate the request, take the per-volume guard for
// anything that changes the node, call one function of the node service (pkg/node), and map its error to
// a code in toStatus. The reads (stats, health) take no guard: kubelet polls them, and an Aborted answer
// while a stage runs would only fill its log.

// NodeStageVolume connects the volume's NVMe/TCP subsystem and, for a filesystem volume, mounts it at the
// staging path, formatting it first only when it is provably blank.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetStagingTargetPath() == "" {
		return nil, invalid("staging target path is missing")
	}
	if err := mount.CheckTargetPath(req.GetStagingTargetPath()); err != nil {
		return nil, invalid("staging target path: %v", err)
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, invalid("unsupported volume capability: %v", err)
	}
	s, err := parseStageRequest(id, req)
	if err != nil {
		return nil, err
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	if err := d.node.Stage(ctx, s); err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume unmounts the staging path and disconnects the subsystem once nothing on this node
// mounts the volume any more. An unstaged volume is success.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetStagingTargetPath() == "" {
		return nil, invalid("staging target path is missing")
	}
	if err := mount.CheckTargetPath(req.GetStagingTargetPath()); err != nil {
		return nil, invalid("staging target path: %v", err)
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	if err := d.node.Unstage(ctx, id, req.GetStagingTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staged filesystem onto the target directory, or binds the volume's
// block device onto the target file.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetTargetPath() == "" {
		return nil, invalid("target path is missing")
	}
	if err := mount.CheckTargetPath(req.GetTargetPath()); err != nil {
		return nil, invalid("target path: %v", err)
	}
	if err := checkCapability(req.GetVolumeCapability()); err != nil {
		return nil, invalid("unsupported volume capability: %v", err)
	}
	// The driver declares STAGE_UNSTAGE_VOLUME, so the CO always names the staging path.
	if req.GetStagingTargetPath() == "" {
		return nil, invalid("staging target path is missing (this driver stages volumes before publishing them)")
	}
	if err := mount.CheckTargetPath(req.GetStagingTargetPath()); err != nil {
		return nil, invalid("staging target path: %v", err)
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	p := node.PublishRequest{
		ID: id, Staging: req.GetStagingTargetPath(), Target: req.GetTargetPath(),
		ReadOnly: req.GetReadonly(), Block: req.GetVolumeCapability().GetBlock() != nil,
		SingleWriter: req.GetVolumeCapability().GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
	}
	if err := d.node.Publish(ctx, p); err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts and removes the target; a missing target is success.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetTargetPath() == "" {
		return nil, invalid("target path is missing")
	}
	if err := mount.CheckTargetPath(req.GetTargetPath()); err != nil {
		return nil, invalid("target path: %v", err)
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	if err := d.node.Unpublish(ctx, id, req.GetTargetPath()); err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats reports bytes and inodes of a filesystem volume, or the size of a block volume.
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetVolumePath() == "" {
		return nil, invalid("volume path is missing")
	}
	u, err := d.node.Stats(id, req.GetVolumePath())
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: volumeUsage(u)}, nil
}

// NodeGetVolumeHealth reports the volume INACCESSIBLE from this node when its device is gone, its NVMe
// controller is not live, or a mount of it sits on a device that is no longer the NQN's.
func (d *Driver) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	problems, err := d.node.Health(ctx, id, req.GetStagingTargetPath(), req.GetVolumePublishPath())
	if err != nil {
		return nil, toStatus(err)
	}
	h := &csi.VolumeHealth{VolumeId: id}
	for _, p := range problems {
		h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
			Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: p.Reason, Message: p.Message})
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: h}, nil
}

// NodeExpandVolume makes the node see the size the controller gave the disk and grows the filesystem on it.
func (d *Driver) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id, err := nodeVolume(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if req.GetVolumePath() == "" {
		return nil, invalid("volume path is missing")
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := checkCapability(c); err != nil {
			return nil, invalid("unsupported volume capability: %v", err)
		}
	}
	if r := req.GetCapacityRange(); r.GetRequiredBytes() < 0 || r.GetLimitBytes() < 0 {
		return nil, invalid("capacity range must not be negative")
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	size, err := d.node.Expand(ctx, node.ExpandRequest{
		ID: id, Path: req.GetVolumePath(), RequiredBytes: req.GetCapacityRange().GetRequiredBytes(),
		Block: req.GetVolumeCapability().GetBlock() != nil,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

// NodeGetInfo reports the node id: the node name and, when it has one, its host NQN (pkg/nodeid), which
// is how the controller learns whom to allow on a volume's export. No topology: every node reaches the
// RDS over the network, so the controller places volumes without regard to nodes.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.nodeID()}, nil
}

// nodeID is the node id this node reports; the host NQN is left out (and why logged once, at New) when it
// cannot be part of one.
func (d *Driver) nodeID() string {
	id, _ := nodeid.Format(d.opts.NodeID, d.opts.HostNQN)
	return id
}

// NodeGetCapabilities lists the node capabilities declared in capabilities.go.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: nodeServiceCapabilities()}, nil
}

// nodeVolume checks a volume id on the node and returns the name it has on its box: the disk slot, whose NQN
// the node connects to (nvme.VolumeNQN). The node needs no list of boxes: the volume context carries the
// box's NVMe/TCP address, and slots are CSI names, unique in the cluster whatever box they are on.
func nodeVolume(id string) (string, error) {
	if id == "" {
		return "", invalid("volume id is missing")
	}
	_, name, err := ParseID(id)
	if err != nil {
		return "", invalid("volume id %q is not a valid id (<name> or <box>/<name>): %v", id, err)
	}
	return name, nil
}
