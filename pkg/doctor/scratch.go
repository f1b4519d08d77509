package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// The checks that create scratch items. Every name they use starts with the run's own prefix
// (ScratchPrefix plus a random suffix), and an item's removal is registered before the command that
// creates it is sent, so an interrupted run still removes whatever may have been made.

// cleanupTimeout bounds the removal of scratch items after the run (or its interruption).
const cleanupTimeout = 2 * time.Minute

// cleanup is how to remove one scratch item: commands run in order, each harmless when the item is gone.
type cleanup struct {
	what     string
	commands []string
	done     bool
}

func (r *runner) register(what string, commands ...string) *cleanup {
	c := &cleanup{what: what, commands: commands}
	r.cleanups = append(r.cleanups, c)
	return c
}

func (r *runner) scratchChecks(ctx context.Context) {
	if failed := r.report.Failed(); len(failed) > 0 {
		for _, n := range []string{"base-dir", "subvolume", "disk", "host-access"} {
			r.skip(n, "needs "+strings.Join(failed, ", "))
		}
		return
	}
	if r.interrupted(ctx) {
		return
	}
	if c := r.done(ctx, r.checkBaseDir(ctx)); c.Status != Pass {
		r.skip("subvolume", "needs base-dir")
		r.skip("disk", "needs base-dir")
		r.skip("host-access", "needs base-dir")
		return
	}
	if r.report.Adaptation.PoolFS == "btrfs" {
		r.done(ctx, r.checkSubvolumes(ctx))
	} else {
		r.skip("subvolume", "the pool is not btrfs: volumes are flat files there")
	}
	if r.interrupted(ctx) {
		return
	}
	switch c := r.done(ctx, r.checkDisk(ctx)); {
	case c.Status != Pass:
		r.skip("host-access", "needs disk")
	case r.report.Adaptation.HostAccessRefused:
		r.skip("host-access", "the RDS does not know nvme-tcp-server-allow-host-name (check allow-host-name)")
	case !r.interrupted(ctx):
		r.done(ctx, r.checkHostAccess(ctx))
	}
	r.interrupted(ctx)
}

// checkBaseDir reads the base directory the scratch items go into. Doctor does not create it: a
// subvolume or disk below a missing directory would leave the directory behind, outside doctor's names.
func (r *runner) checkBaseDir(ctx context.Context) Check {
	loc := r.opts.Location
	c := Check{Name: "base-dir", Required: true}
	cmd, err := rds.PrintFiles(rds.Eq("name", loc.String()))
	if err != nil {
		c.Status, c.Summary = Fail, err.Error()
		return c
	}
	items, why := detailItems(r.exec(ctx, &c, "file-print", cmd.String()))
	switch {
	case why != "":
		c.Status, c.Summary = Fail, "reading the base directory failed: "+why
	case len(items) == 0:
		c.Status, c.Summary = Fail, loc.String()+" does not exist; the scratch checks would create it as a side effect, so they did not run"
		c.Hint = "create it once: on a btrfs pool `/disk/btrfs/subvolume/add fs=\"" + r.report.Adaptation.PoolLabel +
			"\" name=\"" + loc.Dir + "\"`, on another pool a directory (Files menu); then run doctor again"
	default:
		c.Status, c.Summary = Pass, fmt.Sprintf("%s exists (type=%s)", loc, items[0].Props["type"])
	}
	return c
}

// subvolumeRemoval removes a scratch subvolume whatever form its name prints in: by the leaf, then by
// the path (both are unique to this run).
func subvolumeRemoval(leaf, path string) []string {
	var out []string
	for _, n := range []string{leaf, path} {
		if cmd, err := rds.RemoveSubvolume("", n); err == nil {
			out = append(out, cmd.String())
		}
	}
	return out
}

