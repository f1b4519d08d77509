package driver

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/volume"
)

// StorageClass parameters (and the volume-context keys the node reads back).
const (
	paramBasePath       = "basePath"
	paramNVMeAddress    = "nvmeAddress"
	paramNVMePort       = "nvmePort"
	paramCtrlLossTmo    = "ctrlLossTmo"
	paramReconnectDelay = "reconnectDelay"
	paramKeepAliveTmo   = "keepAliveTmo"
	paramFSType         = "fsType"

	ctxNQN          = "nqn"
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
	location    volume.Location
	nvmeAddress string
	nvmePort    int
	// tunables go to the node unchanged but checked; empty means the node's default.
	ctrlLossTmo, reconnectDelay, keepAliveTmo string
	fsType                                    string
	metadata                                  map[string]string
}

// parseParams checks every parameter; an unknown one is an error naming it, so a typo in a StorageClass
// is found at the first PVC rather than silently ignored.
func (d *Driver) parseParams(in map[string]string) (*volumeParams, error) {
	p := &volumeParams{location: d.opts.DefaultLocation, nvmeAddress: d.opts.NVMeAddress, nvmePort: d.opts.NVMePort,
		metadata: map[string]string{}}
	var unknown []string
	for k, v := range in {
		var err error
		switch {
		case k == paramBasePath:
			p.location, err = volume.ParseLocation(v)
		case k == paramNVMeAddress:
			p.nvmeAddress, err = checkAddress(v)
		case k == paramNVMePort:
			p.nvmePort, err = checkInt(k, v, 1, 65535)
		case k == paramCtrlLossTmo:
			_, err = checkInt(k, v, -1, 1<<31-1)
			p.ctrlLossTmo = v
		case k == paramReconnectDelay:
			_, err = checkInt(k, v, 1, 3600)
			p.reconnectDelay = v
		case k == paramKeepAliveTmo:
			_, err = checkInt(k, v, 1, 3600)
			p.keepAliveTmo = v
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
		return nil, invalid("unknown StorageClass parameters: %s (known: basePath, nvmeAddress, nvmePort, "+
			"ctrlLossTmo, reconnectDelay, keepAliveTmo, fsType)", strings.Join(unknown, ", "))
	}
	if p.nvmeAddress == "" {
		return nil, invalid("no NVMe/TCP address: set the %s parameter or the driver's --nvme-address", paramNVMeAddress)
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
	for k, val := range p.metadata {
		c[k] = val
	}
	return c
}

func checkInt(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer in [%d, %d], got %q", name, lo, hi, v)
	}
	return n, nil
}

// checkAddress accepts an IP address or a DNS name; nothing else reaches the node's nvme command line.
func checkAddress(v string) (string, error) {
	if net.ParseIP(v) != nil {
		return v, nil
	}
	if len(v) == 0 || len(v) > 253 {
		return "", fmt.Errorf("%q is not an IP address or host name", v)
	}
	for _, label := range strings.Split(v, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%q is not an IP address or host name", v)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return "", fmt.Errorf("%q is not an IP address or host name", v)
			}
		}
	}
	return v, nil
}
