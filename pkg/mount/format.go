package mount

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"
	mountutils "k8s.io/mount-utils"
)

// refusedMountFlags change what gets mounted rather than how, so they are
// never taken from a volume capability.
var refusedMountFlags = []string{"bind", "rbind", "remount", "move", "loop"}

// checkMountFlags rejects flags that would make mount do something else
// than mount the volume, and drops empty ones.
func checkMountFlags(flags []string) ([]string, error) {
	var out []string
	for _, f := range flags {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, _, _ := strings.Cut(f, "=")
		if slices.Contains(refusedMountFlags, name) || strings.HasPrefix(name, "make-") {
			return nil, fmt.Errorf("%w: mount flag %q", ErrUnsupported, f)
		}
		out = append(out, f)
	}
	return out, nil
}

// normalizeFSType maps "" to the default and refuses what the driver does
// not format.
func normalizeFSType(fsType string) (string, error) {
	switch fsType {
	case "":
		return DefaultFSType, nil
	case FSTypeExt4, FSTypeXFS:
		return fsType, nil
	}
	return "", fmt.Errorf("%w: filesystem type %q (use ext4 or xfs)", ErrUnsupported, fsType)
}

// FormatAndMount mounts device at target, formatting it first only if it is
// provably blank, and tells whether it formatted.
//
// If target already has device mounted (a repeated NodeStage after a
// kubelet restart) it returns at once: probing or checking a mounted
// filesystem is never safe. A device holding another filesystem, a
// partition table or unknown data is refused (ErrNotBlank), and any doubt
// (ErrUncertain) is an error too. No fsck is run: ext4 and xfs replay their
// journals at mount, and a check would risk running against a device that
// another node still has mounted.
func (m *Linux) FormatAndMount(ctx context.Context, device, target, fsType string, mountFlags []string, readOnly bool) (bool, error) {
	fsType, err := normalizeFSType(fsType)
	if err != nil {
		return false, err
	}
	flags, err := checkMountFlags(mountFlags)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return false, fmt.Errorf("creating mount point: %w", err)
	}
	if done, err := m.alreadyMounted(device, target, fsType, readOnly); done || err != nil {
		return false, err
	}

	existing, err := m.probe(ctx, device)
	if err != nil {
		return false, err
	}
	switch {
	case existing == "" && readOnly:
		return false, fmt.Errorf("%w: %s is blank and the volume is read-only: nothing to mount", ErrUncertain, device)
	case existing == "":
		if err := m.format(ctx, device, fsType); err != nil {
			return false, err
		}
	case existing != fsType:
		return false, fmt.Errorf("%w: %s holds a %s filesystem, the volume asks for %s; it is not reformatted",
			ErrNotBlank, device, existing, fsType)
	}

	options := slices.Clone(flags)
	if readOnly {
		options = append(options, "ro")
	}
	if fsType == FSTypeXFS && !slices.Contains(options, "nouuid") {
		// A clone or restored snapshot carries its source's XFS UUID; without
		// nouuid it cannot be mounted on a node that has the source mounted.
		options = append(options, "nouuid")
	}
	if _, err := m.run.Run(ctx, "mount", mountutils.MakeMountArgs(device, target, fsType, options)...); err != nil {
		return false, err
	}
	klog.InfoS("Mounted volume", "device", device, "target", target, "fsType", fsType, "options", options,
		"formatted", existing == "")
	return existing == "", nil
}

// alreadyMounted reports whether device is mounted at target as asked. A
// different mount there is ErrTargetBusy.
func (m *Linux) alreadyMounted(device, target, fsType string, readOnly bool) (bool, error) {
	info, err := m.mountAt(target)
	if err != nil || info == nil {
		return false, err
	}
	want, err := blockDeviceNumber(device)
	if err != nil {
		return false, fmt.Errorf("%w: %s", ErrUncertain, err.Error())
	}
	devno, _, err := m.mountedDeviceNumber(target)
	if err != nil {
		return false, err
	}
	if devno != want {
		return false, fmt.Errorf("%w: %s has %s (%d:%d) mounted, not %s", ErrTargetBusy, target, info.Source,
			info.Major, info.Minor, device)
	}
	if info.FsType != fsType || isReadOnly(info) != readOnly {
		return false, fmt.Errorf("%w: %s is mounted as %s read-only=%v, asked %s read-only=%v",
			ErrTargetBusy, target, info.FsType, isReadOnly(info), fsType, readOnly)
	}
	klog.V(2).InfoS("Volume already mounted", "device", device, "target", target)
	return true, nil
}

// format makes a filesystem on a device probe found blank.
//
// No force flag is given: mkfs.xfs then refuses a device on which it sees
// any signature, a second line of defence should something have been
// written since the probe. (mkfs.ext4 does not ask when not on a terminal,
// so for ext4 the probe is the only guard.) -m0: a volume for one pod needs
// no blocks reserved for root.
func (m *Linux) format(ctx context.Context, device, fsType string) error {
	var args []string
	switch fsType {
	case FSTypeExt4:
		args = []string{"-m0", device}
	case FSTypeXFS:
		args = []string{device}
	}
	start := time.Now()
	if _, err := m.run.RunTimeout(ctx, m.opts.LongTimeout, "mkfs."+fsType, args...); err != nil {
		return err
	}
	klog.InfoS("Formatted blank device", "device", device, "fsType", fsType, "duration", time.Since(start))
	return nil
}