func (r *runner) checkSubvolumes(ctx context.Context) Check {
	loc, label := r.opts.Location, r.report.Adaptation.PoolLabel
	c := Check{Name: "subvolume", Required: true,
		Hint: "the driver keeps each volume in a btrfs subvolume of its own; please report this output to the project"}
	// The snapshot goes where the driver puts one (docs/architecture.md §2): directly inside a container
	// subvolume beside the base directory (the driver's <dir>-snapshots.<hash>), made with the manual's
	// `add name=Snapshots` form, but of doctor's own name.
	leaf, snapLeaf := r.id, r.id+"-snap"
	container := loc.Dir + "-" + r.id
	path, snapPath := loc.Dir+"/"+leaf, container+"/"+snapLeaf
	containerLeaf := container[strings.LastIndex(container, "/")+1:]
	fail := func(summary string) Check { c.Status, c.Summary = Fail, summary; return c }

	add, err := rds.AddSubvolume(label, path)
	if err != nil {
		return fail(err.Error())
	}
	sub := r.register("subvolume "+path, subvolumeRemoval(leaf, path)...)
	if bad, why := commandFailed(r.exec(ctx, &c, "add", add.String())); bad {
		return fail("creating a subvolume failed: " + why)
	}
	// Which name finds it: the leaf, the path, or both.
	byLeaf, why := r.countSubvolumes(ctx, &c, "find-by-leaf", leaf)
	if why != "" {
		return fail("listing subvolumes failed: " + why)
	}
	byPath, why := r.countSubvolumes(ctx, &c, "find-by-path", path)
	if why != "" {
		return fail("listing subvolumes failed: " + why)
	}
	var form, name string
	switch {
	case byLeaf == 1 && byPath == 1:
		form, name = "both", leaf
	case byLeaf == 1 && byPath == 0:
		form, name = "leaf", leaf
	case byPath == 1 && byLeaf == 0:
		form, name = "path", path
	default:
		return fail(fmt.Sprintf("the new subvolume is found %d times by its leaf and %d times by its path; expected once by one of them", byLeaf, byPath))
	}
	r.report.Adaptation.SubvolumeNames = form
	c.Notes = append(c.Notes, "subvolume names print as "+form)
	// An independent read: the subvolume is a directory the file menu shows under the mount point.
	if n, why := r.countFiles(ctx, &c, "file-of-subvolume", rds.Eq("name", loc.Pool+"/"+path)); why != "" || n != 1 {
		return fail(fmt.Sprintf("/file print does not show the subvolume at %s/%s (%d found %s)", loc.Pool, path, n, why))
	}
	// The snapshots container, then a read-only snapshot in it, parent= by the leaf (the manual's form),
	// else by the path.
	addContainer, err := rds.AddSubvolume(label, container)
	if err != nil {
		return fail(err.Error())
	}
	snap := r.register("snapshot "+snapPath+" and its container "+container,
		append(subvolumeRemoval(snapLeaf, snapPath), subvolumeRemoval(containerLeaf, container)...)...)
	if bad, why := commandFailed(r.exec(ctx, &c, "add-container", addContainer.String())); bad {
		return fail("creating the snapshots container (a subvolume beside the base directory) failed: " + why)
	}
	parentForm := ""
	for _, try := range []struct{ form, parent string }{{"leaf", leaf}, {"path", path}} {
		cmd, err := rds.AddSnapshot(label, try.parent, snapPath, true)
		if err != nil {
			return fail(err.Error())
		}
		bad, why := commandFailed(r.exec(ctx, &c, "snapshot-parent-"+try.form, cmd.String()))
		if !bad {
			parentForm = try.form
			break
		}
		if r.interrupted(ctx) {
			return fail("interrupted")
		}
		c.Notes = append(c.Notes, "parent= by the "+try.form+" failed: "+why)
	}
	if parentForm == "" {
		return fail("no form of parent= made a snapshot")
	}
	r.report.Adaptation.SubvolumeParent = parentForm
	c.Notes = append(c.Notes, "parent= takes the "+parentForm)
	snapName := snapLeaf
	if form == "path" {
		snapName = snapPath
	}
	if n, why := r.countSubvolumes(ctx, &c, "find-snapshot", snapName); why != "" || n != 1 {
		return fail(fmt.Sprintf("the snapshot is not listed by its name %q (%d found %s)", snapName, n, why))
	}
	containerName := containerLeaf
	if form == "path" {
		containerName = container
	}
	// Remove all three, the way the driver does, and verify from the file menu too.
	for _, it := range []struct {
		label, name string
	}{{"remove-snapshot", snapName}, {"remove", name}, {"remove-container", containerName}} {
		cmd, err := rds.RemoveSubvolume("", it.name) // as the driver removes: by the name as printed
		if err != nil {
			return fail(err.Error())
		}
		if bad, why := commandFailed(r.exec(ctx, &c, it.label, cmd.String())); bad {
			return fail("removing " + it.name + " failed: " + why)
		}
	}
	sub.done = true
	snap.done = true
	left, why := r.countSubvolumes(ctx, &c, "verify-gone", r.id, "~")
	if why != "" {
		return fail("listing subvolumes after the removal failed: " + why)
	}
	files, why := r.countFiles(ctx, &c, "verify-files-gone", rds.Match("name", r.id))
	if why != "" {
		return fail("listing files after the removal failed: " + why)
	}
	if left+files > 0 {
		sub.done, snap.done = false, false
		return fail(fmt.Sprintf("the removals printed nothing, yet %d subvolumes and %d files named %s* remain", left, files, r.id))
	}
	c.Status = Pass
	c.Summary = fmt.Sprintf("created, found, snapshotted (into a container subvolume, as the driver does) and removed a scratch subvolume; names print as %s, parent= takes the %s", form, parentForm)
	return c
}

