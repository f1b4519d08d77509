package nvme

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// NQNPrefix is the prefix of every subsystem NQN this driver creates on the
// RDS (`nqn.2000-02.com.mikrotik:<volume id>`). The node only connects to and
// disconnects from NQNs carrying it: a node may boot from NVMe-oF itself, and
// a subsystem we did not create is never ours to tear down.
//
// It is the one definition of the prefix: pkg/volume exports disks under
// VolumeNQN and lists them by it too. Existing users' volumes carry it, so it
// never changes.
const NQNPrefix = "nqn.2000-02.com.mikrotik:"

// VolumeNQN is the NQN a volume is exported under: NQNPrefix followed by the
// disk's slot, which is the volume id. Unstage has no volume context, so this
// is how the node finds the subsystem to disconnect; it can only ever name one
// of this driver's subsystems.
func VolumeNQN(id string) string { return NQNPrefix + id }

// Keys of the volume context the controller fills for every volume.
const (
	VolumeContextAddress        = "nvmeAddress"
	VolumeContextPort           = "nvmePort"
	VolumeContextNQN            = "nqn"
	VolumeContextCtrlLossTmo    = "ctrlLossTmo"
	VolumeContextReconnectDelay = "reconnectDelay"
	VolumeContextKeepAliveTmo   = "keepAliveTmo"
)

// DefaultPort is the NVMe/TCP port the RDS exports on, and the driver's
// default for --nvme-port: the one definition of it.
const DefaultPort = 4420

// maxNQNLength is the NVMe base specification limit for an NQN (223 bytes).
const maxNQNLength = 223

// ErrInvalidParams marks connection parameters that can never work; the
// driver maps it to InvalidArgument.
var ErrInvalidParams = errors.New("invalid NVMe connection parameters")

// ConnectParams is everything `nvme connect` needs for one volume.
type ConnectParams struct {
	// Transport is always "tcp" for the RDS.
	Transport string
	// Address is the RDS data address (IP literal or DNS name).
	Address string
	Port    int
	NQN     string
	// CtrlLossTmo is how many seconds the kernel keeps reconnecting a lost
	// controller before deleting it; -1 means forever.
	CtrlLossTmo int
	// ReconnectDelay is the pause in seconds between reconnect attempts.
	ReconnectDelay int
	// KeepAliveTmo is the keep-alive timeout in seconds, which is how fast
	// the host notices a dead target.
	KeepAliveTmo int
	// HostNQN identifies this node; "" means read it from the host NQN file
	// (/etc/nvme/hostnqn, mounted from the host by the node DaemonSet).
	HostNQN string
}

// DefaultConnectParams returns the defaults used when the StorageClass does
// not say otherwise.
//
// The RDS is one box that reboots for firmware updates, and a reboot with a
// RAID array can take many minutes. The kernel default ctrl_loss_tmo (600 s)
// would delete the controller during a slow reboot, fail all queued I/O and
// leave every filesystem on every node with I/O errors (ext4 remounts
// read-only, xfs shuts down). So CtrlLossTmo is -1: the kernel retries
// forever and I/O resumes when the RDS is back; pods block meanwhile, which is
// the lesser harm. An administrator who prefers failing fast sets
// ctrlLossTmo per StorageClass. ReconnectDelay is 5 s (kernel default 10 s)
// so I/O resumes within seconds of the RDS answering again; a reconnect
// attempt against a down host is one TCP SYN, so retrying often is cheap.
// KeepAliveTmo keeps the kernel's fabrics default of 5 s.
func DefaultConnectParams() ConnectParams {
	return ConnectParams{
		Transport:      "tcp",
		Port:           DefaultPort,
		CtrlLossTmo:    -1,
		ReconnectDelay: 5,
		KeepAliveTmo:   5,
	}
}

