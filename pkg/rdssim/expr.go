package rdssim

import (
	"regexp"
	"strings"
)

// Filters of `print ... where EXPR` and `[find EXPR]`: prop=value,
// prop="value", prop!=value, prop~"regex", prop<N (and <=, >, >=), a bare
// prop (true when set), !prop, not, and, or, and parentheses. Conditions
// written next to each other are joined by `and`, as find's arguments are.

type expr interface {
	match(it *item) bool
}

type condition struct {
	prop  string
	kind  matchKind
	op    string
	value string
	re    *regexp.Regexp
}

type truth struct{ prop string }
type negation struct{ e expr }
type conjunction struct{ l, r expr }
type disjunction struct{ l, r expr }

func (n negation) match(it *item) bool    { return !n.e.match(it) }
func (c conjunction) match(it *item) bool { return c.l.match(it) && c.r.match(it) }
func (d disjunction) match(it *item) bool { return d.l.match(it) || d.r.match(it) }

func (t truth) match(it *item) bool {
	v, ok := it.get(t.prop)
	return ok && v != "" && v != "no" && v != "false"
}

func (c condition) match(it *item) bool {
	v, _ := it.get(c.prop)
	switch c.op {
	case "=":
		return c.equal(v)
	case "!=":
		return !c.equal(v)
	case "~":
		return c.re.MatchString(v)
	}
	a, aok := parseNumberArg(v)
	b, bok := parseNumberArg(c.value)
	if !aok || !bok {
		return false
	}
	switch c.op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	default:
		return a >= b
	}
}

func (c condition) equal(v string) bool {
	switch c.kind {
	case matchPath:
		return strings.TrimPrefix(v, "/") == strings.TrimPrefix(c.value, "/")
	case matchNumber:
		a, aok := parseNumberArg(v)
		b, bok := parseNumberArg(c.value)
		if aok && bok {
			return a == b
		}
	}
	return v == c.value
}

type exprParser struct {
	p    *parser
	toks []token
	i    int
	m    *menu
}

// expression parses toks as a filter over menu m; no tokens means "all".
func (p *parser) expression(toks []token, m *menu) (expr, error) {
	if len(toks) == 0 {
		return nil, nil
	}
	ep := &exprParser{p: p, toks: toks, m: m}
	e, err := ep.or()
	if err != nil {
		return nil, err
	}
	if ep.i < len(toks) {
		return nil, syntaxError(toks[ep.i].pos)
	}
	return e, nil
}

func (ep *exprParser) peekWord(words ...string) bool {
	if ep.i >= len(ep.toks) || ep.toks[ep.i].kind != tokWord {
		return false
	}
	for _, w := range words {
		if ep.toks[ep.i].text == w {
			return true
		}
	}
	return false
}

func (ep *exprParser) or() (expr, error) {
	l, err := ep.and()
	if err != nil {
		return nil, err
	}
	for ep.peekWord("or", "||") {
		ep.i++
		r, err := ep.and()
		if err != nil {
			return nil, err
		}
		l = disjunction{l, r}
	}
	return l, nil
}

func (ep *exprParser) and() (expr, error) {
	l, err := ep.unary()
	if err != nil {
		return nil, err
	}
	for ep.i < len(ep.toks) && ep.toks[ep.i].kind != tokRParen && !ep.peekWord("or", "||") {
		if ep.peekWord("and", "&&") {
			ep.i++
		}
		r, err := ep.unary()
		if err != nil {
			return nil, err
		}
		l = conjunction{l, r}
	}
	return l, nil
}

func (ep *exprParser) unary() (expr, error) {
	if ep.i >= len(ep.toks) {
		last := ep.toks[len(ep.toks)-1]
		return nil, syntaxError(position{last.pos.line, last.pos.col + len([]rune(ep.p.src[last.start:last.end]))})
	}
	t := ep.toks[ep.i]
	switch t.kind {
	case tokLParen:
		ep.i++
		e, err := ep.or()
		if err != nil {
			return nil, err
		}
		if ep.i >= len(ep.toks) || ep.toks[ep.i].kind != tokRParen {
			return nil, syntaxError(t.pos)
		}
		ep.i++
		return e, nil
	case tokWord:
	default:
		return nil, syntaxError(t.pos)
	}
	ep.i++
	if t.text == "not" || t.text == "!" {
		e, err := ep.unary()
		if err != nil {
			return nil, err
		}
		return negation{e}, nil
	}
	if strings.HasPrefix(t.text, "!") && !strings.HasPrefix(t.text, "!=") {
		prop := t.text[1:]
		if _, ok := ep.m.props[prop]; !ok {
			return nil, expectedEndOfCommand(segmentPos(t, 1))
		}
		return negation{truth{prop}}, nil
	}
	name, op, value, isCond := splitOp(t.text)
	if !isCond {
		if _, ok := ep.m.props[t.text]; !ok {
			return nil, expectedEndOfCommand(t.pos)
		}
		return truth{t.text}, nil
	}
	kind, ok := ep.m.props[name]
	if !ok {
		return nil, expectedEndOfCommand(t.pos)
	}
	valuePos := segmentPos(t, len(name)+len(op))
	if value == "" && ep.i < len(ep.toks) && !ep.toks[ep.i].spaceBefore && ep.toks[ep.i].kind == tokString {
		value = ep.toks[ep.i].text
		valuePos = ep.toks[ep.i].pos
		ep.i++
	}
	c := condition{prop: name, kind: kind, op: op, value: value}
	if op == "~" {
		re, err := regexp.Compile(value)
		if err != nil {
			return nil, syntaxError(valuePos)
		}
		c.re = re
	}
	return c, nil
}