// countSubvolumes lists the subvolumes named name (op "=", the default) or matching it (op "~").
func (r *runner) countSubvolumes(ctx context.Context, c *Check, label, name string, op ...string) (int, string) {
	f := rds.Eq("name", name)
	if len(op) > 0 && op[0] == "~" {
		f = rds.Match("name", name)
	}
	cmd, err := rds.PrintSubvolumes(f)
	if err != nil {
		return 0, err.Error()
	}
	items, why := detailItems(r.exec(ctx, c, label, cmd.String()))
	return len(items), why
}

func (r *runner) countFiles(ctx context.Context, c *Check, label string, f rds.Filter) (int, string) {
	cmd, err := rds.PrintFiles(f)
	if err != nil {
		return 0, err.Error()
	}
	items, why := detailItems(r.exec(ctx, c, label, cmd.String()))
	return len(items), why
}

func (r *runner) countDisks(ctx context.Context, c *Check, label string, f rds.Filter) ([]rds.Disk, string) {
	cmd, err := rds.PrintDisks(f)
	if err != nil {
		return nil, err.Error()
	}
	items, why := detailItems(r.exec(ctx, c, label, cmd.String()))
	if why != "" {
		return nil, why
	}
	disks, err := rds.DisksFrom(items)
	if err != nil {
		return nil, err.Error()
	}
	return disks, ""
}

const (
	scratchDiskSize  = int64(1) << 30
	scratchGrownSize = int64(2) << 30
)

