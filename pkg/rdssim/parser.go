package rdssim

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// statement is one parsed console command, ready to run.
type statement struct {
	text      string // the source as written
	canonical string // the same command with its path spelled "/disk btrfs subvolume add"
	menu      *menu
	spec      *commandSpec // nil for a bare menu path, which only changes the current menu
	args      map[string]string
	words     map[string]bool // keywords given: detail, terse, once ...
	items     *itemRef        // numbers: positional, numbers= or [find ...]
	where     expr            // print ... where EXPR; nil prints everything
	put       string          // :put text
	cond      cond            // :if (COND)
	then      []*statement    // :if's do= block
	otherwise []*statement    // :if's else= block
}

// itemRef names the items a command acts on.
type itemRef struct {
	find   expr // [find EXPR]: every matching item, possibly none
	isFind bool
	names  []string // names, indices (3) or internal ids (*3)
}

type parser struct {
	src  string
	root *menu
	opts parseOptions
}

// parseScript parses a whole script. Any error means nothing may run, which
// is how RouterOS treats a script it cannot parse.
func parseScript(src string) ([]*statement, error) { return parseScriptWith(src, parseOptions{}) }

// parseOptions are the dialect switches that decide what parses.
type parseOptions struct {
	noIf        bool // :if is not a command (Config.ScriptIf "no")
	noAllowHost bool // /disk has no nvme-tcp-server-allow-host-name (Config.AllowHostName "absent")
}

func parseScriptWith(src string, o parseOptions) ([]*statement, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	root := buildMenus()
	if o.noAllowHost {
		withoutAllowHost(root)
	}
	p := &parser{src: src, root: root, opts: o}
	return p.statements(toks, p.root)
}

// statements parses a run of statements separated by newlines or ';' outside brackets and blocks, starting
// in menu cur: a whole script, or the body of a do= or else= block.
func (p *parser) statements(toks []token, cur *menu) ([]*statement, error) {
	var out []*statement
	var open []token // the brackets and braces not yet closed
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) {
			switch t := toks[i]; t.kind {
			case tokLBracket, tokLBrace:
				open = append(open, t)
				continue
			case tokRBracket, tokRBrace:
				want := tokLBracket
				if t.kind == tokRBrace {
					want = tokLBrace
				}
				if len(open) == 0 || open[len(open)-1].kind != want {
					return nil, syntaxError(t.pos)
				}
				open = open[:len(open)-1]
				continue
			case tokSep:
				if len(open) > 0 {
					if open[len(open)-1].kind == tokLBracket {
						return nil, syntaxError(t.pos)
					}
					continue // a separator inside a block belongs to the block's statements
				}
			default:
				continue
			}
		}
		if len(open) > 0 {
			return nil, syntaxError(open[len(open)-1].pos)
		}
		if i > start {
			st, next, err := p.statement(toks[start:i], cur)
			if err != nil {
				return nil, err
			}
			cur = next
			if st != nil {
				out = append(out, st)
			}
		}
		start = i + 1
	}
	return out, nil
}

func (p *parser) source(toks []token) string {
	if len(toks) == 0 {
		return ""
	}
	return p.src[toks[0].start:toks[len(toks)-1].end]
}

// segmentPos is the position of the byte offset off inside word token t.
func segmentPos(t token, off int) position {
	return position{t.pos.line, t.pos.col + utf8.RuneCountInString(t.text[:off])}
}

// resolvePath walks the menu tree along a word such as "/disk/btrfs" or
// "subvolume/add". It returns the menu reached and the command, if the word
// ends on one.
func (p *parser) resolvePath(t token, m *menu) (*menu, *commandSpec, error) {
	text := t.text
	off := 0
	if strings.HasPrefix(text, "/") {
		m = p.root
		off = 1
	}
	var spec *commandSpec
	for off < len(text) {
		end := strings.IndexByte(text[off:], '/')
		if end < 0 {
			end = len(text)
		} else {
			end += off
		}
		seg := text[off:end]
		if seg != "" {
			if spec != nil {
				return nil, nil, badCommandName(seg, segmentPos(t, off))
			}
			sub, cs := m.child(seg)
			switch {
			case sub != nil:
				m = sub
			case cs != nil:
				spec = cs
			default:
				return nil, nil, badCommandName(seg, segmentPos(t, off))
			}
		}
		off = end + 1
	}
	return m, spec, nil
}

