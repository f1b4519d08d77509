package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/pkg/rds"
	"github.com/rds-csi/rds-csi/pkg/routeros"
)

// Adaptation is what the driver does differently on this RDS, decided from what it answered.
type Adaptation struct {
	// Checked: the script check ran (false when the RDS could not be asked).
	Checked bool
	// OneCommandPerExec: a script does not reliably stop at a failing command (or that could not be
	// shown), so every command goes in its own exec (routeros.md §1).
	OneCommandPerExec bool
	// ScriptBehaviour says in words what a script with a failing middle command did.
	ScriptBehaviour string
	// FailingExitStatus is the exit status of an exec whose command failed (-1: none sent; 0: failures
	// are told from their text only).
	FailingExitStatus int
	RouterOSVersion   string
	// PoolFS and PoolLabel are the base path's pool filesystem and its label (what btrfs commands take
	// as fs=, routeros.md §1.4); PoolLabel is empty for a pool that is not btrfs.
	PoolFS, PoolLabel string
	// SubvolumeNames is how a subvolume's name prints and matches ("leaf", "path" or "both"), and
	// SubvolumeParent what parent= takes ("leaf" or "path"); empty until the subvolume check has run.
	SubvolumeNames, SubvolumeParent string
	// HostAccess says what the host-access check found about nvme-tcp-server-allow-host-name; empty until
	// it has run.
	HostAccess string
	// HostAccessRefused: the allow-host-name check saw the RDS refuse the property, so volumes with
	// hostAccessControl cannot work (the driver refuses them with FailedPrecondition).
	HostAccessRefused bool
	// Guards: the RDS runs `:if ([:len [find ...]] = 0) do={...}` as the manual documents, so a create is one
	// exec (pkg/volume create_guard.go); false when the guard check found otherwise.
	Guards bool
}

func (a Adaptation) lines() []string {
	var out []string
	switch {
	case !a.Checked:
		out = append(out, "script mode: not checked (the RDS could not be asked); the configured mode stays")
	case a.OneCommandPerExec:
		out = append(out, "script mode: falls back to one command per exec ("+a.ScriptBehaviour+")")
	default:
		out = append(out, "script mode: markers behave ("+a.ScriptBehaviour+")")
	}
	if a.Checked {
		switch a.FailingExitStatus {
		case 0:
			out = append(out, "failing commands exit with status 0: failures are told from their text only")
		case -1:
			out = append(out, "failing commands end without an exit status: failures are told from their text only")
		default:
			out = append(out, fmt.Sprintf("failing commands exit with status %d", a.FailingExitStatus))
		}
	}
	if a.PoolFS != "" {
		if a.PoolLabel != "" {
			out = append(out, fmt.Sprintf("pool filesystem: %s, btrfs commands use fs=%q", a.PoolFS, a.PoolLabel))
		} else {
			out = append(out, fmt.Sprintf("pool filesystem: %s: volumes are flat files, no snapshots", a.PoolFS))
		}
	}
	if a.SubvolumeNames != "" {
		out = append(out, "subvolume names print as "+a.SubvolumeNames)
	}
	if a.SubvolumeParent != "" {
		out = append(out, "subvolume parent= takes the "+a.SubvolumeParent)
	}
	switch {
	case a.HostAccessRefused:
		out = append(out, "host access control: the RDS does not know nvme-tcp-server-allow-host-name; "+
			"volumes with hostAccessControl are refused")
	case a.HostAccess != "":
		out = append(out, "host access control: "+a.HostAccess)
	}
	return out
}

func printAdaptation(w io.Writer, r *Report) {
	fmt.Fprintln(w, "adaptation:")
	for _, l := range r.Adaptation.lines() {
		fmt.Fprintln(w, "  "+l)
	}
	switch failed := r.Failed(); {
	case len(failed) > 0:
		fmt.Fprintf(w, "result: FAILED: the driver cannot work with this RDS until these pass: %s\n", strings.Join(failed, ", "))
	case r.Interrupted:
		fmt.Fprintln(w, "result: INTERRUPTED: not every check ran")
	default:
		fmt.Fprintln(w, "result: every required check passed")
	}
}

// readOnlyChecks run the checks that change nothing on the RDS.
func (r *runner) readOnlyChecks(ctx context.Context) {
	if c := r.done(ctx, r.checkSSH(ctx)); c.Status != Pass && c.Status != Warn {
		for _, n := range []string{"routeros", "rose-storage", "pool", "script", "guard", "allow-host-name"} {
			r.skip(n, "needs ssh")
		}
		return
	}
	for _, check := range []func(context.Context) Check{r.checkRouterOS, r.checkRoseStorage, r.checkPool, r.checkScript, r.checkGuard,
		r.checkAllowHostProperty} {
		if r.interrupted(ctx) {
			return
		}
		r.done(ctx, check(ctx))
	}
}