func (r *runner) checkDisk(ctx context.Context) Check {
	loc := r.opts.Location
	c := Check{Name: "disk", Required: true,
		Hint: "the driver makes every volume a file-backed disk exported over NVMe/TCP; check the pool's free " +
			"space and the user's write policy, and report this output to the project"}
	fail := func(summary string) Check { c.Status, c.Summary = Fail, summary; return c }
	slot := r.id
	file := loc.String() + "/" + slot + ".img"
	// On btrfs the driver keeps a volume's file in a subvolume of its own: so does the scratch disk, when
	// the subvolume check told how to name one for its removal.
	ad := r.report.Adaptation
	var subCleanup *cleanup
	subName := ""
	if ad.PoolLabel != "" && ad.SubvolumeNames != "" {
		volLeaf := r.id + "-vol"
		volPath := loc.Dir + "/" + volLeaf
		subName = volLeaf
		if ad.SubvolumeNames == "path" {
			subName = volPath
		}
		file = loc.Pool + "/" + volPath + "/" + volume.DiskFileName
		addSub, err := rds.AddSubvolume(ad.PoolLabel, volPath)
		if err != nil {
			return fail(err.Error())
		}
		subCleanup = r.register("subvolume "+volPath, subvolumeRemoval(volLeaf, volPath)...)
		if bad, why := commandFailed(r.exec(ctx, &c, "add-subvolume", addSub.String())); bad {
			return fail("creating the disk's subvolume failed: " + why)
		}
	}
	add, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: slot, FilePath: file, SizeBytes: scratchDiskSize,
		NQN: volume.NQN(slot)})
	if err != nil {
		return fail(err.Error())
	}
	rmDisk, err := rds.RemoveDisk(slot)
	if err != nil {
		return fail(err.Error())
	}
	rmFile, err := rds.RemoveFile(file)
	if err != nil {
		return fail(err.Error())
	}
	cl := r.register("disk "+slot+" and file "+file, rmDisk.String(), rmFile.String())
	if bad, why := commandFailed(r.exec(ctx, &c, "add", add.String())); bad {
		return fail("adding a 1 GiB file disk failed: " + why)
	}
	check := func(label string, want int64) string {
		disks, why := r.countDisks(ctx, &c, label, rds.Eq("slot", slot))
		switch {
		case why != "":
			return why
		case len(disks) != 1:
			return fmt.Sprintf("%d disks listed with slot %s", len(disks), slot)
		case disks[0].SizeBytes != want:
			return fmt.Sprintf("size %d, want %d", disks[0].SizeBytes, want)
		case disks[0].FilePath != file:
			return fmt.Sprintf("file-path %q, want %q", disks[0].FilePath, file)
		case disks[0].NQN != volume.NQN(slot) || !disks[0].Exported:
			return fmt.Sprintf("exported=%v nqn=%q, want an export as %q", disks[0].Exported, disks[0].NQN, volume.NQN(slot))
		}
		return ""
	}
	if why := check("print", scratchDiskSize); why != "" {
		return fail("the new disk does not read back: " + why)
	}
	grow, err := rds.SetDiskSize(slot, scratchGrownSize)
	if err != nil {
		return fail(err.Error())
	}
	if bad, why := commandFailed(r.exec(ctx, &c, "grow", grow.String())); bad {
		return fail("growing the disk with /disk set failed: " + why)
	}
	if why := check("print-grown", scratchGrownSize); why != "" {
		return fail("the grown disk does not read back: " + why)
	}
	if bad, why := commandFailed(r.exec(ctx, &c, "remove", rmDisk.String())); bad {
		return fail("removing the disk failed: " + why)
	}
	if disks, why := r.countDisks(ctx, &c, "print-removed", rds.Eq("slot", slot)); why != "" || len(disks) != 0 {
		return fail(fmt.Sprintf("the removed disk is still listed (%d) %s", len(disks), why))
	}
	n, why := r.countFiles(ctx, &c, "file-kept", rds.Eq("name", file))
	switch {
	case why != "":
		return fail("listing the disk's file failed: " + why)
	case n == 1:
		c.Notes = append(c.Notes, "/disk remove kept the backing file, as documented")
	default:
		c.Notes = append(c.Notes, "/disk remove also removed the backing file (the manual says it keeps it)")
	}
	again := r.exec(ctx, &c, "remove-again", rmDisk.String())
	c.Notes = append(c.Notes, "removing the disk again printed "+quoteOrNothing(again.Out.Stdout)+", exit status "+exitText(again.Out.ExitStatus))
	if bad, why := commandFailed(r.exec(ctx, &c, "remove-file", rmFile.String())); bad {
		return fail("removing the file failed: " + why)
	}
	cl.done = true
	if subCleanup != nil {
		rmSub, err := rds.RemoveSubvolume("", subName)
		if err != nil {
			return fail(err.Error())
		}
		if bad, why := commandFailed(r.exec(ctx, &c, "remove-subvolume", rmSub.String())); bad {
			return fail("removing the disk's subvolume failed: " + why)
		}
		subCleanup.done = true
	}
	disks, why := r.countDisks(ctx, &c, "verify-gone", rds.Match("slot", r.id))
	if why != "" {
		return fail("listing disks after the removal failed: " + why)
	}
	files, why := r.countFiles(ctx, &c, "verify-files-gone", rds.Match("name", r.id))
	if why != "" {
		return fail("listing files after the removal failed: " + why)
	}
	if len(disks)+files > 0 {
		cl.done = false
		if subCleanup != nil {
			subCleanup.done = false
		}
		return fail(fmt.Sprintf("the removals printed nothing, yet %d disks and %d files named %s* remain", len(disks), files, r.id))
	}
	c.Status = Pass
	c.Summary = "added a 1 GiB file disk exported over NVMe/TCP, read it back, grew it to 2 GiB with /disk set, removed it and its file"
	if subCleanup != nil {
		c.Summary = "in a subvolume of its own, as the driver does: " + c.Summary + ", then the subvolume"
	}
	return c
}