func (p *parser) statement(toks []token, cur *menu) (*statement, *menu, error) {
	first := toks[0]
	if first.kind != tokWord {
		return nil, nil, syntaxError(first.pos)
	}
	st := &statement{text: p.source(toks), args: map[string]string{}, words: map[string]bool{}}
	m := cur
	var spec *commandSpec
	i := 1
	if first.text == ":if" && !p.opts.noIf {
		return p.ifStatement(st, toks, cur)
	}
	if strings.HasPrefix(first.text, ":") {
		spec = p.root.commands[first.text]
		if spec == nil {
			return nil, nil, badCommandName(strings.TrimPrefix(first.text, ":"), segmentPos(first, 1))
		}
	} else {
		var err error
		if m, spec, err = p.resolvePath(first, m); err != nil {
			return nil, nil, err
		}
		for spec == nil && i < len(toks) {
			t := toks[i]
			if t.kind != tokWord {
				return nil, nil, syntaxError(t.pos)
			}
			if _, _, _, isArg := splitOp(t.text); isArg || strings.HasPrefix(t.text, "/") {
				return nil, nil, badCommandName(t.text, t.pos)
			}
			if m, spec, err = p.resolvePath(t, m); err != nil {
				return nil, nil, err
			}
			i++
		}
		if spec == nil {
			// A bare path such as "/disk" makes later relative commands
			// resolve inside that menu.
			return nil, m, nil
		}
	}
	st.menu, st.spec = m, spec
	rest := toks[i:]
	if spec.id == cmdPut {
		st.canonical = strings.TrimSpace(":put " + p.source(rest))
	} else {
		st.canonical = strings.TrimSpace(m.path + " " + spec.name + " " + p.source(rest))
	}
	if err := p.arguments(st, rest); err != nil {
		return nil, nil, err
	}
	return st, cur, nil
}

func (p *parser) arguments(st *statement, toks []token) error {
	spec := st.spec
	switch {
	case spec.id == cmdPut:
		return p.putArgument(st, toks)
	case spec.expression:
		if len(toks) > 0 && toks[0].kind == tokWord && toks[0].text == "where" {
			toks = toks[1:]
		}
		e, err := p.expression(toks, st.menu)
		if err != nil {
			return err
		}
		st.items = &itemRef{isFind: true, find: e}
		return nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokWord:
			name, op, value, isArg := splitOp(t.text)
			switch {
			case isArg:
				kind, known := spec.named[name]
				if !known || op != "=" {
					return expectedEndOfCommand(t.pos)
				}
				var valueToks []token
				if value == "" && i+1 < len(toks) && !toks[i+1].spaceBefore {
					switch toks[i+1].kind {
					case tokString:
						value = toks[i+1].text
						i++
					case tokLBracket:
						end := matchingBracket(toks, i+1)
						valueToks = toks[i+1 : end+1]
						i = end
					}
				}
				if kind == argItems {
					if st.items != nil {
						return expectedEndOfCommand(t.pos)
					}
					ref, err := p.itemReference(st, value, valueToks)
					if err != nil {
						return err
					}
					st.items = ref
					continue
				}
				if valueToks != nil {
					return syntaxError(valueToks[0].pos)
				}
				if err := checkArgument(name, kind, value); err != nil {
					return err
				}
				st.args[name] = value
			case spec.words[t.text]:
				st.words[t.text] = true
			case t.text == "where" && spec.where:
				e, err := p.expression(toks[i+1:], st.menu)
				if err != nil {
					return err
				}
				if e == nil {
					return syntaxError(t.pos)
				}
				st.where = e
				return nil
			case spec.positional && st.items == nil:
				st.items = &itemRef{names: splitNames(t.text)}
			default:
				return expectedEndOfCommand(t.pos)
			}
		case tokString:
			if !spec.positional || st.items != nil {
				return expectedEndOfCommand(t.pos)
			}
			st.items = &itemRef{names: []string{t.text}}
		case tokLBracket:
			if !spec.positional || st.items != nil {
				return expectedEndOfCommand(t.pos)
			}
			end := matchingBracket(toks, i)
			ref, err := p.itemReference(st, "", toks[i:end+1])
			if err != nil {
				return err
			}
			st.items = ref
			i = end
		default:
			return syntaxError(t.pos)
		}
	}
	return nil
}

