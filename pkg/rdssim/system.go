package rdssim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The /system menus `rds-csi doctor` and the controller's start-up check read: `/system resource print`
// (the RouterOS version) and `/system package print` (is rose-storage installed). Their output shapes
// follow public captures of RouterOS 7 consoles: resource prints right-aligned `key: value` lines,
// package prints a table under `Columns: NAME, VERSION, BUILD-TIME, SIZE`, with a `Flags:` legend only
// when some package is disabled (X) or merely available (A).

// System is what the simulated box reports about itself. The zero value is a RouterOS 7 RDS with the
// rose-storage package installed; the other values make a box that lacks a capability the driver needs.
type System struct {
	// Version is the RouterOS version `/system resource print` and `/system package print` show
	// (default DefaultRouterOSVersion).
	Version string
	// BoardName is the model (default "RDS2216").
	BoardName string
	// RoseStorage is the state of the rose-storage package (default installed).
	RoseStorage PackageState
}

// DefaultRouterOSVersion is the version a simulator reports unless told otherwise.
const DefaultRouterOSVersion = "7.20.6"

// PackageState is how a package shows in `/system package print`.
type PackageState string

const (
	// PackageInstalled: listed with its version, no flag (the default).
	PackageInstalled PackageState = "installed"
	// PackageDisabled: listed with flag X (installed but not active).
	PackageDisabled PackageState = "disabled"
	// PackageAvailable: listed with flags XA and no version (built in, never enabled).
	PackageAvailable PackageState = "available"
	// PackageMissing: not listed at all.
	PackageMissing PackageState = "missing"
)

// ParsePackageState reads installed, disabled, available or missing ("" is installed).
func ParsePackageState(s string) (PackageState, error) {
	switch p := PackageState(s); p {
	case "":
		return PackageInstalled, nil
	case PackageInstalled, PackageDisabled, PackageAvailable, PackageMissing:
		return p, nil
	}
	return "", fmt.Errorf("rdssim: package state %q: want installed, disabled, available or missing", s)
}

func (y System) withDefaults() (System, error) {
	y.Version = orDefault(y.Version, DefaultRouterOSVersion)
	y.BoardName = orDefault(y.BoardName, "RDS2216")
	var err error
	y.RoseStorage, err = ParsePackageState(string(y.RoseStorage))
	return y, err
}

const (
	cmdSystemResourcePrint commandID = 100 + iota
	cmdSystemPackagePrint
)

// addSystemMenus adds /system resource and /system package to the menu tree.
func addSystemMenus(root *menu) {
	system := newMenu(root, "system")
	resource := newMenu(system, "resource")
	resource.add(&commandSpec{id: cmdSystemResourcePrint, name: "print", words: map[string]bool{"without-paging": true}})
	pkg := newMenu(system, "package")
	pkg.props = propSet(nil, packageFlags, ".id", "name", "version", "build-time", "size")
	pkg.flags = packageFlags
	pkg.add(&commandSpec{id: cmdSystemPackagePrint, name: "print", words: map[string]bool{"without-paging": true}, where: true})
}

var packageFlags = []flagDef{{'X', "DISABLED", "disabled"}, {'A', "AVAILABLE", "available"}}

// simStart stands in for the box's boot time in `uptime`.
var simStart = time.Now()

// buildTime is the build time every simulated package shows.
const buildTime = "2025-12-04 12:00:39"

// runSystem answers the /system commands; handled is false for any other command.
func (s *Simulator) runSystem(st *statement) (out string, handled bool, err error) {
	y, err := s.cfg.System.withDefaults()
	if err != nil {
		return "", true, failure("%v", err)
	}
	switch st.spec.id {
	case cmdSystemResourcePrint:
		return s.resourceText(y), true, nil
	case cmdSystemPackagePrint:
		return packageTable(filter(packageItems(y), st.where)), true, nil
	}
	return "", false, nil
}

