package rdssim

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The script lexer. RouterOS parses a whole script before running any of it,
// so every error found here (and in the parser) means nothing runs.

type tokenKind int

const (
	tokWord     tokenKind = iota // bare word: a path, a name=value, a keyword
	tokString                    // double-quoted string, text holds the unescaped value
	tokLBracket                  // [ starts a command substitution such as [find slot=x]
	tokRBracket
	tokLParen
	tokRParen
	tokLBrace // { opens a block: the do= and else= of :if
	tokRBrace
	tokSep // a newline or ';' ends a statement
)

// position is 1-based, the way RouterOS reports "(line L column C)".
type position struct{ line, col int }

type token struct {
	kind        tokenKind
	text        string
	pos         position
	start, end  int // byte offsets of the token in the script source
	spaceBefore bool
}

// scriptError is an error the console prints verbatim, such as
// "syntax error (line 1 column 12)" or "failure: not enough space".
type scriptError struct{ msg string }

func (e *scriptError) Error() string { return e.msg }

func failure(format string, args ...any) error {
	return &scriptError{msg: "failure: " + fmt.Sprintf(format, args...)}
}

var errNoSuchItem = &scriptError{msg: "no such item"}

func syntaxError(p position) error {
	return &scriptError{msg: fmt.Sprintf("syntax error (line %d column %d)", p.line, p.col)}
}

func badCommandName(name string, p position) error {
	return &scriptError{msg: fmt.Sprintf("bad command name %s (line %d column %d)", name, p.line, p.col)}
}

func expectedEndOfCommand(p position) error {
	return &scriptError{msg: fmt.Sprintf("expected end of command (line %d column %d)", p.line, p.col)}
}

func invalidValue(arg string) error {
	return &scriptError{msg: "invalid value for argument " + arg}
}

func noMatchingValue(arg string) error {
	return &scriptError{msg: "input does not match any value of " + arg}
}

type lexer struct {
	src  string
	i    int
	line int
	col  int
	toks []token
	// atStatementStart is true until the first token of a statement, so that
	// '#' starts a comment only where RouterOS allows one.
	atStatementStart bool
}

func lex(src string) ([]token, error) {
	lx := &lexer{src: src, line: 1, col: 1, atStatementStart: true}
	return lx.run()
}

func (lx *lexer) peek() (rune, int) {
	if lx.i >= len(lx.src) {
		return 0, 0
	}
	return utf8.DecodeRuneInString(lx.src[lx.i:])
}

func (lx *lexer) advance(size int, r rune) {
	lx.i += size
	if r == '\n' {
		lx.line++
		lx.col = 1
	} else {
		lx.col++
	}
}

// continuation reports whether a backslash at the current offset ends the
// line (optionally with "\r"), which joins it with the next one.
func (lx *lexer) continuation() int {
	rest := lx.src[lx.i:]
	switch {
	case strings.HasPrefix(rest, "\\\n"):
		return 2
	case strings.HasPrefix(rest, "\\\r\n"):
		return 3
	}
	return 0
}

func (lx *lexer) emit(kind tokenKind, text string, p position, start int, space bool) {
	lx.toks = append(lx.toks, token{kind: kind, text: text, pos: p, start: start, end: lx.i, spaceBefore: space})
	lx.atStatementStart = kind == tokSep
}

