package rdssim

import "strconv"

// The one piece of RouterOS scripting beyond :put that the driver sends: a guard,
//
//	:if ([:len [/disk find where slot="x"]] = 0 && [:len [/file find where name="p"]] = 0) do={CMD; CMD}
//
// so that a create adds nothing when its name is taken, in the same exec as its read-back (MikroTik manual,
// "Scripting": `:if (<condition>) do={<commands>} else={<commands>}`; `:len` is the number of elements of
// an array, and `find` returns the array of matching items' internal numbers). The subset: conditions
// made of integers, `[:len [<menu> find [where] EXPR]]`, the comparisons = != < > <= >=, `&&`/`and`,
// `||`/`or`, `!`/`not` and parentheses; blocks hold any statements the simulator speaks, `:if` included.

// cond is a parsed condition; eval gives an integer or a boolean.
type cond interface {
	eval(s *Simulator, st *state) value
}

type value struct {
	n      int64
	b      bool
	isBool bool
}

type (
	intLit     int64
	lenOfFind  struct{ find *statement } // [:len [<menu> find ...]]
	comparison struct {
		op   string
		l, r cond
	}
	logical struct {
		and  bool
		l, r cond
	}
	not struct{ c cond }
)

func (c intLit) eval(*Simulator, *state) value { return value{n: int64(c)} }

func (c lenOfFind) eval(s *Simulator, st *state) value {
	return value{n: int64(len(s.findItems(st, c.find)))}
}

func (c comparison) eval(s *Simulator, st *state) value {
	l, r := c.l.eval(s, st), c.r.eval(s, st)
	if l.isBool || r.isBool {
		eq := l.isBool == r.isBool && l.b == r.b
		return value{isBool: true, b: (c.op == "=" && eq) || (c.op == "!=" && !eq)}
	}
	var b bool
	switch c.op {
	case "=":
		b = l.n == r.n
	case "!=":
		b = l.n != r.n
	case "<":
		b = l.n < r.n
	case "<=":
		b = l.n <= r.n
	case ">":
		b = l.n > r.n
	case ">=":
		b = l.n >= r.n
	}
	return value{isBool: true, b: b}
}

func (c logical) eval(s *Simulator, st *state) value {
	l := truthy(c.l.eval(s, st))
	if c.and && !l || !c.and && l {
		return value{isBool: true, b: l}
	}
	return value{isBool: true, b: truthy(c.r.eval(s, st))}
}

func (c not) eval(s *Simulator, st *state) value {
	return value{isBool: true, b: !truthy(c.c.eval(s, st))}
}

// truthy: a number in a boolean place is true unless 0.
func truthy(v value) bool {
	if v.isBool {
		return v.b
	}
	return v.n != 0
}

// findItems lists what a find statement matches in st.
func (s *Simulator) findItems(st *state, find *statement) []item {
	e := findExpr(find.items)
	switch find.spec.id {
	case cmdDiskFind:
		return filter(s.diskItemsWhere(st, e), e)
	case cmdFileFind:
		return filter(s.fileItemsWhere(st, e, false), e)
	case cmdSubvolumeFind:
		return filter(s.subvolumeItems(st), e)
	case cmdFilesystemFind:
		return filter(s.filesystemItems(st), e)
	}
	return nil
}

// ifStatement parses `:if (COND) do={...} [else={...}]`.
func (p *parser) ifStatement(st *statement, toks []token, cur *menu) (*statement, *menu, error) {
	st.spec = &commandSpec{id: cmdIf, name: ":if"}
	st.menu = cur
	if len(toks) < 2 || toks[1].kind != tokLParen {
		return nil, nil, syntaxError(toks[0].pos)
	}
	closeAt := matchingParen(toks, 1)
	if closeAt < 0 {
		return nil, nil, syntaxError(toks[1].pos)
	}
	// The :if is logged, recorded and matched by faults as its condition; the commands of its blocks are
	// each themselves when they run.
	st.canonical = ":if " + p.source(toks[1:closeAt+1])
	st.text = st.canonical
	cp := &condParser{p: p, toks: toks[2:closeAt], m: cur, end: toks[closeAt].pos}
	c, err := cp.or()
	if err != nil {
		return nil, nil, err
	}
	if cp.i < len(cp.toks) {
		return nil, nil, syntaxError(cp.toks[cp.i].pos)
	}
	st.cond = c
	rest := toks[closeAt+1:]
	for len(rest) > 0 {
		t := rest[0]
		if t.kind != tokWord || (t.text != "do=" && t.text != "else=") || len(rest) < 2 || rest[1].kind != tokLBrace || rest[1].spaceBefore {
			return nil, nil, expectedEndOfCommand(t.pos)
		}
		end := matchingBrace(rest, 1)
		body, err := p.statements(rest[2:end], cur)
		if err != nil {
			return nil, nil, err
		}
		if t.text == "do=" {
			if st.then != nil {
				return nil, nil, expectedEndOfCommand(t.pos)
			}
			st.then = body
			if st.then == nil {
				st.then = []*statement{}
			}
		} else {
			st.otherwise = body
		}
		rest = rest[end+1:]
	}
	if st.then == nil {
		return nil, nil, syntaxError(toks[len(toks)-1].pos)
	}
	return st, cur, nil
}