func (r *runner) checkSSH(ctx context.Context) Check {
	c := Check{Name: "ssh", Required: true}
	word := r.id + "-ping"
	x := r.exec(ctx, &c, "ping", `:put "`+word+`"`)
	var hk *rds.HostKeyError
	switch {
	case errors.As(x.Err, &hk):
		c.Status, c.Summary = Fail, "the RDS's SSH host key does not match --rds-host-key"
		c.Hint = "get the key with `ssh-keyscan -t ed25519 <rds>`, compare its fingerprint with `/ip ssh print` " +
			"on the RDS console, and pass that line with --rds-host-key"
	case errors.Is(x.Err, rds.ErrPermission):
		c.Status, c.Summary = Fail, "the RDS refused the login"
		c.Hint = "check --rds-user and --rds-key-file; import the public key for that user on the RDS " +
			"(`/user ssh-keys import public-key-file=... user=...`)"
	case x.Err != nil:
		c.Status, c.Summary = Fail, "the RDS cannot be reached over SSH"
		c.Hint = "check --rds-address (HOST[:PORT]), that the ssh service is enabled (`/ip service print`) " +
			"and that no firewall blocks it"
	case !hasLine(x.Out.Stdout, word):
		c.Status, c.Summary = Fail, "logged in, but `:put` did not print its word back: this is not a RouterOS console"
		c.Hint = "check that --rds-address is the RDS's management address"
	case r.opts.HostKeyUnverified:
		c.Status, c.Summary = Warn, "logged in and ran a command, but the host key was NOT verified (--rds-insecure-skip-host-key-check)"
		c.Hint = "pin the host key with --rds-host-key"
	default:
		c.Status, c.Summary = Pass, "logged in and ran a command; the host key matches --rds-host-key"
	}
	return c
}

func (r *runner) checkRouterOS(ctx context.Context) Check {
	c := Check{Name: "routeros", Required: true,
		Hint: "the driver needs RouterOS 7 (its /disk/btrfs and NVMe/TCP menus); upgrade the RDS"}
	x := r.exec(ctx, &c, "resource-print", "/system resource print")
	if failed, why := readFailed(x); failed {
		c.Status, c.Summary = Fail, "`/system resource print` failed: "+why
		c.Hint = "the RDS user needs the read policy"
		return c
	}
	kv, err := routeros.ParseKeyValueLines(x.Out.Stdout)
	if err != nil {
		c.Status, c.Summary = Fail, "`/system resource print` printed something unexpected: "+err.Error()
		return c
	}
	version := kv["version"]
	r.report.Adaptation.RouterOSVersion = version
	major, ok := majorVersion(version)
	what := fmt.Sprintf("RouterOS %s on %s (%s)", orUnknown(version), orUnknown(kv["board-name"]), orUnknown(kv["architecture-name"]))
	switch {
	case !ok:
		c.Status, c.Summary = Fail, what+": the version does not parse"
	case major < 7:
		c.Status, c.Summary = Fail, what+": older than RouterOS 7"
	default:
		c.Status, c.Summary = Pass, what
	}
	return c
}

func (r *runner) checkRoseStorage(ctx context.Context) Check {
	c := Check{Name: "rose-storage", Required: true,
		Hint: "install and enable the rose-storage package (`/system package enable rose-storage`, then " +
			"`/system package apply-changes` or a reboot): it provides the disk, RAID and NVMe/TCP features"}
	x := r.exec(ctx, &c, "package-print", "/system package print")
	if failed, why := readFailed(x); failed {
		c.Status, c.Summary = Fail, "`/system package print` failed: "+why
		return c
	}
	pkgs := parsePackages(x.Out.Stdout)
	p, ok := pkgs["rose-storage"]
	switch {
	case !ok:
		c.Status, c.Summary = Fail, "the rose-storage package is not installed"
	case strings.ContainsAny(p.flags, "XA") || p.version == "":
		c.Status, c.Summary = Fail, fmt.Sprintf("the rose-storage package is listed but not active (flags %q)", p.flags)
	default:
		c.Status, c.Summary = Pass, "rose-storage "+p.version+" is installed"
		if ros, ok := pkgs["routeros"]; ok && ros.version != "" && ros.version != p.version {
			c.Notes = append(c.Notes, fmt.Sprintf("rose-storage %s differs from routeros %s: RouterOS loads only packages of its own version", p.version, ros.version))
		}
	}
	return c
}

