package volume

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// A create on a btrfs pool must add nothing while its id is taken anywhere (checkName), yet reading the
// name's state first costs a round trip of its own. So, where the RDS is known to stop a script at its first
// failed command, the read runs inside the creating script, before the mutations (reads never stop a
// script): one exec = the name's state, `subvolume add`, `/disk add`, the read-backs. The normal path
// (nothing taken) is then one exec.
//
// When the state read first shows the id taken, the create undoes exactly what this call added, and only
// that: the subvolumes listed after the script whose uuids were not listed before it (a second subvolume
// with the same printed leaf is then still told apart, by uuid), and the disk and its file when the disk's
// slot was free before. Then it answers as checkName would have from the same state. Where the RDS may go
// on after a failed command (a `/disk add` could then run inside an admin's subvolume that `subvolume add`
// found existing), or where it is not known, the name's state is read in an exec of its own first, as before.

// readFirstRunner is what the one-exec create needs beyond RouterOS (rds.Client has both).
type readFirstRunner interface {
	// RunReadFirst runs pre, steps, then reads as one script; preOut is what pre saw before the steps.
	RunReadFirst(ctx context.Context, pre, steps []rds.Cmd, reads ...rds.Cmd) (preOut, out [][]routeros.Item, err error)
	// ScriptsStop tells whether the RDS is known to stop a script at a failed command.
	ScriptsStop(ctx context.Context) bool
}

// createReadingFirst is the one-exec create. done is false when it does not apply here (the RDS may go on
// after a failure, or the state read did not finish before anything was added): the caller reads first.
func (m *Manager) createReadingFirst(ctx context.Context, r CreateRequest, pi poolInfo, size int64) (*Volume, bool, error) {
	rf, ok := m.ros.(readFirstRunner)
	if !ok || !rf.ScriptsStop(ctx) {
		return nil, false, nil
	}
	pre, err := stateReads(r.ID, r.Location, pi)
	if err != nil {
		return nil, true, err
	}
	addSV, err := rds.AddSubvolume(pi.label, r.Location.SubvolumeName(r.ID))
	if err != nil {
		return nil, true, err
	}
	filePath := r.Location.FilePath(r.ID, LayoutSubvolume)
	addDisk, err := rds.AddFileDisk(rds.FileDiskSpec{
		Slot: r.ID, FilePath: filePath, SizeBytes: size, NQN: NQN(r.ID), Port: r.Port,
	})
	if err != nil {
		return nil, true, err
	}
	readDisk, err := rds.PrintDisks(rds.Eq("slot", r.ID))
	if err != nil {
		return nil, true, err
	}
	readSV, err := listSubvolumes(r.ID)
	if err != nil {
		return nil, true, err
	}
	preOut, out, runErr := rf.RunReadFirst(ctx, pre, []rds.Cmd{addSV, addDisk}, readDisk, readSV)
	if preOut == nil {
		if runErr == nil {
			runErr = fmt.Errorf("the script gave no state of the name: %w", rds.ErrProtocol)
		}
		if errors.Is(runErr, rds.ErrUnavailable) {
			// The outcome is unknown and so is what the name held before: nothing can be finished or undone
			// from this answer. A read tells whether the script got to its end (the volume is there, as asked);
			// without a disk, the CO's retry reads the name's state again, in its own script, and clears what
			// this one left.
			// When the id's disk is elsewhere, what this script may have added beside it goes now
			// (decideName), not only on a retry that might never come.
			st, err := m.readState(ctx, r.ID, r.Location, pi)
			if err != nil || st.disk == nil {
				return nil, true, runErr
			}
			return m.decideName(ctx, r, st)
		}
		// The script stopped at one of its reads, before any mutation: the caller reads the name's state and
		// goes on from what the RDS has.
		klog.V(2).InfoS("create's state read did not finish; reading the name's state first", "volumeID", r.ID, "err", runErr)
		return nil, false, nil
	}
	st, err := stateFrom(preOut, r.Location, pi, r.ID)
	if err != nil {
		return nil, true, err
	}
	taken := st.disk != nil || st.subvolume != nil || st.subvolumeErr != nil || st.dir || st.leafElsewhere
	switch {
	case !taken && runErr == nil:
		v, err := oneVolume(out[0], r.ID)
		if err != nil {
			return nil, true, err
		}
		m.rememberListed(v, pi, out[1])
		return v, true, checkCreated(v, r, size)
	case !taken && errors.Is(runErr, rds.ErrInvalid):
		return nil, true, runErr
	case !taken:
		klog.V(2).InfoS("create did not finish in one script; reading the RDS to converge", "volumeID", r.ID, "err", runErr)
		v, err := m.converge(ctx, r, pi, size, LayoutSubvolume, runErr)
		return v, true, err
	case runErr != nil && failedAt(runErr, addSV):
		// The script stopped at its first mutation: nothing was added.
		return m.answerTaken(ctx, r, pi, size, st)
	}
	// The id is taken and at least the subvolume was added: find and undo exactly this call's additions.
	var listing []routeros.Item
	if runErr == nil {
		listing = out[1]
	} else {
		more, err := m.ros.Run(ctx, nil, readSV)
		if err != nil {
			return nil, true, fmt.Errorf("volume name %q is taken on the RDS; listing what this create added failed: %w "+
				"(after: %s)", r.ID, err, runErr.Error())
		}
		listing = more[0]
	}
	added, err := addedUUIDs(preOut[1], listing)
	if err != nil {
		return nil, true, err
	}
	diskAdded := st.disk == nil && (runErr == nil || !failedAt(runErr, addDisk))
	if err := m.undoCreate(ctx, r, st, filePath, added, diskAdded); err != nil {
		return nil, true, fmt.Errorf("volume name %q is taken on the RDS, and what this create added could not be "+
			"removed: %w", r.ID, err)
	}
	return m.answerTaken(ctx, r, pi, size, st)
}

