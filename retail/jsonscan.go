package retail

// JSONScanner reads JSON written in one exact, compact form (as
// encoding/json's Marshal writes it: no spaces, strings without escapes)
// one token at a time, without allocating for what it skips. The row
// change decoder here and the change feed's decoder in replication use it
// on their hot path and fall back to encoding/json for anything else, so
// it only ever has to say "not this form".
import (
	"strconv"
	"unicode/utf8"
)

// A JSONScanner reads B from I on. A method that reports false leaves I
// where it was.
type JSONScanner struct {
	B []byte
	I int
}

// Peek reports whether the next byte is c.
func (p *JSONScanner) Peek(c byte) bool { return p.I < len(p.B) && p.B[p.I] == c }

// Lit reads the literal s.
func (p *JSONScanner) Lit(s string) bool {
	if len(p.B)-p.I < len(s) || string(p.B[p.I:p.I+len(s)]) != s {
		return false
	}
	p.I += len(s)
	return true
}

// Done reports whether everything was read.
func (p *JSONScanner) Done() bool { return p.I == len(p.B) }

// Str reads a string without escapes or control characters (valid UTF-8).
func (p *JSONScanner) Str(out *string) bool {
	if !p.Peek('"') {
		return false
	}
	for j := p.I + 1; j < len(p.B); j++ {
		switch c := p.B[j]; {
		case c == '"':
			if !utf8.Valid(p.B[p.I+1 : j]) {
				return false
			}
			*out = string(p.B[p.I+1 : j])
			p.I = j + 1
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// digits returns the end of the integer at p.I (an optional minus sign if
// signed, then digits without a leading zero) and false if there is none
// or a fraction or exponent follows.
func (p *JSONScanner) digits(signed bool) (int, bool) {
	j := p.I
	if signed && j < len(p.B) && p.B[j] == '-' {
		j++
	}
	start := j
	for j < len(p.B) && p.B[j] >= '0' && p.B[j] <= '9' {
		j++
	}
	if j == start || (p.B[start] == '0' && j-start > 1) {
		return 0, false
	}
	if j < len(p.B) && (p.B[j] == '.' || p.B[j] == 'e' || p.B[j] == 'E') {
		return 0, false
	}
	return j, true
}

// Uint reads an unsigned integer that fits a uint64.
func (p *JSONScanner) Uint(out *uint64) bool {
	j, ok := p.digits(false)
	if !ok {
		return false
	}
	n, err := strconv.ParseUint(string(p.B[p.I:j]), 10, 64)
	if err != nil {
		return false
	}
	*out, p.I = n, j
	return true
}

// Value reads null (nil), an integer that fits an int64 (int64) or a
// string without escapes (string): the values of a row change.
func (p *JSONScanner) Value() (any, bool) {
	if p.Lit("null") {
		return nil, true
	}
	if p.Peek('"') {
		var s string
		if !p.Str(&s) {
			return nil, false
		}
		return s, true
	}
	j, ok := p.digits(true)
	if !ok {
		return nil, false
	}
	n, err := strconv.ParseInt(string(p.B[p.I:j]), 10, 64)
	if err != nil {
		return nil, false
	}
	p.I = j
	return n, true
}
