package driver

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Controller handlers are thin: validate, take the per-volume guard, call one domain function, and map
// its error to a code in toStatus.

// CreateVolume creates a volume named by the CSI name; the same name with a compatible request returns the
// same volume.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, invalid("volume name is missing")
	}
	if err := rds.ValidName(name); err != nil {
		return nil, invalid("volume name %q cannot be used as an RDS disk name: %v", name, err)
	}
	if err := volume.ReservedName(name); err != nil {
		return nil, invalid("%v", err)
	}
	if err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	if req.GetVolumeContentSource() != nil {
		return d.createVolumeFromSource(ctx, req) // a restore or a clone: snapshot.go
	}
	p, err := d.parseParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	id := p.box.id(name)
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	v, err := p.box.Volumes.Create(ctx, volume.CreateRequest{
		ID: name, RequiredBytes: req.GetCapacityRange().GetRequiredBytes(), LimitBytes: req.GetCapacityRange().GetLimitBytes(),
		Location: p.location, Port: p.nvmePort, AllowedHosts: p.allowedAtCreate(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	klog.InfoS("volume ready", "volumeID", id, "box", p.box.Name, "bytes", v.SizeBytes, "file", v.FilePath, "layout", v.Layout)
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId: id, CapacityBytes: v.SizeBytes, VolumeContext: p.volumeContext(v),
	}}, nil
}

// DeleteVolume removes the volume's disk, file and subvolume; a volume that does not exist is success.
func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	b, name, err := d.resolve(id, "volume")
	if err != nil {
		return nil, err
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	if err := b.Volumes.Delete(ctx, name, b.DefaultLocation); err != nil {
		return nil, toStatus(err)
	}
	d.open.Delete(id) // a volume made again under this id may be restricted
	return &csi.DeleteVolumeResponse{}, nil
}

// ControllerExpandVolume grows the disk; filesystem volumes then need the node to grow the filesystem.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	b, name, err := d.resolve(id, "volume")
	if err != nil {
		return nil, err
	}
	if req.GetCapacityRange() == nil {
		return nil, invalid("capacity range is missing")
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := checkCapability(c); err != nil {
			return nil, invalid("unsupported volume capability: %v", err)
		}
	}
	release, err := d.guard.acquire(id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer release()
	v, err := b.Volumes.Expand(ctx, name, req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes())
	if err != nil {
		return nil, toStatus(err)
	}
	nodeExpansion := req.GetVolumeCapability().GetBlock() == nil
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: v.SizeBytes, NodeExpansionRequired: nodeExpansion}, nil
}

// ValidateVolumeCapabilities confirms the capabilities this driver can serve for an existing volume.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	b, name, err := d.resolve(req.GetVolumeId(), "volume")
	if err != nil {
		return nil, err
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("volume capabilities are missing")
	}
	if _, err := b.Volumes.Get(ctx, name); err != nil {
		return nil, toStatus(err)
	}
	for _, c := range req.GetVolumeCapabilities() {
		if err := checkCapability(c); err != nil {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters(),
	}}, nil
}

// ListVolumes pages through the driver's volumes in id order.
func (d *Driver) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	vols, next, err := d.page(ctx, req.GetMaxEntries(), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for i := range vols {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{
			Volume: &csi.Volume{VolumeId: vols[i].ID, CapacityBytes: vols[i].SizeBytes},
			Status: &csi.ListVolumesResponse_VolumeStatus{PublishedNodeIds: d.attach.PublishedNodeIDs(vols[i].ID)},
		})
	}
	return resp, nil
}

// GetCapacity reports the free space of the pool of the StorageClass's box (rdsBox) as that RDS counts it.
// external-provisioner asks once per StorageClass (the driver reports no topology: every node reaches every
// box), so each box's StorageClasses carry that box's capacity (docs/architecture.md §8).
func (d *Driver) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if checkCapability(c) != nil {
			return &csi.GetCapacityResponse{}, nil // no capacity for volumes this driver cannot make
		}
	}
	p, err := d.parseParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	free, err := p.box.Volumes.Capacity(ctx, p.location.Pool)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.GetCapacityResponse{AvailableCapacity: free, MinimumVolumeSize: wrapperspb.Int64(volume.MinSize)}, nil
}

// ControllerGetVolume reads one volume.
func (d *Driver) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	id := req.GetVolumeId()
	b, name, err := d.resolve(id, "volume")
	if err != nil {
		return nil, err
	}
	v, err := b.Volumes.Get(ctx, name)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.ControllerGetVolumeResponse{
		Volume: &csi.Volume{VolumeId: b.id(v.ID), CapacityBytes: v.SizeBytes},
		Status: &csi.ControllerGetVolumeResponse_VolumeStatus{PublishedNodeIds: d.attach.PublishedNodeIDs(id)},
	}, nil
}

// ControllerGetVolumeHealth reports a volume INACCESSIBLE when its disk is not exported or its backing file
// is gone; an empty list means healthy.
func (d *Driver) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	b, name, err := d.resolve(id, "volume")
	if err != nil {
		return nil, err
	}
	_, problem, err := b.Volumes.Health(ctx, name)
	if err != nil {
		return nil, toStatus(err)
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: volumeHealth(id, problem)}, nil
}

// ControllerListVolumeHealth pages through the health of every volume. It reads the disks once; a disk's
// file is not checked here (that costs one exec per volume), only its export.
func (d *Driver) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	vols, next, err := d.page(ctx, req.GetMaxEntries(), req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	resp := &csi.ControllerListVolumeHealthResponse{NextToken: next}
	for i := range vols {
		resp.Entries = append(resp.Entries, volumeHealth(vols[i].ID, exportProblem(&vols[i])))
	}
	return resp, nil
}

// ControllerGetCapabilities lists the controller capabilities declared in capabilities.go.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: controllerServiceCapabilities()}, nil
}

func exportProblem(v *volume.Volume) string {
	if !v.Exported {
		return fmt.Sprintf("disk %s is not exported over NVMe/TCP", v.ID)
	}
	return ""
}

func volumeHealth(id, problem string) *csi.VolumeHealth {
	h := &csi.VolumeHealth{VolumeId: id}
	if problem != "" {
		h.HealthStatuses = []*csi.VolumeHealth_VolumeHealthEntry{{
			Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: "RDSDiskUnavailable", Message: problem,
		}}
	}
	return h
}
