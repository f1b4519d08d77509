package rdssim

// The console menus the simulator knows, with their commands, the arguments
// each command takes and the properties `where`/`find` may test.

type argKind int

const (
	argString   argKind = iota
	argSize             // bytes or K/M/G/T suffix
	argPort             // 0..65535
	argBool             // yes/no
	argDiskType         // type= of /disk add
	argItems            // numbers=: item references
)

type commandID int

const (
	cmdDiskAdd commandID = iota + 1
	cmdDiskSet
	cmdDiskRemove
	cmdDiskPrint
	cmdDiskFind
	cmdDiskMonitorTraffic
	cmdFilePrint
	cmdFileRemove
	cmdFileFind
	cmdSubvolumeAdd
	cmdSubvolumeRemove
	cmdSubvolumePrint
	cmdSubvolumeFind
	cmdFilesystemPrint
	cmdFilesystemFind
	cmdPut
	cmdIf // :if, parsed by ifStatement (script_if.go)
)

type commandSpec struct {
	id         commandID
	name       string
	named      map[string]argKind
	words      map[string]bool // bare keywords such as detail, terse, once
	positional bool            // takes an unnamed item reference (numbers)
	where      bool            // accepts `where EXPR`
	expression bool            // find: all arguments form an expression
	mutates    bool
}

type flagDef struct {
	letter byte
	name   string // legend text, e.g. BLOCK-DEVICE
	prop   string // the property `where` tests, e.g. block-device
}

type matchKind int

const (
	matchText   matchKind = iota
	matchNumber           // sizes and counters: compare as numbers
	matchPath             // paths: a leading slash does not matter
)

type menu struct {
	name     string
	path     string // canonical path, e.g. "/disk btrfs subvolume"
	parent   *menu
	children map[string]*menu
	commands map[string]*commandSpec
	props    map[string]matchKind
	flags    []flagDef
}

func (m *menu) child(name string) (*menu, *commandSpec) {
	if c, ok := m.children[name]; ok {
		return c, nil
	}
	if c, ok := m.commands[name]; ok {
		return nil, c
	}
	return nil, nil
}

func newMenu(parent *menu, name string) *menu {
	m := &menu{name: name, parent: parent, children: map[string]*menu{}, commands: map[string]*commandSpec{}}
	switch {
	case parent == nil:
		m.path = ""
	case parent.parent == nil:
		m.path = "/" + name
	default:
		m.path = parent.path + " " + name
	}
	if parent != nil {
		parent.children[name] = m
	}
	return m
}

func (m *menu) add(c *commandSpec) { m.commands[c.name] = c }

var diskFlags = []flagDef{
	{'X', "DISABLED", "disabled"},
	{'B', "BLOCK-DEVICE", "block-device"},
	{'M', "MOUNTED", "mounted"},
	{'F', "FORMATTING", "formatting"},
	{'r', "RAID-MEMBER", "raid-member"},
	{'t', "NVME-TCP-EXPORT", "nvme-tcp-export"},
}

var subvolumeFlags = []flagDef{
	{'S', "SNAPSHOT", "snapshot"},
	{'r', "READ-ONLY", "read-only"},
}

func propSet(kinds map[string]matchKind, flags []flagDef, text ...string) map[string]matchKind {
	out := map[string]matchKind{}
	for _, t := range text {
		out[t] = matchText
	}
	for k, v := range kinds {
		out[k] = v
	}
	for _, f := range flags {
		if _, ok := out[f.prop]; !ok {
			out[f.prop] = matchText
		}
	}
	return out
}

var printWords = map[string]bool{"detail": true, "terse": true, "without-paging": true}