// matchingParen returns the index of the ')' closing the '(' at open, or -1. Parentheses inside brackets
// (a find's own filter) are the find's.
func matchingParen(toks []token, open int) int {
	depth, brackets := 0, 0
	for i := open; i < len(toks); i++ {
		switch toks[i].kind {
		case tokLBracket:
			brackets++
		case tokRBracket:
			brackets--
		case tokLParen:
			if brackets == 0 {
				depth++
			}
		case tokRParen:
			if brackets == 0 {
				depth--
				if depth == 0 {
					return i
				}
			}
		}
	}
	return -1
}

// matchingBrace returns the index of the '}' closing the '{' at open; the statement splitter has already
// checked that braces balance.
func matchingBrace(toks []token, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		switch toks[i].kind {
		case tokLBrace:
			depth++
		case tokRBrace:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(toks) - 1
}

type condParser struct {
	p    *parser
	toks []token
	i    int
	m    *menu
	end  position // of the ')' closing the condition, where a missing operand is reported
}

func (cp *condParser) peekWord(words ...string) bool {
	if cp.i >= len(cp.toks) || cp.toks[cp.i].kind != tokWord {
		return false
	}
	for _, w := range words {
		if cp.toks[cp.i].text == w {
			return true
		}
	}
	return false
}

func (cp *condParser) or() (cond, error) {
	l, err := cp.and()
	if err != nil {
		return nil, err
	}
	for cp.peekWord("||", "or") {
		cp.i++
		r, err := cp.and()
		if err != nil {
			return nil, err
		}
		l = logical{l: l, r: r}
	}
	return l, nil
}

func (cp *condParser) and() (cond, error) {
	l, err := cp.unary()
	if err != nil {
		return nil, err
	}
	for cp.peekWord("&&", "and") {
		cp.i++
		r, err := cp.unary()
		if err != nil {
			return nil, err
		}
		l = logical{and: true, l: l, r: r}
	}
	return l, nil
}

func (cp *condParser) unary() (cond, error) {
	if cp.peekWord("!", "not") {
		cp.i++
		c, err := cp.unary()
		if err != nil {
			return nil, err
		}
		return not{c: c}, nil
	}
	l, err := cp.operand()
	if err != nil {
		return nil, err
	}
	if cp.peekWord("=", "!=", "<", "<=", ">", ">=") {
		op := cp.toks[cp.i].text
		cp.i++
		r, err := cp.operand()
		if err != nil {
			return nil, err
		}
		return comparison{op: op, l: l, r: r}, nil
	}
	return l, nil
}

func (cp *condParser) operand() (cond, error) {
	if cp.i >= len(cp.toks) {
		return nil, syntaxError(cp.end)
	}
	t := cp.toks[cp.i]
	switch t.kind {
	case tokLParen:
		end := matchingParen(cp.toks, cp.i)
		if end < 0 {
			return nil, syntaxError(t.pos)
		}
		sub := &condParser{p: cp.p, toks: cp.toks[cp.i+1 : end], m: cp.m, end: cp.toks[end].pos}
		c, err := sub.or()
		if err != nil {
			return nil, err
		}
		if sub.i < len(sub.toks) {
			return nil, syntaxError(sub.toks[sub.i].pos)
		}
		cp.i = end + 1
		return c, nil
	case tokWord:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, syntaxError(t.pos)
		}
		cp.i++
		return intLit(n), nil
	case tokLBracket:
		end := matchingBracket(cp.toks, cp.i)
		if end <= cp.i || cp.toks[end].kind != tokRBracket {
			return nil, syntaxError(t.pos)
		}
		inner := cp.toks[cp.i+1 : end]
		// [:len [<menu> find ...]]
		if len(inner) < 3 || inner[0].kind != tokWord || inner[0].text != ":len" || inner[1].kind != tokLBracket ||
			matchingBracket(inner, 1) != len(inner)-1 {
			return nil, syntaxError(t.pos)
		}
		findToks := inner[2 : len(inner)-1]
		if len(findToks) == 0 {
			return nil, syntaxError(inner[1].pos)
		}
		find, _, err := cp.p.statement(findToks, cp.m)
		if err != nil {
			return nil, err
		}
		if find == nil || find.spec == nil || !find.spec.expression {
			return nil, syntaxError(findToks[0].pos)
		}
		cp.i = end + 1
		return lenOfFind{find: find}, nil
	}
	return nil, syntaxError(t.pos)
}
