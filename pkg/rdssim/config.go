package rdssim

import (
	"fmt"
	"io"
	"strings"
	"time"
)

const (
	defaultUser     = "admin"
	defaultPoolName = "pool"
	defaultPoolSize = int64(100) << 30
	defaultWidth    = 80
	// minWidth keeps wrapping sane: every line still has room for text after
	// the index and flag columns.
	minWidth = 40
	// sectorSize is the unit a file disk's size is rounded up to.
	sectorSize = 512
)

// Config describes a simulated RDS.
type Config struct {
	Listen             string // "127.0.0.1:0" picks a free port
	DataDir            string // keys, state.json and the pool's files
	User               string // the only user that may log in; default "admin"
	AuthorizedKeysFile string // optional; default: DataDir/client_key.pub, generated on first start
	PoolName           string // slot and mount-point of the pool disk; default "pool"
	// PoolLabel is the pool filesystem's label: what btrfs commands take as fs= and what
	// /disk/btrfs/filesystem print and the pool disk's fs-label= show. Default "<PoolName>-fs", as
	// RouterOS labels a freshly formatted disk (MikroTik manual, "Btrfs"). Fixed when DataDir is created.
	PoolLabel string
	// The RouterOS behaviours that are still UNVERIFIED, one switch each (zero value: the behaviour
	// MikroTik's manual implies). A failing exec exiting with status 0 is the exit-zero fault.
	SubvolumeNames  NameForm // how a subvolume's name prints and matches in print/find/where
	SubvolumeParent NameForm // what `subvolume add parent=` takes
	OnError         OnError  // whether a script stops at its first runtime error
	// SubvolumeAddParents says whether `subvolume add name=a/b/c` makes the missing directories a and a/b
	// (the manual only ever adds below something that exists: Snapshots, then Snapshots/Documents-…).
	SubvolumeAddParents Parents
	// AllowHostName is how nvme-tcp-server-allow-host-name restricts an export (UNVERIFIED beyond the
	// manual's "allows connections from specific hostnames"): the Exporter is told the hosts it allows.
	AllowHostName AllowHostForm
	// ScriptIf says whether scripts may hold `:if (...) do={...}` (MikroTik manual, "Scripting"; the
	// default). ScriptIfNo makes :if a bad command name, for the driver's fallback to a read first.
	ScriptIf ScriptIf
	PoolFS   string // "btrfs" (default) or "xfs"
	PoolSize int64  // bytes; default 100 GiB
	Width    int    // column at which print detail wraps; default 80
	// Latency is charged once per exec request: the network round trip (session open, request, answer),
	// whatever the script holds. CommandLatency is charged before each command the script runs: RouterOS's
	// own work. A latency fault adds to CommandLatency for the commands it matches.
	Latency        time.Duration
	CommandLatency time.Duration
	Faults         []Fault
	Log            io.Writer // one line per command run; nil discards
	Exporter       Exporter  // optional real NVMe/TCP export of file disks
	System         System    // what /system resource and /system package print (system.go)
}

// NameForm is how the console names a btrfs subvolume.
type NameForm string

const (
	// NameLeaf: the last path component only ("Documents-22012025" for a subvolume made with
	// name=Snapshots/Documents-22012025). The manual removes snapshots with
	// [find where name=Documents-22012025], "the snapshot's name (not the path)", and gives parent= as a
	// bare name: the default.
	NameLeaf NameForm = "leaf"
	// NamePath: the path below the filesystem's root, as given to add name= ("Snapshots/Documents-22012025").
	NamePath NameForm = "path"
)

// OnError is what a script does after a command fails at run time.
type OnError string

const (
	// OnErrorStop: the rest of the script does not run (routeros.md §1; the default).
	OnErrorStop OnError = "stop"
	// OnErrorContinue: the error is printed and the script goes on with the next command; the exit
	// status still reports the failure.
	OnErrorContinue OnError = "continue"
)

// AllowHostForm is how the simulator reads nvme-tcp-server-allow-host-name. Empty allows any host in
// every form, as the RDS's default "" does.
type AllowHostForm string

const (
	// AllowHostList: the value is a comma-separated list of host NQNs, and only initiators connecting with
	// one of them get in (the default: the manual's "allows connections from specific hostnames").
	AllowHostList AllowHostForm = "list"
	// AllowHostSingle: the whole value is one host NQN; a value holding ',' matches no initiator.
	AllowHostSingle AllowHostForm = "single"
	// AllowHostIgnored: the property is stored and printed but does not restrict anything.
	AllowHostIgnored AllowHostForm = "ignored"
	// AllowHostAbsent: the firmware has no such property: it is not printed, and add, set and where refuse
	// it as an unknown argument.
	AllowHostAbsent AllowHostForm = "absent"
)

// ParseAllowHostForm checks a --allow-host-name value.
func ParseAllowHostForm(s string) (AllowHostForm, error) {
	switch f := AllowHostForm(s); f {
	case AllowHostList, AllowHostSingle, AllowHostIgnored, AllowHostAbsent:
		return f, nil
	case "":
		return AllowHostList, nil
	}
	return "", fmt.Errorf("allow-host-name form %q is not one of list, single, ignored, absent", s)
}

