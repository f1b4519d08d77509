package routeros

import (
	"errors"
	"fmt"
	"strings"
)

// itemBuilder gathers the lines of one item into a single logical line, undoing the terminal's wrapping,
// and splits that line into properties when the item ends.
type itemBuilder struct {
	index      int
	flags      string
	keyCol     int
	comment    string
	hasComment bool

	text    strings.Builder
	lastSeg string // the most recently appended line, to look at its last word
	// prevFull tells whether the line before the one being appended filled the terminal's width; when it did
	// not, the line break fell between two properties.
	prevFull bool
	inQuote  bool // whether the text so far ends inside a quoted value
	escaped  bool // whether it ends right after a backslash inside quotes
}

// continueWith appends a continuation line (without its indentation). Where the line break fell is
// unknown: between two properties, inside a value (a long path, a grouped number) or, on a hard wrap,
// inside a key. A line that starts with `key=` is a new property, unless the previous line ended with the
// first part of a key; anything else continues the previous value and is glued on without a space.
func (b *itemBuilder) continueWith(seg string) {
	if b.text.Len() == 0 {
		b.appendText(seg)
		return
	}
	glue := true
	if !b.inQuote {
		if _, _, ok := keyAt(seg, 0); ok && (!b.prevFull || !endsWithKeyFragment(b.lastSeg, seg)) {
			glue = false
		}
	}
	if !glue {
		b.text.WriteByte(' ')
	}
	b.appendText(seg)
}

// endsWithKeyFragment reports whether prev ends with a word that is the start of the key seg begins with:
// a bare lowercase word cannot end a property (bare values follow their `key=`), so `nvme-tcp-ser` +
// `ver-port=4420` is one key broken by a hard wrap. `file` + `size=` is the `/file` key `file size`.
func endsWithKeyFragment(prev, seg string) bool {
	word := prev[strings.LastIndexByte(prev, ' ')+1:]
	if word == "" || word == "file" && strings.HasPrefix(seg, "size=") {
		return false
	}
	if !isLetter(word[0]) {
		return false
	}
	for i := 0; i < len(word); i++ {
		if !isKeyByte(word[i]) {
			return false
		}
	}
	return true
}

func (b *itemBuilder) appendText(seg string) {
	b.text.WriteString(seg)
	b.lastSeg = seg
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case b.escaped:
			b.escaped = false
		case b.inQuote && c == '\\':
			b.escaped = true
		case c == '"':
			b.inQuote = !b.inQuote
		}
	}
}

func (b *itemBuilder) item() (Item, error) {
	it := Item{Index: b.index, Flags: b.flags, Props: map[string]string{}, Keys: []string{}}
	if b.hasComment {
		it.Props["comment"] = b.comment
		it.Keys = append(it.Keys, "comment")
	}
	if err := parseProps(b.text.String(), &it); err != nil {
		return Item{}, err
	}
	if len(it.Keys) == 0 {
		return Item{}, errors.New("item has no properties")
	}
	return it, nil
}

// parseProps splits `k1=v1 k2="v 2" k3=1 099 511` into properties. A bare value runs until the next
// ` key=`, so grouped numbers and dates keep their spaces; a quoted value ends at its closing quote.
func parseProps(s string, it *Item) error {
	p := 0
	for {
		for p < len(s) && s[p] == ' ' {
			p++
		}
		if p >= len(s) {
			return nil
		}
		key, next, ok := keyAt(s, p)
		if !ok {
			return fmt.Errorf("expected key=value, found %q", clip(s[p:]))
		}
		p = next
		var val string
		if p < len(s) && s[p] == '"' {
			v, end, err := unquote(s, p)
			if err != nil {
				return fmt.Errorf("value of %s: %w", key, err)
			}
			val, p = v, end
			if p < len(s) && s[p] != ' ' {
				// Text glued onto a closing quote: keep it rather than lose it.
				end := bareEnd(s, p)
				val += s[p:end]
				p = end
			}
		} else {
			end := bareEnd(s, p)
			val = strings.TrimRight(s[p:end], " ")
			p = end
		}
		if _, seen := it.Props[key]; !seen {
			it.Keys = append(it.Keys, key)
		}
		it.Props[key] = val
	}
}

// bareEnd returns where a bare value starting at p ends: at the space before the next `key=`, or at the
// end of s. Runs of spaces are skipped in one step, so the scan is linear.
func bareEnd(s string, p int) int {
	for i := p; i < len(s); {
		if s[i] != ' ' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if _, _, ok := keyAt(s, j); ok {
			return i
		}
		i = j
	}
	return len(s)
}

// keyAt reports whether s has a property name followed by '=' at p, and returns the name and the index
// after '='. `file size=` (printed by some `/file` versions) is returned as `size`.
func keyAt(s string, p int) (key string, next int, ok bool) {
	const fileSize = "file size="
	if strings.HasPrefix(s[p:], fileSize) {
		return "size", p + len(fileSize), true
	}
	if p >= len(s) || !isLetter(s[p]) {
		return "", 0, false
	}
	q := p + 1
	for q < len(s) && isKeyByte(s[q]) {
		q++
	}
	if q >= len(s) || s[q] != '=' {
		return "", 0, false
	}
	return s[p:q], q + 1, true
}

func isKeyByte(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '-' || c == '_' || c == '.'
}

// unquote reads the quoted value starting at s[p] == '"' and returns it with RouterOS escapes resolved
// (\" \\ \a \b \f \n \r \t \v \_ \$ \? and \XX hex with capital letters), and the index after the
// closing quote.
func unquote(s string, p int) (string, int, error) {
	var v strings.Builder
	for i := p + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return v.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; {
			case isHex(e) && i+1 < len(s) && isHex(s[i+1]):
				v.WriteByte(hexVal(e)<<4 | hexVal(s[i+1]))
				i++
			case e == 'a':
				v.WriteByte('\a')
			case e == 'b':
				v.WriteByte('\b')
			case e == 'f':
				v.WriteByte('\f')
			case e == 'v':
				v.WriteByte('\v')
			case e == 'n':
				v.WriteByte('\n')
			case e == 'r':
				v.WriteByte('\r')
			case e == 't':
				v.WriteByte('\t')
			case e == '_':
				v.WriteByte(' ')
			default:
				v.WriteByte(e)
			}
		default:
			v.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated quoted value")
}

// isHex accepts the digits RouterOS uses in \XX escapes: 0-9 and capital A-F (lower-case letters are the
// \a \b \f escapes).
func isHex(c byte) bool { return isDigit(c) || (c >= 'A' && c <= 'F') }

func hexVal(c byte) byte {
	if isDigit(c) {
		return c - '0'
	}
	return c - 'A' + 10
}
