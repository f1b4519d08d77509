package driver

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/nvme"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// StorageClass parameters (and the volume-context keys the node reads back).
const (
	paramBasePath = "basePath"
	paramFSType   = "fsType"
	// paramHostAccessControl "true" restricts the volume's export to the nodes it is published to
	// (hostaccess.go); it is kept in the volume context, which is how ControllerPublish learns it.
	paramHostAccessControl = "hostAccessControl"
	// The connection parameters are the node's volume-context keys (pkg/nvme), which also owns their rules.
	paramNVMeAddress    = nvme.VolumeContextAddress
	paramNVMePort       = nvme.VolumeContextPort
	paramCtrlLossTmo    = nvme.VolumeContextCtrlLossTmo
	paramReconnectDelay = nvme.VolumeContextReconnectDelay
	paramKeepAliveTmo   = nvme.VolumeContextKeepAliveTmo

	ctxNQN          = nvme.VolumeContextNQN
	ctxPVCName      = "csi.storage.k8s.io/pvc/name"
	ctxPVCNamespace = "csi.storage.k8s.io/pvc/namespace"
	ctxPVName       = "csi.storage.k8s.io/pv/name"
)

// metadataParams are added by external-provisioner --extra-create-metadata; they are kept in the volume
// context (events find the PVC through them) and are never an error.
var metadataParams = map[string]bool{ctxPVCName: true, ctxPVCNamespace: true, ctxPVName: true}

var supportedFSTypes = map[string]bool{"ext4": true, "xfs": true}

// volumeParams is a validated StorageClass.
type volumeParams struct {
	box         *box // the RDS box the volume lives on (rdsBox; the default box when absent)
	location    volume.Location
	nvmeAddress string
	nvmePort    int
	// tunables go to the node unchanged but checked; empty means the node's default.
	ctrlLossTmo, reconnectDelay, keepAliveTmo string
	fsType                                    string
	hostAccess                                bool
	metadata                                  map[string]string
}

// parseParams checks every parameter; an unknown one is an error naming it, so a typo in a StorageClass
// is found at the first PVC rather than silently ignored.
func (d *Driver) parseParams(in map[string]string) (*volumeParams, error) {
	if d.boxes == nil {
		return nil, invalid("this process manages no RDS")
	}
	b, err := d.boxes.byParam(in[paramBox]) // first: the box's defaults are the other parameters' defaults
	if err != nil {
		return nil, err
	}
	p := &volumeParams{box: b, location: b.DefaultLocation, nvmeAddress: b.NVMeAddress, nvmePort: d.opts.NVMePort,
		metadata: map[string]string{}}
	var unknown []string
	for k, v := range in {
		var err error
		switch {
		case k == paramBox:
		case k == paramBasePath:
			p.location, err = volume.ParseLocation(v)
		case k == paramNVMeAddress:
			err = checkConnectParam(k, v)
			p.nvmeAddress = v
		case k == paramNVMePort:
			if err = checkConnectParam(k, v); err == nil {
				p.nvmePort, err = strconv.Atoi(v)
			}
		case k == paramCtrlLossTmo:
			err = checkConnectParam(k, v)
			p.ctrlLossTmo = v
		case k == paramReconnectDelay:
			err = checkConnectParam(k, v)
			p.reconnectDelay = v
		case k == paramKeepAliveTmo:
			err = checkConnectParam(k, v)
			p.keepAliveTmo = v
		case k == paramHostAccessControl:
			p.hostAccess, err = parseHostAccess(v)
		case k == paramFSType:
			if !supportedFSTypes[v] {
				err = fmt.Errorf("fsType %q is not supported (use ext4 or xfs)", v)
			}
			p.fsType = v
		case metadataParams[k]:
			p.metadata[k] = v
		default:
			unknown = append(unknown, k)
		}
		if err != nil {
			return nil, invalid("StorageClass parameter %s: %v", k, err)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, invalid("unknown StorageClass parameters: %s (known: rdsBox, basePath, nvmeAddress, nvmePort, "+
			"ctrlLossTmo, reconnectDelay, keepAliveTmo, fsType, hostAccessControl)", strings.Join(unknown, ", "))
	}
	if p.nvmeAddress == "" {
		return nil, invalid("no NVMe/TCP address for box %s: set the %s parameter or the box's NVMe address", b.Name, paramNVMeAddress)
	}
	return p, nil
}

// volumeContext is what the node needs to attach the volume, carried in the PV.
func (p *volumeParams) volumeContext(v *volume.Volume) map[string]string {
	c := map[string]string{
		paramNVMeAddress: p.nvmeAddress,
		paramNVMePort:    strconv.Itoa(v.Port),
		ctxNQN:           v.NQN,
		paramBasePath:    v.Location.String(),
	}
	for k, val := range map[string]string{paramCtrlLossTmo: p.ctrlLossTmo, paramReconnectDelay: p.reconnectDelay,
		paramKeepAliveTmo: p.keepAliveTmo, paramFSType: p.fsType} {
		if val != "" {
			c[k] = val
		}
	}
	if p.hostAccess {
		c[paramHostAccessControl] = "true"
	}
	for k, val := range p.metadata {
		c[k] = val
	}
	return c
}

// allowedAtCreate is the export's host list of a new volume: closed (volume.NoHost) under host access
// control until a node is published, open otherwise.
func (p *volumeParams) allowedAtCreate() []string {
	if p.hostAccess {
		return []string{volume.NoHost}
	}
	return nil
}

// parseHostAccess reads hostAccessControl: "true" or "false", nothing else.
func parseHostAccess(v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not \"true\" or \"false\"", v)
}

// checkConnectParam checks one connection parameter with the node's own rules (nvme.ParseConnectParams),
// so a StorageClass the controller accepts can never be refused at NodeStage, and the other way round.
func checkConnectParam(key, value string) error {
	vc := map[string]string{nvme.VolumeContextAddress: "127.0.0.1", nvme.VolumeContextNQN: nvme.NQNPrefix + "check", key: value}
	if _, err := nvme.ParseConnectParams(vc); err != nil {
		return fmt.Errorf("%q is not valid: %w", value, err)
	}
	return nil
}
