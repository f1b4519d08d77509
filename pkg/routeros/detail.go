// Package routeros parses the text a RouterOS console prints: `print detail` listings, `key: value`
// monitor output, sizes and timestamps. RouterOS has no stable machine format over SSH exec on every
// firmware (`as-value`/`:serialize` are unverified on the RDS), so the parsers follow the rules observed
// in captured output (docs/routeros.md §1.2) and are lenient wherever the terminal width changes the shape.
package routeros

import (
	"fmt"
	"strings"
)

// Item is one entry of a `print detail` listing.
type Item struct {
	// Index is the number RouterOS printed before the item, or -1 when the output had none.
	Index int `json:"index"`
	// Flags holds the flag letters of the item (for example "BM"), without the spacing of their columns.
	Flags string `json:"flags"`
	// Props maps each property name to its value, unquoted and unescaped.
	Props map[string]string `json:"props"`
	// Keys lists the property names in the order they were printed.
	Keys []string `json:"keys"`
}

// ParseDetail parses the output of `print detail` of any menu. Output that is not a listing (for example a
// RouterOS error message) is an error. An output with only the `Flags:` legend is an empty listing.
func ParseDetail(out string) ([]Item, error) {
	items := []Item{}
	var cur *itemBuilder
	flush := func() error {
		if cur == nil {
			return nil
		}
		it, err := cur.item()
		cur = nil
		if err != nil {
			return err
		}
		items = append(items, it)
		return nil
	}
	started := false
	lineNo := 0
	width := widestLine(out)
	prevLen := 0
	for rest := out; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		lineNo++
		line = strings.TrimRight(line, " \t\r")
		if line == "" {
			// A blank line (RouterOS prints a single space) separates items.
			if err := flush(); err != nil {
				return nil, fmt.Errorf("item ending before line %d: %w", lineNo, err)
			}
			continue
		}
		if !started && isLegend(line) {
			continue
		}
		indent := indentOf(line)
		if cur != nil && indent >= cur.keyCol {
			// A line shorter than the widest one ended where a property ended: the terminal splits inside a
			// value or key only when a line is full.
			cur.prevFull = prevLen >= width
			cur.continueWith(line[indent:])
			prevLen = len(line)
			continue
		}
		prevLen = len(line)
		if err := flush(); err != nil {
			return nil, fmt.Errorf("item ending before line %d: %w", lineNo, err)
		}
		b, err := startItem(line, indent)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		cur = b
		started = true
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("last item: %w", err)
	}
	return items, nil
}

// widestLine is the length of the longest line of out, without trailing blanks: the terminal's width, or
// less when no line filled it.
func widestLine(out string) int {
	w := 0
	for rest := out; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		if n := len(strings.TrimRight(line, " \t\r")); n > w {
			w = n
		}
	}
	return w
}

// isLegend reports whether a line before the first item belongs to the header: the `Flags:` legend (which
// may wrap onto lines like `X - DISABLED`) or the `Columns:` line of a plain print.
func isLegend(line string) bool {
	t := strings.TrimLeft(line, " \t")
	if strings.HasPrefix(t, "Flags:") || strings.HasPrefix(t, "Columns:") {
		return true
	}
	// A wrapped legend continues with "L - NAME" entries and never holds an '='.
	return len(t) > 4 && isLetter(t[0]) && t[1:4] == " - " && !strings.Contains(t, "=")
}

func indentOf(line string) int {
	n := 0
	for n < len(line) && (line[n] == ' ' || line[n] == '\t') {
		n++
	}
	return n
}

// startItem reads the head of an item: an optional index, optional flag letters, then either the first
// key or a `;;;` comment. The column where that starts is where continuation lines are indented to.
func startItem(line string, indent int) (*itemBuilder, error) {
	b := &itemBuilder{index: -1}
	p := indent
	if p < len(line) && isDigit(line[p]) {
		q := p
		for q < len(line) && isDigit(line[q]) {
			q++
		}
		if q-p > 9 {
			return nil, fmt.Errorf("item index %q is too long", line[p:q])
		}
		if q < len(line) && line[q] != ' ' && line[q] != '\t' {
			return nil, fmt.Errorf("expected an item index, found %q", clip(line[p:]))
		}
		n := 0
		for _, c := range line[p:q] {
			n = n*10 + int(c-'0')
		}
		b.index = n
		p = q
		var flags strings.Builder
		for {
			p += indentOf(line[p:])
			q := p
			for q < len(line) && isLetter(line[q]) {
				q++
			}
			if q == p || (q < len(line) && line[q] != ' ' && line[q] != '\t') {
				break
			}
			flags.WriteString(line[p:q])
			p = q
		}
		b.flags = flags.String()
		if p >= len(line) {
			// Only the head on this line: anything indented past the index continues the item.
			b.keyCol = indent + 1
			return b, nil
		}
	}
	if strings.HasPrefix(line[p:], ";;;") {
		b.comment = strings.TrimSpace(line[p+3:])
		b.hasComment = true
		b.keyCol = p
		return b, nil
	}
	if _, _, ok := keyAt(line, p); !ok {
		return nil, fmt.Errorf("expected an item, found %q", clip(line[p:]))
	}
	b.keyCol = p
	b.appendText(line[p:])
	return b, nil
}

func clip(s string) string {
	const max = 60
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
