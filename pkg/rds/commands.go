package rds

import (
	"fmt"
	"strconv"
	"strings"
)

// outputFormat tells how a read's output is parsed.
type outputFormat int

const (
	formatNone     outputFormat = iota // a mutation: prints nothing on success
	formatDetail                       // `print detail` listing
	formatKeyValue                     // `key: value` lines (monitor commands)
)

// Cmd is one RouterOS command built from validated values. The zero Cmd is not a command.
type Cmd struct {
	text    string
	verb    string
	mutates bool
	// missingOK marks a removal whose target may already be gone ("no such item" means done).
	missingOK bool
	format    outputFormat
}

// String returns the command as it is sent.
func (c Cmd) String() string { return c.text }

// Verb names the command for metrics and logs: "disk.add", "file.remove", "subvolume.print", ...
func (c Cmd) Verb() string { return c.verb }

// Mutates reports whether the command changes state on the RDS.
func (c Cmd) Mutates() bool { return c.mutates }

// quote wraps a validated value in double quotes. Validation leaves nothing that needs escaping.
func quote(v string) string { return `"` + v + `"` }

// AddSubvolume creates the btrfs subvolume name (a path below the filesystem's root such as k8s/pvc-1) on
// the filesystem labelled fs (the label, not the mount point: MikroTik manual, "Btrfs").
func AddSubvolume(fs, name string) (Cmd, error) {
	if err := ValidName(fs); err != nil {
		return Cmd{}, fmt.Errorf("subvolume filesystem: %w", err)
	}
	if err := ValidPath(name); err != nil {
		return Cmd{}, fmt.Errorf("subvolume name: %w", err)
	}
	return Cmd{
		text:    "/disk/btrfs/subvolume/add fs=" + quote(fs) + " name=" + quote(name),
		verb:    "subvolume.add",
		mutates: true,
	}, nil
}

// AddSnapshot creates name (a path) as a snapshot of the subvolume parent on the filesystem labelled fs,
// read-only or writable. The manual gives parent as a bare name (the leaf); pass the path to a box that wants it.
func AddSnapshot(fs, parent, name string, readOnly bool) (Cmd, error) {
	if err := ValidName(fs); err != nil {
		return Cmd{}, fmt.Errorf("snapshot filesystem: %w", err)
	}
	if err := ValidPath(parent); err != nil {
		return Cmd{}, fmt.Errorf("snapshot parent: %w", err)
	}
	if err := ValidPath(name); err != nil {
		return Cmd{}, fmt.Errorf("snapshot name: %w", err)
	}
	text := "/disk/btrfs/subvolume/add fs=" + quote(fs) + " parent=" + quote(parent) + " name=" + quote(name)
	if readOnly {
		text += " read-only=yes"
	}
	return Cmd{text: text, verb: "subvolume.add", mutates: true}, nil
}

// RemoveSubvolume removes the subvolume called name, as `/disk/btrfs/subvolume/print` names it (the leaf
// "pvc-1" by MikroTik's manual, perhaps the path "k8s/pvc-1" on some firmware: pass what the RDS printed); fs,
// when not empty, must be the filesystem's label as printed. A subvolume that is already gone is not an
// error. A find that matches nothing removes nothing and says nothing, so a caller must verify the removal by
// an independent read (the subvolume's directory in `/file print`).
func RemoveSubvolume(fs, name string) (Cmd, error) {
	if fs != "" {
		if err := ValidName(fs); err != nil {
			return Cmd{}, fmt.Errorf("subvolume filesystem: %w", err)
		}
	}
	if err := ValidPath(name); err != nil {
		return Cmd{}, fmt.Errorf("subvolume name: %w", err)
	}
	where := "name=" + quote(name)
	if fs != "" {
		where = "fs=" + quote(fs) + " and " + where
	}
	return Cmd{
		text:      "/disk/btrfs/subvolume/remove [find where " + where + "]",
		verb:      "subvolume.remove",
		mutates:   true,
		missingOK: true,
	}, nil
}