// buildMenus makes the menu tree. It is built fresh for each parse: it is
// small, and this keeps the tables free of shared mutable state.
func buildMenus() *menu {
	root := newMenu(nil, "")
	root.add(&commandSpec{id: cmdPut, name: ":put"})

	disk := newMenu(root, "disk")
	disk.flags = diskFlags
	disk.props = propSet(map[string]matchKind{
		"size": matchNumber, "free": matchNumber, "file-size": matchNumber, "file-offset": matchNumber,
		"sector-size": matchNumber, "nvme-tcp-server-port": matchNumber,
		"file-path": matchPath, "model": matchPath,
	}, diskFlags,
		".id", "type", "slot", "slot-default", "parent", "fs", "fs-label", "fs-uuid", "use", "mount-point",
		"mount-filesystem", "mount-read-only", "compress", "raid-type", "raid-device-count", "raid-master",
		"raid-chunk-size", "raid-max-component-size", "state", "raid-uuid", "nvme-tcp-export",
		"nvme-tcp-server-nqn", "nvme-tcp-server-allow-host-name", "iscsi-export", "nfs-sharing",
		"smb-sharing", "media-sharing", "media-interface", "swap")
	diskSettable := map[string]argKind{
		"file-size": argSize, "nvme-tcp-export": argBool, "nvme-tcp-server-port": argPort,
		"nvme-tcp-server-nqn": argString, "nvme-tcp-server-allow-host-name": argString,
		"mount-filesystem": argBool, "mount-read-only": argBool, "numbers": argItems,
	}
	diskAdd := map[string]argKind{"type": argDiskType, "file-path": argString, "slot": argString}
	for k, v := range diskSettable {
		if k != "numbers" {
			diskAdd[k] = v
		}
	}
	disk.add(&commandSpec{id: cmdDiskAdd, name: "add", named: diskAdd, mutates: true})
	disk.add(&commandSpec{id: cmdDiskSet, name: "set", named: diskSettable, positional: true, mutates: true})
	disk.add(&commandSpec{id: cmdDiskRemove, name: "remove", named: map[string]argKind{"numbers": argItems}, positional: true, mutates: true})
	disk.add(&commandSpec{id: cmdDiskPrint, name: "print", words: printWords, where: true})
	disk.add(&commandSpec{id: cmdDiskFind, name: "find", expression: true})
	disk.add(&commandSpec{id: cmdDiskMonitorTraffic, name: "monitor-traffic", named: map[string]argKind{"numbers": argItems},
		words: map[string]bool{"once": true}, positional: true})

	file := newMenu(root, "file")
	file.props = propSet(map[string]matchKind{"size": matchNumber, "name": matchPath}, nil, ".id", "type", "last-modified")
	file.add(&commandSpec{id: cmdFilePrint, name: "print", words: printWords, where: true})
	file.add(&commandSpec{id: cmdFileRemove, name: "remove", named: map[string]argKind{"numbers": argItems}, positional: true, mutates: true})
	file.add(&commandSpec{id: cmdFileFind, name: "find", expression: true})

	btrfs := newMenu(disk, "btrfs")
	sub := newMenu(btrfs, "subvolume")
	sub.flags = subvolumeFlags
	sub.props = propSet(nil, subvolumeFlags, ".id", "name", "fs", "parent", "read-only", "uuid", "creation-time")
	sub.add(&commandSpec{id: cmdSubvolumeAdd, name: "add", named: map[string]argKind{
		"fs": argString, "name": argString, "parent": argString, "read-only": argBool}, mutates: true})
	sub.add(&commandSpec{id: cmdSubvolumeRemove, name: "remove", named: map[string]argKind{"numbers": argItems}, positional: true, mutates: true})
	sub.add(&commandSpec{id: cmdSubvolumePrint, name: "print", words: printWords, where: true})
	sub.add(&commandSpec{id: cmdSubvolumeFind, name: "find", expression: true})

	fsMenu := newMenu(btrfs, "filesystem")
	fsMenu.props = propSet(nil, nil, ".id", "label", "uuid", "devs", "present-devs", "data", "meta", "system")
	fsMenu.add(&commandSpec{id: cmdFilesystemPrint, name: "print", words: printWords, where: true})
	fsMenu.add(&commandSpec{id: cmdFilesystemFind, name: "find", expression: true})
	addSystemMenus(root) // system.go
	return root
}

// withoutAllowHost takes nvme-tcp-server-allow-host-name out of a menu tree, as on a box that does not have
// the property (AllowHostAbsent).
func withoutAllowHost(root *menu) {
	disk := root.children["disk"]
	delete(disk.props, allowHostProp)
	for _, c := range disk.commands {
		delete(c.named, allowHostProp)
	}
}

const allowHostProp = "nvme-tcp-server-allow-host-name"