func (r *runner) checkPool(ctx context.Context) Check {
	loc := r.opts.Location
	c := Check{Name: "pool", Required: true,
		Hint: "--base-path is <pool mount point>/<directory>; list the pools with `/disk print detail where mount-point!=\"\"`"}
	cmd, err := rds.PrintDisks(rds.Eq("mount-point", loc.Pool))
	if err != nil {
		c.Status, c.Summary = Fail, err.Error()
		return c
	}
	x := r.exec(ctx, &c, "disk-print", cmd.String())
	disks, why := detailItems(x)
	if why != "" {
		c.Status, c.Summary = Fail, "reading the pool failed: "+why
		return c
	}
	if len(disks) != 1 {
		c.Status, c.Summary = Fail, fmt.Sprintf("%d disks are mounted at %q; expected exactly one pool", len(disks), loc.Pool)
		return c
	}
	pool, err := rds.DisksFrom(disks)
	if err != nil {
		c.Status, c.Summary = Fail, err.Error()
		return c
	}
	p := pool[0]
	label := p.Props["fs-label"]
	c.Summary = fmt.Sprintf("pool %q mounted at %q: fs=%s size=%s free=%s fs-label=%q", p.Slot, loc.Pool, orUnknown(p.FS),
		gib(p.SizeBytes), gib(p.FreeBytes), label)
	r.report.Adaptation.PoolFS = p.FS
	switch p.FS {
	case "btrfs":
		fsLabel, note := r.btrfsLabel(ctx, &c, p.Slot, label)
		if note != "" {
			c.Notes = append(c.Notes, note)
		}
		if fsLabel == "" {
			c.Status = Fail
			c.Hint = "give the pool's btrfs filesystem a label: `/disk/btrfs/filesystem set [find where present-devs=" +
				p.Slot + "] label=<name>`"
			return c
		}
		r.report.Adaptation.PoolLabel = fsLabel
		c.Notes = append(c.Notes, fmt.Sprintf("btrfs label %q: subvolume commands use fs=%q", fsLabel, fsLabel))
	case "":
		c.Status, c.Summary = Fail, c.Summary+": the pool shows no filesystem"
		c.Hint = "format the pool (`/disk format <pool> file-system=btrfs`) before using it"
		return c
	default:
		c.Notes = append(c.Notes, fmt.Sprintf("%s pool: volumes are flat files (no btrfs subvolumes, no snapshots)", p.FS))
	}
	if p.FreeBytes < 2<<30 {
		c.Notes = append(c.Notes, "less than 2 GiB free: the scratch disk check cannot run")
	}
	c.Status = Pass
	return c
}

// btrfsLabel finds the pool's btrfs label in `/disk/btrfs/filesystem print` (what the manual says fs=
// takes), falling back to the pool disk's fs-label when that menu gives no answer.
func (r *runner) btrfsLabel(ctx context.Context, c *Check, slot, diskLabel string) (string, string) {
	cmd, err := rds.PrintFilesystems()
	if err != nil {
		return "", err.Error()
	}
	x := r.exec(ctx, c, "btrfs-filesystem-print", cmd.String())
	items, why := detailItems(x)
	if why != "" {
		if diskLabel != "" {
			return diskLabel, "`/disk/btrfs/filesystem print` failed (" + why + "); using the pool's fs-label"
		}
		return "", "`/disk/btrfs/filesystem print` failed (" + why + ") and the pool shows no fs-label"
	}
	for _, it := range items {
		label := it.Props["label"]
		if label == "" {
			continue
		}
		if label == diskLabel || hasWord(it.Props["present-devs"], slot) || hasWord(it.Props["devs"], slot) {
			return label, ""
		}
	}
	if diskLabel != "" {
		return diskLabel, "no btrfs filesystem lists the pool by its label or devices; using the pool's fs-label"
	}
	return "", "no btrfs filesystem belongs to the pool, and it shows no fs-label"
}