func (s *Simulator) resourceText(y System) string {
	keys := []string{"uptime", "version", "build-time", "factory-software", "free-memory", "total-memory", "cpu",
		"cpu-count", "cpu-frequency", "cpu-load", "free-hdd-space", "total-hdd-space", "write-sect-since-reboot",
		"write-sect-total", "architecture-name", "board-name", "platform"}
	values := []string{uptime(time.Since(simStart)), y.Version + " (stable)", buildTime, y.Version, "29.1GiB",
		"32.0GiB", "ARM64", "4", "2000MHz", "1%", "98.2MiB", "128.0MiB", "83", "605", "arm64", y.BoardName, "MikroTik"}
	// The console indents the longest key by two columns (the captures: "  write-sect-since-reboot: 83").
	return indentLines(formatMonitor(keys, values), "  ")
}

func indentLines(text, lead string) string {
	lines := strings.SplitAfter(text, crlf)
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(lead + l)
		}
	}
	return b.String()
}

// uptime prints a duration the way RouterOS does: 1w2d5h28m35s, leading zero units left out.
func uptime(d time.Duration) string {
	secs := int64(d / time.Second)
	units := []struct {
		n      int64
		letter string
	}{{7 * 86400, "w"}, {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}}
	var b strings.Builder
	for _, u := range units {
		if q := secs / u.n; q > 0 || (u.letter == "s" && b.Len() == 0) {
			b.WriteString(strconv.FormatInt(q, 10) + u.letter)
			secs -= q * u.n
		}
	}
	return b.String()
}

func packageItems(y System) []item {
	type pkg struct {
		name, size string
		state      PackageState
	}
	pkgs := []pkg{{"routeros", "12.6MiB", PackageInstalled}, {"container", "208.1KiB", PackageInstalled}}
	if y.RoseStorage != PackageMissing {
		pkgs = append(pkgs, pkg{"rose-storage", "3140.1KiB", y.RoseStorage})
	}
	items := make([]item, 0, len(pkgs))
	for i, p := range pkgs {
		version, built, flags := y.Version, buildTime, ""
		switch p.state {
		case PackageDisabled:
			flags = "X"
		case PackageAvailable:
			flags, version, built = "XA", "", ""
		}
		items = append(items, item{index: i, flags: flags, name: p.name, fields: []field{
			{key: "name", value: p.name}, {key: "version", value: version},
			{key: "build-time", value: built}, {key: "size", value: p.size},
		}, hidden: map[string]string{".id": "*" + strconv.FormatInt(int64(i+1), 16),
			"disabled": yesNo(strings.Contains(flags, "X")), "available": yesNo(strings.Contains(flags, "A"))}})
	}
	return items
}

// packageTable prints the package list as the captures show it: a legend only when a flag is in use, the
// index as wide as the widest one, a flag column per letter in use, columns two spaces apart.
func packageTable(items []item) string {
	var used []flagDef
	for _, f := range packageFlags {
		for i := range items {
			if items[i].has(f.letter) {
				used = append(used, f)
				break
			}
		}
	}
	var b strings.Builder
	if len(used) > 0 {
		b.WriteString(legendLine(used) + crlf)
	}
	columns := []string{"name", "version", "build-time", "size"}
	b.WriteString("Columns: NAME, VERSION, BUILD-TIME, SIZE" + crlf)
	idxWidth := 1
	for _, it := range items {
		idxWidth = max(idxWidth, len(strconv.Itoa(it.index)))
	}
	widths := []int{len("NAME"), len("VERSION"), len("BUILD-TIME"), len("SIZE")}
	for _, it := range items {
		for i, c := range columns {
			v, _ := it.get(c)
			widths[i] = max(widths[i], utf8.RuneCountInString(v))
		}
	}
	row := func(lead string, cells []string) {
		line := lead
		for i, c := range cells {
			line += c
			if i < len(cells)-1 {
				line += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2)
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + crlf)
	}
	flagCols := 0
	if len(used) > 0 {
		flagCols = len(used) + 1
	}
	row("#"+strings.Repeat(" ", idxWidth+flagCols), []string{"NAME", "VERSION", "BUILD-TIME", "SIZE"})
	for _, it := range items {
		idx := strconv.Itoa(it.index)
		lead := strings.Repeat(" ", idxWidth-len(idx)) + idx + " "
		if len(used) > 0 {
			for _, f := range used {
				if it.has(f.letter) {
					lead += string(f.letter)
				} else {
					lead += " "
				}
			}
			lead += " "
		}
		cells := make([]string, len(columns))
		for i, c := range columns {
			cells[i], _ = it.get(c)
		}
		row(lead, cells)
	}
	return b.String()
}
