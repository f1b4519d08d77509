package rdssim

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The console output formatter: `print detail`, `print terse`, plain
// `print` and monitor `key: value` lines, in the shape the real box prints
// (see docs/routeros-samples). Lines end in "\r\n", as over SSH.

const crlf = "\r\n"

// field is one key=value of an item.
type field struct {
	key    string
	value  string // as printed, without quotes
	quoted bool
	raw    string // what filters test; empty means value
}

func (f field) token() string {
	if !f.quoted {
		return f.key + "=" + f.value
	}
	return f.key + "=" + quote(f.value)
}

func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// item is one row of a menu, for printing and for filters.
type item struct {
	index  int
	flags  string // letters set on this item
	fields []field
	hidden map[string]string // filterable properties that are not printed
	name   string            // what a bare name in numbers= refers to
	ref    any               // the record behind the item
}

func (it *item) get(prop string) (string, bool) {
	for _, f := range it.fields {
		if f.key == prop {
			if f.raw != "" {
				return f.raw, true
			}
			return f.value, true
		}
	}
	v, ok := it.hidden[prop]
	return v, ok
}

func (it *item) has(letter byte) bool { return strings.IndexByte(it.flags, letter) >= 0 }

// legend returns the flags to show: those set on any item, or the menu's full
// list when none is (RouterOS always prints a Flags line for such menus).
func legend(flags []flagDef, items []item) []flagDef {
	var used []flagDef
	for _, f := range flags {
		for i := range items {
			if items[i].has(f.letter) {
				used = append(used, f)
				break
			}
		}
	}
	if len(used) == 0 {
		return flags
	}
	return used
}

func legendLine(flags []flagDef) string {
	parts := make([]string, len(flags))
	for i, f := range flags {
		parts[i] = string(f.letter) + " - " + f.name
	}
	return "Flags: " + strings.Join(parts, "; ")
}

// prefixes renders each item's "index flags " lead: the index right-aligned
// to the widest one (at least two columns, as " 0" in /file output), then one
// column per legend flag (one blank column when the menu has no flags).
func prefixes(shown []flagDef, items []item) []string {
	width := 2
	for _, it := range items {
		if n := len(strconv.Itoa(it.index)); n > width {
			width = n
		}
	}
	out := make([]string, len(items))
	for i, it := range items {
		var b strings.Builder
		idx := strconv.Itoa(it.index)
		b.WriteString(strings.Repeat(" ", width-len(idx)))
		b.WriteString(idx)
		b.WriteByte(' ')
		if len(shown) == 0 {
			b.WriteByte(' ')
		}
		for _, f := range shown {
			if it.has(f.letter) {
				b.WriteByte(f.letter)
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteByte(' ')
		out[i] = b.String()
	}
	return out
}

// formatDetail renders `print detail`. Items are separated by a line holding
// a single space; each wraps at width.
func formatDetail(flags []flagDef, items []item, width int) string {
	var b strings.Builder
	var shown []flagDef
	if len(flags) > 0 {
		shown = legend(flags, items)
		b.WriteString(legendLine(shown))
		b.WriteString(crlf)
	}
	pre := prefixes(shown, items)
	for i, it := range items {
		if i > 0 {
			b.WriteString(" " + crlf)
		}
		tokens := make([]string, len(it.fields))
		for k, f := range it.fields {
			tokens[k] = f.token()
		}
		for _, line := range wrap(pre[i], tokens, width) {
			b.WriteString(line)
			b.WriteString(crlf)
		}
	}
	return b.String()
}

// wrap fills lines greedily up to width columns, breaking between tokens;
// continuation lines are indented to the prefix's width. A token longer than
// a whole fresh line is broken inside, the way long file paths wrap on the
// real console.
func wrap(prefix string, tokens []string, width int) []string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	var lines []string
	line := prefix
	cols := utf8.RuneCountInString(prefix)
	fresh := true
	for _, tok := range tokens {
		n := utf8.RuneCountInString(tok)
		if !fresh {
			if cols+1+n <= width {
				line += " " + tok
				cols += 1 + n
				continue
			}
			lines = append(lines, line)
			line, cols = indent, len(indent)
		}
		rs := []rune(tok)
		for room := width - cols; len(rs) > room && room > 0; room = width - cols {
			lines = append(lines, line+string(rs[:room]))
			rs = rs[room:]
			line, cols = indent, len(indent)
		}
		line += string(rs)
		cols += len(rs)
		fresh = false
	}
	return append(lines, line)
}

// formatTerse renders `print terse`: one item per line, never wrapped, no
// legend.
func formatTerse(flags []flagDef, items []item) string {
	var b strings.Builder
	var shown []flagDef
	if len(flags) > 0 {
		shown = legend(flags, items)
	}
	pre := prefixes(shown, items)
	for i, it := range items {
		b.WriteString(pre[i])
		for k, f := range it.fields {
			if k > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(f.token())
		}
		b.WriteString(crlf)
	}
	return b.String()
}

// formatTable renders plain `print`: the legend, a Columns line, a header
// and one aligned row per item. Only a few columns are shown, as on the box.
func formatTable(flags []flagDef, items []item, columns []string) string {
	var b strings.Builder
	var shown []flagDef
	if len(flags) > 0 {
		shown = legend(flags, items)
		b.WriteString(legendLine(shown))
		b.WriteString(crlf)
	}
	upper := make([]string, len(columns))
	for i, c := range columns {
		upper[i] = strings.ToUpper(c)
	}
	b.WriteString("Columns: " + strings.Join(upper, ", ") + crlf)
	pre := prefixes(shown, items)
	rows := make([][]string, len(items))
	widths := make([]int, len(columns))
	for i, c := range upper {
		widths[i] = len(c)
	}
	for r, it := range items {
		rows[r] = make([]string, len(columns))
		for i, c := range columns {
			v := ""
			for _, f := range it.fields {
				if f.key == c {
					v = f.value
				}
			}
			rows[r][i] = v
			if n := utf8.RuneCountInString(v); n > widths[i] {
				widths[i] = n
			}
		}
	}
	lead := 2 + 1 + max(1, len(shown)) + 1
	if len(pre) > 0 {
		lead = len(pre[0])
	}
	writeRow := func(start string, cells []string) {
		line := start
		for i, c := range cells {
			line += c
			if i < len(cells)-1 {
				line += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2)
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + crlf)
	}
	writeRow("#"+strings.Repeat(" ", lead-1), upper)
	for r := range items {
		writeRow(pre[r], rows[r])
	}
	return b.String()
}

// formatMonitor renders `monitor ... once`: keys right-aligned, then
// ": value".
func formatMonitor(keys, values []string) string {
	width := 0
	for _, k := range keys {
		if len(k) > width {
			width = len(k)
		}
	}
	var b strings.Builder
	for i, k := range keys {
		b.WriteString(strings.Repeat(" ", width-len(k)) + k + ": " + values[i] + crlf)
	}
	return b.String()
}