// hosts returns the host NQNs an export with allow-host-name value v admits, nil for any host.
func (f AllowHostForm) hosts(v string) []string {
	if v == "" || f == AllowHostIgnored || f == AllowHostAbsent {
		return nil
	}
	if f == AllowHostSingle {
		return []string{v}
	}
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// Parents is whether `/disk/btrfs/subvolume/add` makes the missing parent directories of name=.
type Parents string

const (
	// ParentsCreate: missing parents are made as plain directories (like mkdir -p; the simulator's
	// behaviour from the start, and the default so that a base path need not be made first).
	ParentsCreate Parents = "create"
	// ParentsRefuse: the add fails when the parent directory does not exist, as `btrfs subvolume create`
	// does on Linux. The MikroTik manual makes every parent first (the Snapshots subvolume, then
	// Snapshots/Documents-22012025), so this may well be the real box.
	ParentsRefuse Parents = "refuse"
)

// ScriptIf is whether the console speaks :if.
type ScriptIf string

const (
	ScriptIfYes ScriptIf = "yes"
	ScriptIfNo  ScriptIf = "no"
)

// ParseScriptIf reads "yes" or "no" ("" is the default, yes).
func ParseScriptIf(s string) (ScriptIf, error) {
	switch v := ScriptIf(s); v {
	case "":
		return ScriptIfYes, nil
	case ScriptIfYes, ScriptIfNo:
		return v, nil
	}
	return "", fmt.Errorf("rdssim: script-if %q: want yes or no", s)
}

// ParseParents reads "create" or "refuse" ("" is the default, create).
func ParseParents(s string) (Parents, error) {
	switch p := Parents(s); p {
	case "":
		return ParentsCreate, nil
	case ParentsCreate, ParentsRefuse:
		return p, nil
	}
	return "", fmt.Errorf("rdssim: subvolume-add-parents %q: want create or refuse", s)
}

// ParseNameForm reads "leaf" or "path" ("" is the default, leaf).
func ParseNameForm(s string) (NameForm, error) {
	switch f := NameForm(s); f {
	case "":
		return NameLeaf, nil
	case NameLeaf, NamePath:
		return f, nil
	}
	return "", fmt.Errorf("rdssim: subvolume name form %q: want leaf or path", s)
}

// ParseOnError reads "stop" or "continue" ("" is the default, stop).
func ParseOnError(s string) (OnError, error) {
	switch o := OnError(s); o {
	case "":
		return OnErrorStop, nil
	case OnErrorStop, OnErrorContinue:
		return o, nil
	}
	return "", fmt.Errorf("rdssim: on-error %q: want stop or continue", s)
}

// Exporter makes a file disk reachable over NVMe/TCP (for example through
// the kernel's nvmet target). The simulator calls Export when a disk with
// nvme-tcp-export=yes is added, when such a disk changes (size, port, NQN:
// Export must be idempotent and apply the new settings), and at Start for
// every exported disk; it calls Unexport when a disk is removed, stops being
// exported or changes its NQN, and at Close.
type Exporter interface {
	// Export exports the file under nqn on port, to the host NQNs in hosts only, or to any host when hosts
	// is nil (nvme-tcp-server-allow-host-name, read as Config.AllowHostName says).
	Export(nqn string, port int, hostPath string, hosts []string) error
	Unexport(nqn string) error
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orDefaultSize(v int64) int64 {
	if v <= 0 {
		return defaultPoolSize
	}
	return v
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("rdssim: DataDir is required")
	}
	if c.Listen == "" {
		return fmt.Errorf("rdssim: Listen is required, e.g. 127.0.0.1:0")
	}
	switch c.PoolFS {
	case "", "btrfs", "xfs":
	default:
		return fmt.Errorf("rdssim: pool filesystem %q: want btrfs or xfs", c.PoolFS)
	}
	if c.PoolSize < 0 {
		return fmt.Errorf("rdssim: negative pool size %d", c.PoolSize)
	}
	if c.Width != 0 && c.Width < minWidth {
		return fmt.Errorf("rdssim: width %d is below the minimum of %d columns", c.Width, minWidth)
	}
	if c.Latency < 0 {
		return fmt.Errorf("rdssim: negative latency %s", c.Latency)
	}
	if c.CommandLatency < 0 {
		return fmt.Errorf("rdssim: negative command latency %s", c.CommandLatency)
	}
	if c.PoolName != "" {
		if err := checkPoolName(c.PoolName); err != nil {
			return err
		}
	}
	if c.PoolLabel != "" {
		if err := checkPoolName(c.PoolLabel); err != nil {
			return fmt.Errorf("rdssim: pool label: %w", err)
		}
	}
	var err error
	if c.SubvolumeNames, err = ParseNameForm(string(c.SubvolumeNames)); err != nil {
		return err
	}
	if c.SubvolumeParent, err = ParseNameForm(string(c.SubvolumeParent)); err != nil {
		return err
	}
	if c.OnError, err = ParseOnError(string(c.OnError)); err != nil {
		return err
	}
	if c.SubvolumeAddParents, err = ParseParents(string(c.SubvolumeAddParents)); err != nil {
		return err
	}
	return nil
}

func checkPoolName(n string) error {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("rdssim: pool name %q: use letters, digits, '-', '_' and '.'", n)
		}
	}
	if n == "." || n == ".." {
		return fmt.Errorf("rdssim: pool name %q is not a directory name", n)
	}
	return nil
}