// answerTaken answers a create whose id was taken, from the state read before anything was added, as
// checkName does: from the disk, or by clearing the driver's own leftovers and creating.
func (m *Manager) answerTaken(ctx context.Context, r CreateRequest, pi poolInfo, size int64, st state) (*Volume, bool, error) {
	if v, done, err := m.decideName(ctx, r, st); done {
		return v, true, err
	}
	v, err := m.addThenConverge(ctx, r, pi, size, LayoutSubvolume)
	return v, true, err
}

// failedAt tells whether err is the RDS's refusal of cmd.
func failedAt(err error, cmd rds.Cmd) bool {
	var ce *rds.CommandError
	return errors.As(err, &ce) && ce.Step == cmd.String()
}

// addedUUIDs are the uuids listed after a create that were not listed before it. Every listed subvolume must
// carry one, or nothing can be told apart.
func addedUUIDs(before, after []routeros.Item) ([]string, error) {
	pre, err := rds.SubvolumesFrom(before)
	if err != nil {
		return nil, err
	}
	post, err := rds.SubvolumesFrom(after)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, sv := range pre {
		seen[sv.UUID] = true
	}
	var added []string
	for _, sv := range append(append([]rds.Subvolume{}, pre...), post...) {
		if sv.UUID == "" {
			return nil, fmt.Errorf("subvolume %q is listed without a uuid, so what a create added cannot be told apart: %w",
				sv.Name, rds.ErrProtocol)
		}
	}
	for _, sv := range post {
		if !seen[sv.UUID] {
			added = append(added, sv.UUID)
			seen[sv.UUID] = true
		}
	}
	return added, nil
}

// undoCreate removes what a create added while its id was taken: the subvolume it added (by uuid) with its
// directory, and the disk and its file when the disk's slot was free before. Its read-back must find them
// gone, with the base directory as the control.
func (m *Manager) undoCreate(ctx context.Context, r CreateRequest, st state, filePath string, added []string, diskAdded bool) error {
	if len(added) > 1 {
		return fmt.Errorf("%d subvolumes named like %q appeared during the create (another create of the same id?): "+
			"none is removed: %w", len(added), r.ID, ErrIncomplete)
	}
	var steps, reads []rds.Cmd
	var errs []error
	to := func(list *[]rds.Cmd) func(rds.Cmd, error) {
		return func(c rds.Cmd, e error) {
			errs = append(errs, e)
			*list = append(*list, c)
		}
	}
	if diskAdded {
		to(&steps)(rds.RemoveDiskIf(r.ID, NQN(r.ID), "^/*"+regexQuote(filePath)))
		to(&reads)(rds.PrintDisks(rds.Eq("slot", r.ID)))
		to(&steps)(rds.RemoveFile(filePath))
		to(&reads)(rds.PrintFiles(rds.Eq("name", filePath)))
	}
	if len(added) == 1 {
		to(&steps)(rds.RemoveSubvolumeByUUID(added[0]))
		if !st.dir {
			// The directory was not there before: it is the added subvolume's, and must be gone.
			dir := subvolumeDir(r.Location.Pool, r.Location.SubvolumeName(r.ID))
			to(&steps)(rds.RemoveFile(dir))
			to(&reads)(rds.PrintFiles(rds.Eq("name", dir)))
		}
	}
	if len(steps) == 0 {
		return nil
	}
	to(&reads)(controlRead(r.Location))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	out, err := m.ros.Run(ctx, steps, reads...)
	if err != nil {
		return err
	}
	last := len(out) - 1
	if err := checkControl(out[last], r.Location.String()); err != nil {
		return err
	}
	for i, items := range out[:last] {
		if len(items) > 0 {
			return fmt.Errorf("%s still present after removing it: %w", reads[i], ErrIncomplete)
		}
	}
	klog.V(2).InfoS("undid a create whose id is taken", "volumeID", r.ID, "subvolumes", added, "disk", diskAdded)
	return nil
}
