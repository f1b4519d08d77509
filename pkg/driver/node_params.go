package driver

import (
	"maps"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/rds-csi/rds-csi/pkg/node"
	"github.com/rds-csi/rds-csi/pkg/nvme"
)

// parseStageRequest reads what the controller put into the volume context. The NQN must be the one this
// driver derives from the volume id: unstage has no volume context and finds the subsystem by the id alone,
// so a volume staged under any other NQN could never be disconnected. A context without an NQN (a PV
// written by hand, or by a driver that did not record it) gets that one.
func parseStageRequest(id string, req *csi.NodeStageVolumeRequest) (node.StageRequest, error) {
	vc := req.GetVolumeContext()
	nqn := nvme.VolumeNQN(id)
	if _, ok := vc[nvme.VolumeContextNQN]; !ok {
		vc = maps.Clone(vc)
		if vc == nil {
			vc = map[string]string{}
		}
		vc[nvme.VolumeContextNQN] = nqn
	}
	conn, err := nvme.ParseConnectParams(vc)
	if err != nil {
		return node.StageRequest{}, invalid("volume context: %v", err)
	}
	if conn.NQN != nqn {
		return node.StageRequest{}, invalid("volume context names NQN %q, but volume %s is exported as %q", conn.NQN, id, nqn)
	}
	c := req.GetVolumeCapability()
	s := node.StageRequest{ID: id, Staging: req.GetStagingTargetPath(), Conn: conn, Block: c.GetBlock() != nil,
		ReadOnly: readOnlyMode(c.GetAccessMode().GetMode())}
	if m := c.GetMount(); m != nil {
		s.MountFlags = m.GetMountFlags()
		s.FSType = m.GetFsType()
		if s.FSType == "" {
			s.FSType = vc[paramFSType]
		}
		if s.FSType != "" && !supportedFSTypes[s.FSType] {
			return node.StageRequest{}, invalid("volume context %s=%q is not supported (use ext4 or xfs)", paramFSType, s.FSType)
		}
	}
	return s, nil
}

// readOnlyMode reports whether an access mode only reads: such a volume is mounted read-only at the staging
// path, so no pod on the node can write through any of its publishes.
func readOnlyMode(m csi.VolumeCapability_AccessMode_Mode) bool {
	return m == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY || m == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
}

// volumeUsage is NodeGetVolumeStats' answer: bytes of a block volume, bytes and inodes of a filesystem.
func volumeUsage(u node.Usage) []*csi.VolumeUsage {
	if u.Block {
		return []*csi.VolumeUsage{{Total: u.SizeBytes, Unit: csi.VolumeUsage_BYTES}}
	}
	st := u.FS
	return []*csi.VolumeUsage{
		{Available: st.AvailableBytes, Total: st.TotalBytes, Used: st.UsedBytes, Unit: csi.VolumeUsage_BYTES},
		{Available: st.FreeInodes, Total: st.TotalInodes, Used: st.UsedInodes, Unit: csi.VolumeUsage_INODES},
	}
}
