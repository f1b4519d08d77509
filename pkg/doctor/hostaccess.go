package doctor

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/volume"
)

// Connector is an NVMe/TCP initiator on the machine doctor runs on, used to see whether the RDS enforces
// nvme-tcp-server-allow-host-name: only an initiator can tell (NVMeCLI is the real one).
type Connector interface {
	// TryConnect connects to subsystem nqn at addr:port with host NQN hostNQN and disconnects again; an
	// error says the connection was refused (or failed), with the initiator's words.
	TryConnect(ctx context.Context, addr string, port int, nqn, hostNQN string) error
}

// NVMeCLI is the Connector of `rds-csi doctor --nvme-connect`: nvme-cli, as the node plugin uses it.
type NVMeCLI struct{}

// TryConnect runs nvme connect with --hostnqn, then nvme disconnect.
func (NVMeCLI) TryConnect(ctx context.Context, addr string, port int, nqn, hostNQN string) error {
	out, err := exec.CommandContext(ctx, "nvme", "connect", "-t", "tcp", "-a", addr, "-s", strconv.Itoa(port),
		"-n", nqn, "--hostnqn="+hostNQN).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nvme connect: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "nvme", "disconnect", "-n", nqn).CombinedOutput(); err != nil {
		return fmt.Errorf("connected, but nvme disconnect -n %s failed (disconnect it by hand): %v: %s", nqn, err,
			strings.TrimSpace(string(out)))
	}
	return nil
}

// checkAllowHostProperty is the read-only part, run at every controller start: a listing filtered on
// nvme-tcp-server-allow-host-name by a value nothing has. RouterOS refuses a where on a property its /disk
// menu does not have (UNVERIFIED: sim --allow-host-name absent); an empty listing says the box knows it.
// Whether the box honours it, only the host-access check (and an initiator) can tell.
func (r *runner) checkAllowHostProperty(ctx context.Context) Check {
	c := Check{Name: "allow-host-name",
		Hint: "keep hostAccessControl off in StorageClasses (the default): publishes of such volumes fail with FailedPrecondition"}
	cmd, err := rds.PrintDisks(rds.Eq(rds.AllowHostKey, "nqn.2000-02.io.srvlab.rds-csi:"+r.id+"-probe"))
	if err != nil {
		c.Status, c.Summary = Warn, err.Error()
		return c
	}
	x := r.exec(ctx, &c, "where", cmd.String())
	if x.Err != nil {
		c.Status, c.Summary = Warn, "the listing could not be run: "+x.Err.Error()
		return c
	}
	if _, why := detailItems(x); why != "" {
		r.report.Adaptation.HostAccessRefused = true
		c.Status, c.Summary = Warn, "the RDS does not know "+rds.AllowHostKey+" (a listing filtered on it failed: "+why+
			"): volumes with hostAccessControl cannot be published"
		return c
	}
	c.Status, c.Summary = Pass, "the RDS knows "+rds.AllowHostKey+" (a listing filtered on it ran); whether it "+
		"enforces it: the host-access check of `rds-csi doctor --nvme-connect`"
	return c
}

