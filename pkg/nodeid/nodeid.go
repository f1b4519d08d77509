// Package nodeid is the one definition of the CSI node id rds-csi's node plugin reports at registration
// (NodeGetInfo), which Kubernetes stores in CSINode and the external-attacher passes back as
// ControllerPublish's and ControllerUnpublish's node_id. It is the node's Kubernetes name, followed by
// ",<host NQN>" when the node has a usable host NQN (/etc/nvme/hostnqn): that is how the controller learns
// which NVMe host NQN to allow on a volume's export (docs/architecture.md §3, "Host access control")
// without any privilege beyond what registration already has. Node names are DNS subdomains, so a ','
// can never be part of one.
package nodeid

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

const (
	// MaxLen is the longest node id every supported Kubernetes accepts in CSINode (csiNodeIDMaxLength;
	// newer API servers allow 256). A longer id falls back to the bare node name.
	MaxLen = 192
	// MaxHostNQNLen is the NVMe base specification's NQN limit.
	MaxHostNQNLen = 223
	sep           = ","
)

// hostNQNRE is an NQN (nqn.yyyy-mm.<reverse domain>:<rest>) in the character set RouterOS commands and
// configfs names can carry; the NVMe specification allows more (UTF-8), which this driver refuses.
var hostNQNRE = regexp.MustCompile(`^nqn\.[0-9]{4}-[0-9]{2}\.[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._:-]+$`)

// ValidHostNQN checks a host NQN: NQN syntax, at most 223 bytes.
func ValidHostNQN(nqn string) error {
	switch {
	case nqn == "":
		return fmt.Errorf("host NQN is empty")
	case len(nqn) > MaxHostNQNLen:
		return fmt.Errorf("host NQN %.40q... is %d bytes long, at most %d are allowed", nqn, len(nqn), MaxHostNQNLen)
	case !hostNQNRE.MatchString(nqn):
		return fmt.Errorf("host NQN %q is not of the form nqn.yyyy-mm.<domain>:<name> in [A-Za-z0-9._:-]", nqn)
	}
	return nil
}

// Format returns the node id for node name and host NQN, and why it had to leave the host NQN out (""
// when it did not): no host NQN, an invalid one, or an id longer than MaxLen.
func Format(name, hostNQN string) (id, dropped string) {
	if hostNQN == "" {
		return name, "no host NQN"
	}
	if err := ValidHostNQN(hostNQN); err != nil {
		return name, err.Error()
	}
	id = name + sep + hostNQN
	if len(id) > MaxLen {
		return name, fmt.Sprintf("node id %q would be %d bytes long; Kubernetes accepts at most %d in CSINode", id, len(id), MaxLen)
	}
	return id, ""
}

// Parse splits a node id into the Kubernetes node name and the host NQN ("" for a plain node id, the form
// of node plugins before host access control, or of a node without a host NQN). A host NQN that is not
// valid is an error; a plain id never is.
func Parse(id string) (name, hostNQN string, err error) {
	name, hostNQN, found := strings.Cut(id, sep)
	if !found {
		return id, "", nil
	}
	if name == "" {
		return "", "", fmt.Errorf("node id %q has no node name before ','", id)
	}
	if err := ValidHostNQN(hostNQN); err != nil {
		return name, "", fmt.Errorf("node id %q: %w", id, err)
	}
	return name, hostNQN, nil
}

// Name returns the Kubernetes node name of a node id in either form (what VolumeAttachment.spec.nodeName
// holds).
func Name(id string) string {
	name, _, _ := strings.Cut(id, sep)
	return name
}

// ReadHostNQN reads the host NQN file (/etc/nvme/hostnqn, which nvme-cli connects with), trimmed of
// surrounding whitespace, and checks it.
func ReadHostNQN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	nqn := strings.TrimSpace(string(b))
	if err := ValidHostNQN(nqn); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return nqn, nil
}
