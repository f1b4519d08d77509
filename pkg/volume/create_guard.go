package volume

import (
	"context"
	"errors"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
)

// A create used to read the name's state first (checkName), then make the volume: two round trips. The
// read is there so that a subvolume is never added while the name is taken (a second subvolume of the same
// leaf could never be told apart from the first, routeros.md §1.4; and one added beside another tool's disk
// would be left behind if the driver died before removing it). A guard asks the same of the RDS itself:
//
//	:if ([:len [/disk find where slot=ID]] = 0 && [:len [/disk/btrfs/subvolume find where name~LEAF]] = 0 &&
//	    [:len [/file find where name=DIR]] = 0) do={subvolume add; disk add}
//
// followed, in the same script, by the read of the disk and of the subvolume (for its uuid). The guard is stricter than checkName (a leaf
// that only contains the id also holds it), so it never adds where checkName would not; what it declines,
// checkName decides. Whether the block ran is not printed: the read-back decides, as it does for a create
// repeated by the CO.

// guardsRun is implemented by a RouterOS whose scripts may stop before running a guard's block to its end
// (rds.Client): a guard's block of two commands is sent only where a failed command stops the script.
type guardsRun interface {
	ScriptsStop() bool
}

// SetGuards turns the guarded create, snapshot and restore on, once the start-up check (pkg/doctor) found that
// the RDS stops a script at a failed command and runs `:if` as documented. Off by default: a block of two
// commands on an RDS that goes on after a failure could add a disk without its subvolume.
func (m *Manager) SetGuards(on bool) { m.guards.Store(on) }

func (m *Manager) guardsOn() bool {
	if !m.guards.Load() {
		return false
	}
	if g, ok := m.ros.(guardsRun); ok && !g.ScriptsStop() {
		return false
	}
	return true
}

// addGuarded makes the volume in one exec when nothing holds its name, and decides a name held by a disk
// from the same exec's read-back. done is false when the name is held by something else (a leftover for
// checkName to clear) or the RDS does not run guards.
func (m *Manager) addGuarded(ctx context.Context, r CreateRequest, pi poolInfo, size int64) (*Volume, bool, error) {
	if !m.guardsOn() {
		return nil, false, nil
	}
	sv, err := rds.AddSubvolume(pi.label, r.Location.SubvolumeName(r.ID))
	if err != nil {
		return nil, true, err
	}
	disk, err := rds.AddFileDisk(rds.FileDiskSpec{
		Slot: r.ID, FilePath: r.Location.FilePath(r.ID, LayoutSubvolume), SizeBytes: size, NQN: NQN(r.ID), Port: r.Port,
		AllowedHosts: r.AllowedHosts,
	})
	if err != nil {
		return nil, true, err
	}
	guard, err := rds.Unless([]rds.Absence{
		rds.NoDisk(rds.Eq("slot", r.ID)),
		rds.NoSubvolume(rds.Match("name", regexQuote(r.ID))),
		rds.NoFile(rds.Eq("name", subvolumeDir(r.Location.Pool, r.Location.SubvolumeName(r.ID)))),
	}, sv, disk)
	if err != nil {
		return nil, true, err
	}
	// The disk decides; the subvolume listing gives its uuid for a one-exec delete (known.go). What the guard
	// declined, checkName reads whole.
	readDisk, err := rds.PrintDisks(rds.Eq("slot", r.ID))
	if err != nil {
		return nil, true, err
	}
	readSV, err := listSubvolumes(r.ID)
	if err != nil {
		return nil, true, err
	}
	out, err := m.ros.Run(ctx, []rds.Cmd{guard}, readDisk, readSV)
	switch {
	case errors.Is(err, rds.ErrInvalid):
		return nil, true, err
	case errors.Is(err, rds.ErrProtocol):
		// A console that does not speak :if refuses the whole script before running any of it.
		if m.guards.Swap(false) {
			klog.InfoS("the RDS refused a guarded create; from now on a create reads the name first", "err", err)
		}
		return nil, false, nil
	case err != nil:
		klog.V(2).InfoS("create did not finish in one script; reading the RDS to converge", "volumeID", r.ID, "err", err)
		v, err := m.converge(ctx, r, pi, size, LayoutSubvolume, err)
		return v, true, err
	}
	disks, err := rds.DisksFrom(out[0])
	if err != nil {
		return nil, true, err
	}
	if len(disks) == 0 {
		return nil, false, nil
	}
	v, err := existing(&disks[0], r)
	if err != nil {
		return nil, true, err
	}
	m.rememberListed(v, pi, out[1])
	return v, true, nil
}
