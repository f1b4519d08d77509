package mount

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	mountutils "k8s.io/mount-utils"
)

// BindMount bind-mounts the directory source (normally the staging mount)
// onto target. A repeated call for the same source succeeds; a target
// holding something else is ErrTargetBusy.
//
// A bind mount ignores "ro" and other flags given with it, so they are
// applied by a second remount; if that fails the bind is undone rather than
// left writable.
func (m *Linux) BindMount(ctx context.Context, source, target string, readOnly bool, mountFlags []string) error {
	flags, err := checkMountFlags(mountFlags)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(source); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("bind source %s is not a directory", source)
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return fmt.Errorf("creating bind target: %w", err)
	}
	if info, err := m.mountAt(target); err != nil {
		return err
	} else if info != nil {
		if !sameFile(source, target) {
			return fmt.Errorf("%w: %s has %s mounted, not a bind of %s", ErrTargetBusy, target, info.Source, source)
		}
		return checkReadOnly(info, target, readOnly)
	}
	return m.bind(ctx, source, target, readOnly, flags)
}

// PublishBlock makes targetFile the device: it creates the file and binds the
// device node onto it.
//
// Read-only is set on the bind mount, but Linux checks a mount's read-only
// flag only for regular files and directories: a device node opened through
// a read-only mount can still be written. What keeps a pod from writing a
// read-only raw block volume is the device permission ("r") that kubelet
// gives the container for it.
func (m *Linux) PublishBlock(ctx context.Context, device, targetFile string, readOnly bool) error {
	want, err := blockDeviceNumber(device)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(targetFile), 0o750); err != nil {
		return fmt.Errorf("creating block target directory: %w", err)
	}
	fi, err := os.Lstat(targetFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fh, err := os.OpenFile(targetFile, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o640)
		if err != nil {
			return fmt.Errorf("creating block target: %w", err)
		}
		fh.Close()
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("block target %s is a directory", targetFile)
	}
	if info, err := m.mountAt(targetFile); err != nil {
		return err
	} else if info != nil {
		var st unix.Stat_t
		if err := unix.Stat(targetFile, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want {
			return fmt.Errorf("%w: %s has another device or file bound onto it, not %s", ErrTargetBusy, targetFile, device)
		}
		return checkReadOnly(info, targetFile, readOnly)
	}
	return m.bind(ctx, device, targetFile, readOnly, nil)
}

// bind runs `mount -o bind` and, for read-only or extra flags, the remount
// that applies them, undoing the bind if the remount fails.
func (m *Linux) bind(ctx context.Context, source, target string, readOnly bool, flags []string) error {
	if _, err := m.run.Run(ctx, "mount", mountutils.MakeMountArgs(source, target, "", []string{"bind"})...); err != nil {
		return err
	}
	if readOnly || len(flags) > 0 {
		options := append([]string{"bind", "remount"}, flags...)
		if readOnly {
			options = append(options, "ro")
		}
		if _, err := m.run.Run(ctx, "mount", mountutils.MakeMountArgs(source, target, "", options)...); err != nil {
			if _, uerr := m.run.Run(context.WithoutCancel(ctx), "umount", target); uerr != nil {
				return fmt.Errorf("%w; undoing the bind also failed: %s", err, uerr.Error())
			}
			return err
		}
	}
	klog.InfoS("Bind-mounted", "source", source, "target", target, "readOnly", readOnly, "flags", flags)
	return nil
}

// sameFile reports whether a and b are the same inode, which is what a bind
// of a onto b shows.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

func checkReadOnly(info *mountutils.MountInfo, target string, readOnly bool) error {
	if isReadOnly(info) != readOnly {
		return fmt.Errorf("%w: %s is mounted read-only=%v, asked read-only=%v", ErrTargetBusy, target, isReadOnly(info), readOnly)
	}
	klog.V(2).InfoS("Already bind-mounted", "target", target)
	return nil
}

// maxStackedMounts bounds the unmount loop: a target can carry several
// mounts stacked on it (a retried publish racing a kubelet restart).
const maxStackedMounts = 8

// Unmount unmounts everything mounted at target and removes it (the
// directory or, for raw block, the file). A missing target is success.
//
// The target is removed with os.Remove, never RemoveAll: if an unmount
// silently did not happen, the volume's data must not be deleted through
// it.
func (m *Linux) Unmount(ctx context.Context, target string) error {
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for range maxStackedMounts {
		info, err := m.mountAt(target)
		if err != nil {
			return err
		}
		if info == nil {
			return removeTarget(target)
		}
		if _, err := m.run.Run(ctx, "umount", target); err != nil {
			// Something else may have unmounted it meanwhile; only a mount
			// that is still there makes this a failure.
			if still, cerr := m.IsMountPoint(target); cerr != nil || still {
				return err
			}
		}
		klog.InfoS("Unmounted", "target", target, "source", info.Source)
	}
	return fmt.Errorf("%s still mounted after %d unmounts", target, maxStackedMounts)
}

func removeTarget(target string) error {
	err := os.Remove(target)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		entries, _ := os.ReadDir(target)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return fmt.Errorf("%s is unmounted but not empty (%s); leaving it in place", target, strings.Join(names, ", "))
	}
	return err
}
