package nvme

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// sysfsView reads the kernel's NVMe state. Everything is read afresh on each
// call: device names change after reconnects and must never be cached.
type sysfsView struct {
	sysfsRoot string // normally /sys
	devRoot   string // normally /dev
}

// nvmeDisk matches the block devices that carry I/O: nvme<S>n<N> (named after
// the subsystem with native multipath, after the controller without it).
// The hidden per-path nodes nvme<C>c<P>n<N> that /sys/block also lists under
// native multipath have no /dev entry and do not match.
var nvmeDisk = regexp.MustCompile(`^nvme[0-9]+n[0-9]+$`)

// controller is one /sys/class/nvme/nvmeX entry.
type controller struct {
	name  string // nvme3
	state string // live, connecting, ...
}

// readAttr reads one sysfs attribute; the kernel ends values with "\n".
func readAttr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// controllers lists the controllers whose subsysnqn is nqn, sorted by name.
// A controller that vanishes while being read (a concurrent disconnect) is
// skipped, not an error.
func (v sysfsView) controllers(nqn string) ([]controller, error) {
	dir := filepath.Join(v.sysfsRoot, "class", "nvme")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// No NVMe driver loaded yet: nothing is connected.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var out []controller
	for _, e := range entries {
		got, err := readAttr(filepath.Join(dir, e.Name(), "subsysnqn"))
		if err != nil || got != nqn {
			continue
		}
		state, err := readAttr(filepath.Join(dir, e.Name(), "state"))
		if err != nil {
			continue
		}
		out = append(out, controller{name: e.Name(), state: state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// state aggregates the states of the NQN's controllers ("" if none).
func (v sysfsView) state(nqn string) (string, error) {
	ctrls, err := v.controllers(nqn)
	if err != nil {
		return "", err
	}
	best := ""
	for _, c := range ctrls {
		if best == "" || betterState(c.state, best) {
			best = c.state
		}
	}
	return best, nil
}

// namespaceCandidate is one /sys/block/nvme*n* disk of the wanted subsystem.
type namespaceCandidate struct {
	name  string
	nsid  string
	state string // of the controller behind it; "" for a multipath head
}

// device finds the /dev path of the NQN's namespace.
//
// For each /sys/block/nvme<X>n<N>, device/subsysnqn is the subsystem's NQN
// in both layouts: with native multipath "device" is the nvme-subsysS
// directory, without it the controller nvmeC. Without multipath the same
// namespace shows up once per controller (same nsid); the live one wins.
// Different nsids for one NQN mean the subsystem exports several namespaces,
// which the RDS never does for a volume, so that is an error rather than a
// guess.
func (v sysfsView) device(nqn string) (string, error) {
	dir := filepath.Join(v.sysfsRoot, "block")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", dir, err)
	}
	var found []namespaceCandidate
	for _, e := range entries {
		if !nvmeDisk.MatchString(e.Name()) {
			continue
		}
		base := filepath.Join(dir, e.Name())
		got, err := readAttr(filepath.Join(base, "device", "subsysnqn"))
		if err != nil || got != nqn {
			continue
		}
		nsid, err := readAttr(filepath.Join(base, "nsid"))
		if err != nil {
			continue
		}
		state, _ := readAttr(filepath.Join(base, "device", "state"))
		found = append(found, namespaceCandidate{name: e.Name(), nsid: nsid, state: state})
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%w %s in %s", ErrNoDevice, nqn, dir)
	}
	sort.Slice(found, func(i, j int) bool {
		li, lj := found[i].state == StateLive, found[j].state == StateLive
		if li != lj {
			return li
		}
		return found[i].name < found[j].name
	})
	for _, c := range found[1:] {
		if c.nsid != found[0].nsid {
			return "", fmt.Errorf("subsystem %s exposes several namespaces (%s nsid %s, %s nsid %s); an RDS volume has exactly one",
				nqn, found[0].name, found[0].nsid, c.name, c.nsid)
		}
	}
	dev := filepath.Join(v.devRoot, found[0].name)
	if _, err := os.Stat(dev); err != nil {
		// sysfs is ahead of devtmpfs for a moment after the namespace
		// appears; WaitForDevice keeps polling on this.
		return "", fmt.Errorf("%w %s: sysfs lists %s but %s is not there: %s", ErrNoDevice, nqn, found[0].name, dev, err.Error())
	}
	return dev, nil
}
