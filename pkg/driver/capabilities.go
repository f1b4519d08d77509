package driver

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// The capabilities this driver declares, each in one list. Handlers check requests against these lists
// with the helpers below, so a capability is advertised only where it is implemented.
var (
	controllerCapabilities = []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_GET_VOLUME,
		csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	}

	nodeCapabilities = []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	}

	// Single-node modes work for filesystem and block volumes.
	singleNodeModes = map[csi.VolumeCapability_AccessMode_Mode]bool{
		csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:        true,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:   true,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER: true,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:  true,
	}
	// MULTI_NODE_MULTI_WRITER only for raw block: the two-node window of a KubeVirt live migration. A
	// filesystem mounted on two nodes at once would be corrupted, so it is refused.
	blockOnlyModes = map[csi.VolumeCapability_AccessMode_Mode]bool{
		csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER: true,
	}
)

func controllerServiceCapabilities() []*csi.ControllerServiceCapability {
	out := make([]*csi.ControllerServiceCapability, 0, len(controllerCapabilities))
	for _, c := range controllerCapabilities {
		out = append(out, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: c}},
		})
	}
	return out
}

func nodeServiceCapabilities() []*csi.NodeServiceCapability {
	out := make([]*csi.NodeServiceCapability, 0, len(nodeCapabilities))
	for _, c := range nodeCapabilities {
		out = append(out, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: c}},
		})
	}
	return out
}

// checkCapability says why a volume capability cannot be served, or nil.
func checkCapability(c *csi.VolumeCapability) error {
	if c == nil {
		return fmt.Errorf("volume capability is missing")
	}
	mode := c.GetAccessMode().GetMode()
	switch {
	case c.GetAccessMode() == nil:
		return fmt.Errorf("access mode is missing")
	case c.GetBlock() != nil:
		if !singleNodeModes[mode] && !blockOnlyModes[mode] {
			return fmt.Errorf("access mode %s is not supported for block volumes", mode)
		}
	case c.GetMount() != nil:
		if !singleNodeModes[mode] {
			return fmt.Errorf("access mode %s is not supported for filesystem volumes (multi-node access is block-only)", mode)
		}
		if fs := c.GetMount().GetFsType(); fs != "" && !supportedFSTypes[fs] {
			return fmt.Errorf("filesystem %q is not supported (use ext4 or xfs)", fs)
		}
	default:
		return fmt.Errorf("access type (mount or block) is missing")
	}
	return nil
}

func checkCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return invalid("volume capabilities are missing")
	}
	for _, c := range caps {
		if err := checkCapability(c); err != nil {
			return invalid("unsupported volume capability: %v", err)
		}
	}
	return nil
}