// checkHostAccess is the check behind the StorageClass parameter hostAccessControl: on a scratch disk,
// is nvme-tcp-server-allow-host-name taken at /disk add and /disk set and printed back, does a
// comma-separated list print back (the two nodes of a live migration), and, with a Connector, does the
// target refuse a host NQN it does not name and admit the one it names, and both of a list.
func (r *runner) checkHostAccess(ctx context.Context) Check {
	loc := r.opts.Location
	c := Check{Name: "host-access",
		Hint: "keep hostAccessControl off in StorageClasses (the default); please report this output to the project"}
	ad := &r.report.Adaptation
	fail := func(summary string) Check {
		c.Status, c.Summary = Warn, summary
		ad.HostAccess = "not usable: " + summary
		return c
	}
	slot := r.id + "-acl"
	file := loc.String() + "/" + slot + ".img"
	nqn := volume.NQN(slot)
	hostA, hostB := "nqn.2000-02.io.srvlab.rds-csi:"+r.id+"-host-a", "nqn.2000-02.io.srvlab.rds-csi:"+r.id+"-host-b"
	add, err := rds.AddFileDisk(rds.FileDiskSpec{Slot: slot, FilePath: file, SizeBytes: scratchDiskSize, NQN: nqn,
		AllowedHosts: []string{hostA}})
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
		return fail("adding a disk with " + rds.AllowHostKey + " failed: " + why)
	}
	readBack := func(label string, want ...string) (*rds.Disk, string) {
		disks, why := r.countDisks(ctx, &c, label, rds.Eq("slot", slot))
		switch {
		case why != "":
			return nil, why
		case len(disks) != 1:
			return nil, fmt.Sprintf("%d disks listed with slot %s", len(disks), slot)
		case !disks[0].AllowHostShown:
			return &disks[0], "the disk does not show " + rds.AllowHostKey
		case strings.Join(disks[0].AllowedHosts, ",") != strings.Join(want, ","):
			return &disks[0], fmt.Sprintf("it shows %s=%q, %q was set", rds.AllowHostKey, disks[0].Props[rds.AllowHostKey],
				strings.Join(want, ","))
		}
		return &disks[0], ""
	}
	set := func(label string, hosts ...string) string {
		cmd, err := rds.SetAllowedHosts(slot, nqn, hosts)
		if err != nil {
			return err.Error()
		}
		if bad, why := commandFailed(r.exec(ctx, &c, label, cmd.String())); bad {
			return why
		}
		_, why := readBack("print-"+label, hosts...)
		return why
	}
	disk, why := readBack("print", hostA)
	if why != "" {
		return fail("the disk added with " + rds.AllowHostKey + " does not read back: " + why)
	}
	list := "a comma-separated list of two host NQNs prints back (the two nodes of a live migration)"
	if why := set("set-list", hostA, hostB); why != "" {
		list = "a comma-separated list does not print back (" + why + "): live migrations of volumes with " +
			"hostAccessControl cannot allow both nodes"
	}
	c.Notes = append(c.Notes, list)
	if why := set("set", hostA); why != "" {
		return fail("/disk set of " + rds.AllowHostKey + " does not read back: " + why)
	}
	enforcement := "enforcement not checked: only an initiator can see it; run doctor with --nvme-connect on a " +
		"machine with nvme-cli that reaches the RDS's data address"
	status := Warn
	if r.opts.Connector != nil && disk.Exported {
		enforcement, status = r.tryHosts(ctx, &c, nqn, disk.Port, hostA, hostB, set)
	}
	c.Notes = append(c.Notes, enforcement)
	if bad, why := commandFailed(r.exec(ctx, &c, "remove", rmDisk.String())); bad {
		return fail("removing the disk failed: " + why)
	}
	if bad, why := commandFailed(r.exec(ctx, &c, "remove-file", rmFile.String())); bad {
		return fail("removing the file failed: " + why)
	}
	cl.done = true
	c.Status = status
	c.Summary = rds.AllowHostKey + " is accepted at /disk add and /disk set and printed back; " + enforcement
	ad.HostAccess = c.Summary
	if status == Pass {
		c.Hint = ""
	} else if strings.HasPrefix(enforcement, "enforcement not checked") {
		c.Hint = "run `rds-csi doctor --nvme-connect --nvme-address <data address>` before turning hostAccessControl on"
	}
	return c
}

// tryHosts connects as a host the export does not name (must be refused), as the one it names (must get
// in), and, with both listed, as the second; it says what it saw and whether hostAccessControl can be used.
func (r *runner) tryHosts(ctx context.Context, c *Check, nqn string, port int, hostA, hostB string,
	set func(label string, hosts ...string) string) (string, Status) {
	addr := r.opts.NVMeAddress
	if port == 0 {
		port = rds.DefaultPort
	}
	try := func(host string) error {
		err := r.opts.Connector.TryConnect(ctx, addr, port, nqn, host)
		res := "connected"
		if err != nil {
			res = "refused: " + err.Error()
		}
		x := Exchange{Label: c.Name + "-connect", Script: fmt.Sprintf(
			"(initiator) nvme connect -t tcp -a %s -s %d -n %s --hostnqn=%s", addr, port, nqn, host),
			Out: rds.RawOutput{Stdout: res, ExitStatus: -1}}
		if r.capture != nil {
			r.capture.write(x)
		}
		c.Exchanges = append(c.Exchanges, x)
		return err
	}
	if err := try(hostB); err == nil {
		return "NOT ENFORCED: a host NQN the export does not name connected", Warn
	}
	if err := try(hostA); err != nil {
		return "the host NQN the export names was refused too (is --nvme-address the data address?): " + err.Error(), Warn
	}
	if why := set("set-list-again", hostA, hostB); why != "" {
		return "enforced for one host NQN (the other was refused, the named one connected); a list is not taken", Pass
	}
	if err := try(hostB); err != nil {
		return "enforced for one host NQN, but with two listed the second was refused: live migrations of " +
			"volumes with hostAccessControl will fail", Warn
	}
	return "enforced: a host NQN it does not name was refused, the one it names connected, and both of a " +
		"comma-separated list connect", Pass
}