// ParseConnectParams reads the connection parameters the controller put in a
// volume's context. nvmeAddress and nqn are required; nvmePort defaults to
// 4420 and the timeouts to DefaultConnectParams. Unknown keys are ignored
// because the volume context carries other things too.
func ParseConnectParams(volumeContext map[string]string) (ConnectParams, error) {
	p := DefaultConnectParams()
	p.Address = volumeContext[VolumeContextAddress]
	p.NQN = volumeContext[VolumeContextNQN]
	ints := []struct {
		key      string
		dst      *int
		min, max int
	}{
		{VolumeContextPort, &p.Port, 1, 65535},
		// The kernel treats any negative value as "forever"; only -1 is
		// accepted so that a typo such as -10 is not silently infinite.
		{VolumeContextCtrlLossTmo, &p.CtrlLossTmo, -1, 1<<31 - 1},
		// The kernel rejects reconnect_delay 0.
		{VolumeContextReconnectDelay, &p.ReconnectDelay, 1, 1<<31 - 1},
		// keep_alive_tmo 0 disables keep-alive: an idle host would never
		// notice that the RDS went away.
		{VolumeContextKeepAliveTmo, &p.KeepAliveTmo, 1, 1<<31 - 1},
	}
	for _, f := range ints {
		raw, ok := volumeContext[f.key]
		if !ok {
			continue
		}
		v, err := strconv.Atoi(raw)
		if err != nil || v < f.min || v > f.max {
			return ConnectParams{}, fmt.Errorf("%w: volume context %s=%q must be an integer in [%d, %d]",
				ErrInvalidParams, f.key, raw, f.min, f.max)
		}
		*f.dst = v
	}
	if err := p.Validate(); err != nil {
		return ConnectParams{}, err
	}
	return p, nil
}

// Validate checks the parameters before anything is run with them. Connect
// calls it too, so hand-built parameters get the same checks as parsed ones.
func (p ConnectParams) Validate() error {
	if p.Transport != "tcp" {
		return fmt.Errorf("%w: transport %q is not supported (only tcp)", ErrInvalidParams, p.Transport)
	}
	if err := ValidateNQN(p.NQN); err != nil {
		return err
	}
	if !validAddress(p.Address) {
		return fmt.Errorf("%w: address %q is not an IP address or DNS name", ErrInvalidParams, p.Address)
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("%w: port %d out of range", ErrInvalidParams, p.Port)
	}
	if p.CtrlLossTmo < -1 || p.ReconnectDelay < 1 || p.KeepAliveTmo < 1 {
		return fmt.Errorf("%w: ctrlLossTmo=%d (>= -1), reconnectDelay=%d (>= 1), keepAliveTmo=%d (>= 1)",
			ErrInvalidParams, p.CtrlLossTmo, p.ReconnectDelay, p.KeepAliveTmo)
	}
	if p.HostNQN != "" && !nqnChars.MatchString(p.HostNQN) {
		return fmt.Errorf("%w: host NQN %q has characters outside [A-Za-z0-9._:-]", ErrInvalidParams, p.HostNQN)
	}
	return nil
}

// nqnChars is the character set of the NQNs this driver creates (the volume
// id is a CSI name such as pvc-<uuid>). NQNs may legally hold more, but
// nothing outside this set is ever passed to nvme-cli or compared in sysfs.
var nqnChars = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

// ValidateNQN accepts only NQNs of this driver: NQNPrefix followed by a
// non-empty volume id, within the specification's length limit.
func ValidateNQN(nqn string) error {
	if !strings.HasPrefix(nqn, NQNPrefix) || len(nqn) == len(NQNPrefix) {
		return fmt.Errorf("%w: NQN %q is not one of this driver's (%s<volume id>)", ErrForeignNQN, nqn, NQNPrefix)
	}
	if len(nqn) > maxNQNLength {
		return fmt.Errorf("%w: NQN is %d bytes, the limit is %d", ErrInvalidParams, len(nqn), maxNQNLength)
	}
	if !nqnChars.MatchString(nqn) {
		return fmt.Errorf("%w: NQN %q has characters outside [A-Za-z0-9._:-]", ErrInvalidParams, nqn)
	}
	return nil
}

// dnsLabel is one RFC 1123 label.
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// validAddress accepts an IP literal or a DNS name (nvme-cli resolves names
// for tcp). Anything else, notably a value starting with '-' that nvme-cli
// could mistake for an option, is refused.
func validAddress(a string) bool {
	if a == "" || len(a) > 253 {
		return false
	}
	if net.ParseIP(a) != nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(a, "."), ".") {
		if !dnsLabel.MatchString(label) {
			return false
		}
	}
	return true
}