// checkScript sends `:put a`, a command that fails at run time without changing anything (the traffic
// monitor of a disk that does not exist), and `:put b`: whether b prints decides the script mode.
func (r *runner) checkScript(ctx context.Context) Check {
	c := Check{Name: "script"}
	a, b, missing := r.id+"-a", r.id+"-b", r.id+"-missing"
	script := ":put \"" + a + "\"\n/disk monitor-traffic " + missing + " once\n:put \"" + b + "\"\n"
	x := r.exec(ctx, &c, "markers", script)
	ad := &r.report.Adaptation
	if x.Err != nil {
		c.Status, c.Summary = Warn, "the script could not be run: "+x.Err.Error()
		ad.Checked, ad.OneCommandPerExec, ad.ScriptBehaviour = true, true, "the check could not run"
		return c
	}
	ad.Checked, ad.FailingExitStatus = true, x.Out.ExitStatus
	gotA, gotB := hasLine(x.Out.Stdout, a), hasLine(x.Out.Stdout, b)
	errText := strings.TrimSpace(strings.NewReplacer(a, "", b, "").Replace(x.Out.Stdout + x.Out.Stderr))
	switch {
	case gotA && !gotB && errText != "":
		ad.ScriptBehaviour = "a failing command stops the script: " + firstLine(errText)
		c.Status, c.Summary = Pass, "markers behave: "+ad.ScriptBehaviour
	case gotA && gotB:
		ad.OneCommandPerExec = true
		ad.ScriptBehaviour = "the script went on after a failing command"
		c.Status, c.Summary = Warn, "markers do not prove success: the script went on after a failing command; the driver sends one command per exec"
	case !gotA:
		ad.OneCommandPerExec = true
		ad.ScriptBehaviour = "the script was refused before it ran"
		c.Status, c.Summary = Warn, "inconclusive: the first command of the script did not run; the driver sends one command per exec"
	default:
		ad.OneCommandPerExec = true
		ad.ScriptBehaviour = "the script stopped without a message"
		c.Status, c.Summary = Warn, "the script stopped at the failing command but printed no error; the driver sends one command per exec"
	}
	c.Notes = append(c.Notes, "exit status of the failing script: "+exitText(x.Out.ExitStatus))
	c.Hint = "nothing to do: the driver adapts (or pass --rds-one-command-per-exec); please report this output to the project"
	return c
}

// readFailed tells whether a read did not answer usably.
func readFailed(x Exchange) (bool, string) {
	switch {
	case x.Err != nil:
		return true, x.Err.Error()
	case x.Out.ExitStatus > 0:
		return true, fmt.Sprintf("exit status %d: %s", x.Out.ExitStatus, firstLine(x.Out.Stdout+x.Out.Stderr))
	case looksLikeError(x.Out.Stdout):
		return true, firstLine(x.Out.Stdout)
	}
	return false, ""
}

// looksLikeError recognises RouterOS's error texts (routeros.md §1) in place of a listing.
func looksLikeError(out string) bool {
	l := strings.ToLower(firstLine(out))
	for _, p := range []string{"failure:", "bad command name", "syntax error", "expected end of command", "no such item",
		"not enough permissions", "input does not match", "invalid value", "expected command name"} {
		if strings.Contains(l, p) {
			return true
		}
	}
	return false
}

// detailItems parses a `print detail` answer; why is non-empty when it failed.
func detailItems(x Exchange) ([]routeros.Item, string) {
	if failed, why := readFailed(x); failed {
		return nil, why
	}
	items, err := routeros.ParseDetail(x.Out.Stdout)
	if err != nil {
		return nil, "unparsable listing: " + err.Error()
	}
	return items, ""
}

type pkgInfo struct{ flags, version string }

// parsePackages reads the `/system package print` table: "0 rose-storage 7.16.2 ...", with flag letters
// (X disabled, A available) between the index and the name when set.
func parsePackages(out string) map[string]pkgInfo {
	pkgs := map[string]pkgInfo{}
	for _, l := range outputLines(out) {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue
		}
		f = f[1:]
		var p pkgInfo
		if len(f) > 1 && isFlags(f[0]) {
			p.flags, f = f[0], f[1:]
		}
		name := f[0]
		if len(f) > 1 && versionWord.MatchString(f[1]) {
			p.version = f[1]
		}
		pkgs[name] = p
	}
	return pkgs
}

// versionWord is a RouterOS version as the package table prints it (7.20.6, 7.16, 7.1beta4), not a
// size such as 830.1KiB, which stands in the version's column place when a package has no version.
var versionWord = regexp.MustCompile(`^\d+\.\d+(\.\d+)?([a-z]+\d*)?$`)

func isFlags(s string) bool {
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return s != ""
}

// majorVersion reads 7 from "7.20.6 (stable)".
func majorVersion(v string) (int, bool) {
	head, _, _ := strings.Cut(strings.TrimSpace(v), ".")
	n, err := strconv.Atoi(head)
	return n, err == nil && n > 0
}

func hasLine(out, want string) bool {
	for _, l := range outputLines(out) {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

func hasWord(list, w string) bool {
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		if strings.Trim(f, `"`) == w {
			return true
		}
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func gib(n int64) string { return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30)) }