func (lx *lexer) run() ([]token, error) {
	space := true
	for lx.i < len(lx.src) {
		r, size := lx.peek()
		p := position{lx.line, lx.col}
		start := lx.i
		switch {
		case r == '\\' && lx.continuation() > 0:
			n := lx.continuation()
			for k := 0; k < n; k++ {
				c, sz := lx.peek()
				lx.advance(sz, c)
			}
			space = true
		case r == ' ' || r == '\t' || r == '\r':
			lx.advance(size, r)
			space = true
		case r == '\n' || r == ';':
			lx.advance(size, r)
			lx.emit(tokSep, string(r), p, start, space)
			space = true
		case r == '#' && lx.atStatementStart:
			for lx.i < len(lx.src) && lx.src[lx.i] != '\n' {
				c, sz := lx.peek()
				lx.advance(sz, c)
			}
		case r == '"':
			s, err := lx.quoted(p)
			if err != nil {
				return nil, err
			}
			lx.emit(tokString, s, p, start, space)
			space = false
		case r == '[' || r == ']' || r == '(' || r == ')' || r == '{' || r == '}':
			lx.advance(size, r)
			kind := map[rune]tokenKind{'[': tokLBracket, ']': tokRBracket, '(': tokLParen, ')': tokRParen,
				'{': tokLBrace, '}': tokRBrace}[r]
			lx.emit(kind, string(r), p, start, space)
			space = false
		case r == '$' || r == '\\' || r == utf8.RuneError:
			// Variables and stray escapes are outside the subset the simulator
			// speaks; refusing them keeps hostile input inert.
			return nil, syntaxError(p)
		default:
			word, err := lx.word()
			if err != nil {
				return nil, err
			}
			lx.emit(tokWord, word, p, start, space)
			space = false
		}
	}
	return lx.toks, nil
}

func isWordBreak(r rune) bool {
	switch r {
	case ' ', '\t', '\r', '\n', ';', '"', '[', ']', '(', ')', '{', '}':
		return true
	}
	return false
}

func (lx *lexer) word() (string, error) {
	start := lx.i
	for lx.i < len(lx.src) {
		r, size := lx.peek()
		if isWordBreak(r) {
			break
		}
		if r == '$' || r == '\\' || r == utf8.RuneError {
			return "", syntaxError(position{lx.line, lx.col})
		}
		lx.advance(size, r)
	}
	return lx.src[start:lx.i], nil
}

// quoted reads a double-quoted string. RouterOS escapes: \" \\ \n \r \t \$
// \? \_ (space) \a \b \f \v and \XX (two upper-case hex digits). Any other backslash
// pair is kept as written, so a regex such as "^pvc\.x" reaches the matcher
// unchanged. An unescaped $ would be a variable, which the simulator does not
// support: it is a syntax error.
func (lx *lexer) quoted(open position) (string, error) {
	lx.advance(1, '"')
	var b strings.Builder
	for {
		if lx.i >= len(lx.src) {
			return "", syntaxError(open)
		}
		r, size := lx.peek()
		if r == utf8.RuneError && size <= 1 {
			return "", syntaxError(position{lx.line, lx.col})
		}
		switch r {
		case '"':
			lx.advance(size, r)
			return b.String(), nil
		case '$':
			return "", syntaxError(position{lx.line, lx.col})
		case '\\':
			if n := lx.continuation(); n > 0 {
				for k := 0; k < n; k++ {
					c, sz := lx.peek()
					lx.advance(sz, c)
				}
				continue
			}
			lx.advance(1, '\\')
			if lx.i >= len(lx.src) {
				return "", syntaxError(open)
			}
			e, esz := lx.peek()
			lx.advance(esz, e)
			switch e {
			case '"', '\\', '$', '?':
				b.WriteRune(e)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '_':
				b.WriteByte(' ')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			default:
				if hexDigit(e) && lx.i < len(lx.src) && hexDigit(rune(lx.src[lx.i])) {
					v := hexValue(byte(e))<<4 | hexValue(lx.src[lx.i])
					lx.advance(1, rune(lx.src[lx.i]))
					b.WriteByte(v)
					continue
				}
				b.WriteByte('\\')
				b.WriteRune(e)
			}
		default:
			lx.advance(size, r)
			b.WriteRune(r)
		}
	}
}

// hexDigit accepts the digits of a \XX escape; RouterOS wants capitals
// (lower-case a, b and f are the bell, backspace and form-feed escapes).
func hexDigit(r rune) bool {
	return (r >= '0' && r <= '9') || (r >= 'A' && r <= 'F')
}

func hexValue(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	default:
		return c - 'A' + 10
	}
}