// DefaultPort is the NVMe/TCP port used when FileDiskSpec.Port is zero.
const DefaultPort = 4420

// FileDiskSpec describes a file-backed disk exported over NVMe/TCP.
type FileDiskSpec struct {
	// Slot is the disk's name (the volume id).
	Slot string
	// FilePath is the backing file, relative to the RDS's file root (pool/k8s/pvc-1/disk.img).
	FilePath string
	// SizeBytes is the exact size of the file.
	SizeBytes int64
	// NQN is the NVMe qualified name the disk is exported under.
	NQN string
	// Port is the NVMe/TCP port; zero means DefaultPort.
	Port int
	// AllowedHosts, when not empty, restrict the export from the start (SetAllowedHosts).
	AllowedHosts []string
}

// AddFileDisk creates the file-backed disk and exports it. It always sets mount-filesystem=no (RouterOS
// would otherwise mount the filesystem the node creates), an explicit NQN (the default is the bare slot,
// not a valid NQN) and the size in exact bytes (a unit suffix could be rounded).
func AddFileDisk(d FileDiskSpec) (Cmd, error) {
	if err := ValidName(d.Slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	if err := ValidPath(d.FilePath); err != nil {
		return Cmd{}, fmt.Errorf("disk file path: %w", err)
	}
	if err := ValidNQN(d.NQN); err != nil {
		return Cmd{}, fmt.Errorf("disk NQN: %w", err)
	}
	if d.SizeBytes <= 0 {
		return Cmd{}, fmt.Errorf("disk size %d must be positive: %w", d.SizeBytes, ErrInvalid)
	}
	port := d.Port
	if port == 0 {
		port = DefaultPort
	}
	if port < 1 || port > 65535 {
		return Cmd{}, fmt.Errorf("NVMe/TCP port %d is not a TCP port: %w", d.Port, ErrInvalid)
	}
	allow := ""
	for _, h := range d.AllowedHosts {
		if err := ValidNQN(h); err != nil {
			return Cmd{}, fmt.Errorf("allowed host: %w", err)
		}
	}
	if len(d.AllowedHosts) > 0 {
		allow = " " + AllowHostKey + "=" + quote(strings.Join(d.AllowedHosts, ","))
	}
	return Cmd{
		text: "/disk add type=file file-path=" + quote(d.FilePath) +
			" file-size=" + strconv.FormatInt(d.SizeBytes, 10) +
			" slot=" + quote(d.Slot) +
			" mount-filesystem=no nvme-tcp-export=yes" +
			" nvme-tcp-server-port=" + strconv.Itoa(port) +
			" nvme-tcp-server-nqn=" + quote(d.NQN) + allow,
		verb:    "disk.add",
		mutates: true,
	}, nil
}

// SetDiskSize resizes the backing file of the disk slot to exactly bytes.
func SetDiskSize(slot string, bytes int64) (Cmd, error) {
	if err := ValidName(slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	if bytes <= 0 {
		return Cmd{}, fmt.Errorf("disk size %d must be positive: %w", bytes, ErrInvalid)
	}
	return Cmd{
		text:    "/disk set [find slot=" + quote(slot) + "] file-size=" + strconv.FormatInt(bytes, 10),
		verb:    "disk.set",
		mutates: true,
	}, nil
}

// RemoveDisk removes (and so unexports) the disk slot. It keeps the backing file: remove that with
// RemoveFile. A disk that is already gone is not an error.
func RemoveDisk(slot string) (Cmd, error) {
	if err := ValidName(slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	return Cmd{
		text:      "/disk remove [find slot=" + quote(slot) + "]",
		verb:      "disk.remove",
		mutates:   true,
		missingOK: true,
	}, nil
}

// RemoveFile removes the file at path (no leading slash); a file that is already gone is not an error.
func RemoveFile(path string) (Cmd, error) {
	if err := ValidPath(path); err != nil {
		return Cmd{}, fmt.Errorf("file: %w", err)
	}
	return Cmd{
		text:      "/file remove [find name=" + quote(path) + "]",
		verb:      "file.remove",
		mutates:   true,
		missingOK: true,
	}, nil
}

// PrintDisks lists the disks matching all filters (all disks without one).
func PrintDisks(where ...Filter) (Cmd, error) { return printCmd("/disk print", "disk.print", where) }

// PrintFiles lists the files matching all filters.
func PrintFiles(where ...Filter) (Cmd, error) { return printCmd("/file print", "file.print", where) }

// PrintFilesystems lists the btrfs filesystems (`/disk/btrfs/filesystem print`, where the manual says a
// filesystem's label is found) matching all filters.
func PrintFilesystems(where ...Filter) (Cmd, error) {
	return printCmd("/disk/btrfs/filesystem/print", "filesystem.print", where)
}

// PrintSubvolumes lists the btrfs subvolumes matching all filters.
func PrintSubvolumes(where ...Filter) (Cmd, error) {
	return printCmd("/disk/btrfs/subvolume/print", "subvolume.print", where)
}

// printCmd builds `<print> detail [where ...]`; printWord is spelled as in docs/routeros.md.
func printCmd(printWord, verb string, where []Filter) (Cmd, error) {
	f := All(where...)
	if f.err != nil {
		return Cmd{}, f.err
	}
	text := printWord + " detail"
	if len(f.conds) > 0 {
		text += " where " + f.String()
	}
	return Cmd{text: text, verb: verb, format: formatDetail}, nil
}

// MonitorTraffic reads the traffic counters of the disk slot once.
func MonitorTraffic(slot string) (Cmd, error) {
	if err := ValidName(slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	return Cmd{text: "/disk monitor-traffic " + slot + " once", verb: "disk.monitor-traffic", format: formatKeyValue}, nil
}

// Filter is a where-clause: conditions joined by `and`. The zero Filter matches everything. A Filter
// built from a hostile value carries the validation error, which the command constructors return.
type Filter struct {
	conds []string
	err   error
}

// Eq matches items whose property key equals value.
func Eq(key, value string) Filter {
	if err := validKey(key); err != nil {
		return Filter{err: err}
	}
	if err := validValue(value); err != nil {
		return Filter{err: fmt.Errorf("%s: %w", key, err)}
	}
	return Filter{conds: []string{key + "=" + quote(value)}}
}

// Match matches items whose property key matches the regular expression pattern (RouterOS `~`). The
// pattern may use letters, digits, _:/^.*+|()- and `\.` for a literal dot.
func Match(key, pattern string) Filter {
	if err := validKey(key); err != nil {
		return Filter{err: err}
	}
	if err := validRegex(pattern); err != nil {
		return Filter{err: fmt.Errorf("%s: %w", key, err)}
	}
	// Inside a RouterOS string a backslash is written as \\.
	return Filter{conds: []string{key + "~" + quote(strings.ReplaceAll(pattern, `\`, `\\`))}}
}

// All joins filters with `and`.
func All(filters ...Filter) Filter {
	var out Filter
	for _, f := range filters {
		if f.err != nil {
			return Filter{err: f.err}
		}
		out.conds = append(out.conds, f.conds...)
	}
	return out
}

// And joins f and more with `and`.
func (f Filter) And(more ...Filter) Filter { return All(append([]Filter{f}, more...)...) }

// String returns the where-clause without the `where` keyword.
func (f Filter) String() string { return strings.Join(f.conds, " and ") }

// Err returns the validation error of a filter built from a refused value.
func (f Filter) Err() error { return f.err }

// GrowDisk resizes the disk slot to exactly bytes only if it is exported as nqn and smaller than bytes, so
// that one exec can grow a volume without reading it first and can never shrink it or touch a disk of
// another NQN. Whether RouterOS's find compares size as a number is UNVERIFIED: where it matches nothing,
// the read-back shows the old size, and the caller grows the disk knowing its size (Manager.Expand).
func GrowDisk(slot, nqn string, bytes int64) (Cmd, error) {
	if err := ValidName(slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	if err := ValidNQN(nqn); err != nil {
		return Cmd{}, fmt.Errorf("disk NQN: %w", err)
	}
	if bytes <= 0 {
		return Cmd{}, fmt.Errorf("disk size %d must be positive: %w", bytes, ErrInvalid)
	}
	n := strconv.FormatInt(bytes, 10)
	return Cmd{
		text: "/disk set [find slot=" + quote(slot) + " and nvme-tcp-server-nqn=" + quote(nqn) + " and size<" + n +
			"] file-size=" + n,
		verb:    "disk.set",
		mutates: true,
	}, nil
}

// RemoveDiskIf removes the disk slot only if it is exported as nqn and its file-path matches the regular
// expression filePattern (see Match): a removal that needs no read first, because a disk that is not the
// one expected stays. A disk that is already gone is not an error.
func RemoveDiskIf(slot, nqn, filePattern string) (Cmd, error) {
	if err := ValidName(slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	if err := ValidNQN(nqn); err != nil {
		return Cmd{}, fmt.Errorf("disk NQN: %w", err)
	}
	f := All(Eq("slot", slot), Eq("nvme-tcp-server-nqn", nqn), Match("file-path", filePattern))
	if f.err != nil {
		return Cmd{}, f.err
	}
	return Cmd{text: "/disk remove [find " + f.String() + "]", verb: "disk.remove", mutates: true, missingOK: true}, nil
}

// RemoveSubvolumeByUUID removes the btrfs subvolume with that uuid, whatever its name prints as; one that
// is already gone is not an error. Whether find matches subvolumes by uuid is UNVERIFIED: a caller proves
// the removal by reading its directory back.
func RemoveSubvolumeByUUID(uuid string) (Cmd, error) {
	f := Eq("uuid", uuid)
	if f.err != nil || uuid == "" {
		return Cmd{}, fmt.Errorf("subvolume uuid %q: %w", uuid, ErrInvalid)
	}
	return Cmd{text: "/disk/btrfs/subvolume/remove [find where " + f.String() + "]", verb: "subvolume.remove",
		mutates: true, missingOK: true}, nil
}

// AllowHostKey is the disk property that restricts an NVMe/TCP export to named hosts (MikroTik manual,
// "NVMe over TCP": "whether the NVMe over TCP server allows connections from specific hostnames,
// providing a mechanism for host-based access control"). Empty, the default, allows any host.
const AllowHostKey = "nvme-tcp-server-allow-host-name"

// SetAllowedHosts sets the hosts allowed to connect to the export of disk slot, only if the disk is exported
// as nqn (a disk of another NQN is never touched): hosts are host NQNs, joined by ','; none clears the
// property (any host). That the value is matched against the initiator's host NQN, and that a
// comma-separated value is a list, are UNVERIFIED (rds-csi doctor, check host-access; simulator
// --allow-host-name).
func SetAllowedHosts(slot, nqn string, hosts []string) (Cmd, error) {
	if err := ValidName(slot); err != nil {
		return Cmd{}, fmt.Errorf("disk slot: %w", err)
	}
	if err := ValidNQN(nqn); err != nil {
		return Cmd{}, fmt.Errorf("disk NQN: %w", err)
	}
	for _, h := range hosts {
		if err := ValidNQN(h); err != nil {
			return Cmd{}, fmt.Errorf("allowed host: %w", err)
		}
	}
	f := All(Eq("slot", slot), Eq("nvme-tcp-server-nqn", nqn))
	return Cmd{
		text:    "/disk set [find " + f.String() + "] " + AllowHostKey + "=" + quote(strings.Join(hosts, ",")),
		verb:    "disk.set",
		mutates: true,
	}, nil
}