func quoteOrNothing(s string) string {
	if t := firstLine(s); t != "" {
		return fmt.Sprintf("%q", t)
	}
	return "nothing"
}

// runCleanup removes every scratch item still registered, on a fresh context so that an interrupted
// run cleans up too, then checks from the RDS's own listings that nothing with the run's prefix is left
// (retrying the removals, since a command cut off by the interruption may still have been running).
func (r *runner) runCleanup(parent context.Context) {
	pending := false
	for _, cl := range r.cleanups {
		pending = pending || !cl.done
	}
	if len(r.cleanups) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	c := Check{Name: "cleanup", Required: true}
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		if pending || attempt > 0 {
			for i := len(r.cleanups) - 1; i >= 0; i-- {
				cl := r.cleanups[i]
				if cl.done && attempt == 0 {
					continue
				}
				for _, cmd := range cl.commands {
					r.exec(ctx, &c, "remove", cmd)
				}
			}
		}
		left := r.leftovers(ctx, &c)
		if left == nil {
			c.Status, c.Summary = Pass, "nothing named "+r.id+"* is left on the RDS"
			if pending {
				c.Summary = "removed what the interrupted checks left; " + c.Summary
			}
			r.finish(c)
			return
		}
		c.Summary = strings.Join(left, "; ")
	}
	c.Status = Fail
	var made []string
	for _, cl := range r.cleanups {
		made = append(made, cl.what)
	}
	c.Hint = "remove the items named " + r.id + "* by hand (doctor's own scratch: " + strings.Join(made, ", ") + ")"
	r.finish(c)
}

// leftovers lists what the run's prefix still names on the RDS; nil when nothing.
func (r *runner) leftovers(ctx context.Context, c *Check) []string {
	var left []string
	if disks, why := r.countDisks(ctx, c, "verify-disks", rds.Match("slot", r.id)); why != "" {
		left = append(left, "disks unknown: "+why)
	} else if len(disks) > 0 {
		left = append(left, fmt.Sprintf("%d disks left", len(disks)))
	}
	if r.report.Adaptation.PoolFS == "btrfs" || r.report.Adaptation.PoolFS == "" {
		if n, why := r.countSubvolumes(ctx, c, "verify-subvolumes", r.id, "~"); why != "" {
			if r.report.Adaptation.PoolFS == "btrfs" {
				left = append(left, "subvolumes unknown: "+why)
			}
		} else if n > 0 {
			left = append(left, fmt.Sprintf("%d subvolumes left", n))
		}
	}
	if n, why := r.countFiles(ctx, c, "verify-files", rds.Match("name", r.id)); why != "" {
		left = append(left, "files unknown: "+why)
	} else if n > 0 {
		left = append(left, fmt.Sprintf("%d files left", n))
	}
	return left
}