func (p *parser) putArgument(st *statement, toks []token) error {
	switch {
	case len(toks) == 0:
		st.put = ""
	case len(toks) > 1:
		return expectedEndOfCommand(toks[1].pos)
	case toks[0].kind == tokWord || toks[0].kind == tokString:
		st.put = toks[0].text
	default:
		return syntaxError(toks[0].pos)
	}
	return nil
}

// matchingBracket returns the index of the ']' closing the '[' at open. The
// statement splitter has already checked that brackets balance.
func matchingBracket(toks []token, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		switch toks[i].kind {
		case tokLBracket:
			depth++
		case tokRBracket:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(toks) - 1
}

// itemReference reads a numbers value: names/indices, or a bracketed find
// over the command's own menu ([find ...] or [/disk find ...]).
func (p *parser) itemReference(st *statement, value string, bracket []token) (*itemRef, error) {
	if bracket == nil {
		return &itemRef{names: splitNames(value)}, nil
	}
	inner := bracket[1 : len(bracket)-1]
	if len(inner) == 0 {
		return nil, syntaxError(bracket[0].pos)
	}
	sub, _, err := p.statement(inner, st.menu)
	if err != nil {
		return nil, err
	}
	if sub == nil || !sub.spec.expression || sub.menu != st.menu {
		return nil, syntaxError(inner[0].pos)
	}
	return sub.items, nil
}

func splitNames(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// splitOp splits "name=value", "name~regex", "name!=value" and the
// comparisons. isArg is false for a bare word (a keyword, path or name).
func splitOp(w string) (name, op, value string, isArg bool) {
	i := 0
	for i < len(w) && isNameByte(w[i], i == 0) {
		i++
	}
	if i == 0 || i == len(w) {
		return "", "", "", false
	}
	for _, o := range []string{"!=", "<=", ">=", "=", "~", "<", ">"} {
		if strings.HasPrefix(w[i:], o) {
			return w[:i], o, w[i+len(o):], true
		}
	}
	return "", "", "", false
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c == '.':
		return true
	case (c >= '0' && c <= '9') || c == '-':
		return !first
	}
	return false
}

func checkArgument(name string, kind argKind, v string) error {
	switch kind {
	case argSize:
		if n, ok := parseFileSize(v); !ok || n <= 0 {
			return invalidValue(name)
		}
	case argPort:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 || strings.HasPrefix(v, "+") {
			return invalidValue(name)
		}
	case argBool:
		if _, ok := parseBool(v); !ok {
			return noMatchingValue(name)
		}
	case argDiskType:
		if !knownDiskTypes[v] {
			return noMatchingValue(name)
		}
	}
	return nil
}

// knownDiskTypes are the values RouterOS accepts for /disk add type=; the
// simulator can add only file disks and fails the others at run time.
var knownDiskTypes = map[string]bool{"file": true, "raid": true, "tmpfs": true, "nvme-tcp": true, "iscsi": true}

func parseBool(v string) (bool, bool) {
	switch v {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}
