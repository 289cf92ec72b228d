package replication

import (
	"strconv"
	"unicode/utf8"

	"github.com/endcap/endcap/retail"
)

// parseChanges reads a KindChanges message in the exact form Encode
// writes it: {"v":1,"kind":"changes","region":…,"entries":[…],"head":…}
// with "last":true optionally at the end, no spaces, envelope strings
// without escapes. That is every catch-up answer and feed message the hub
// sends, and a returning edge decodes thousands a second: one pass over
// the bytes here, where encoding/json scans a message three times before
// a row change's own parser sees it. Anything else reports !ok, and
// Decode takes the general path, which gives the same Message
// (FuzzParseChanges checks).
func parseChanges(b []byte) (Message, bool) {
	p := envParser{b: b}
	m := Message{V: ProtocolVersion, Kind: KindChanges}
	if !p.lit(`{"v":1,"kind":"changes","region":`) || !p.str(&m.Region) || !p.lit(`,"entries":[`) {
		return Message{}, false
	}
	// Entries are about 1 KB each in the form the hub writes.
	m.Entries = make([]Change, 0, len(b)/1024+1)
	for first := true; !p.peek(']'); first = false {
		if !first && !p.lit(",") {
			return Message{}, false
		}
		var c Change
		var status string
		if !p.lit(`{"seq":`) || !p.uint(&c.Seq) || !p.lit(`,"mutation_id":`) || !p.str(&c.MutationID) ||
			!p.lit(`,"status":`) || !p.str(&status) || !p.lit(`,"changes":[`) {
			return Message{}, false
		}
		c.Status = retail.Status(status)
		c.Changes = []retail.RowChange{} // "changes":[] decodes to an empty slice, not nil
		for firstRow := true; !p.peek(']'); firstRow = false {
			if !firstRow && !p.lit(",") {
				return Message{}, false
			}
			if rc, ok := p.rowChange(); ok {
				c.Changes = append(c.Changes, rc)
				continue
			}
			end, ok := p.objectEnd()
			if !ok {
				return Message{}, false
			}
			var rc retail.RowChange
			if rc.UnmarshalJSON(p.b[p.i:end]) != nil {
				return Message{}, false
			}
			c.Changes = append(c.Changes, rc)
			p.i = end
		}
		if !p.lit("]}") {
			return Message{}, false
		}
		m.Entries = append(m.Entries, c)
	}
	p.i++ // ]
	if p.lit(`,"head":`) && !p.uint(&m.Head) {
		return Message{}, false
	}
	if p.lit(`,"last":`) {
		if !p.lit("true") {
			return Message{}, false
		}
		m.Last = true
	}
	if !p.lit("}") || p.i != len(p.b) {
		return Message{}, false
	}
	if len(m.Entries) == 0 {
		return Message{}, false
	}
	return m, true
}

type envParser struct {
	b []byte
	i int
}

func (p *envParser) peek(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *envParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str reads a string without escapes or control characters.
func (p *envParser) str(out *string) bool {
	if !p.peek('"') {
		return false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			if !utf8.Valid(p.b[p.i+1 : j]) {
				return false
			}
			*out = string(p.b[p.i+1 : j])
			p.i = j + 1
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

// uint reads a JSON number that is an unsigned integer (no sign, no
// fraction or exponent, no leading zero) that fits a uint64.
func (p *envParser) uint(out *uint64) bool {
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == p.i || (p.b[p.i] == '0' && j-p.i > 1) {
		return false
	}
	if j < len(p.b) && (p.b[j] == '.' || p.b[j] == 'e' || p.b[j] == 'E') {
		return false
	}
	n, err := strconv.ParseUint(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return false
	}
	*out = n
	p.i = j
	return true
}

// objectEnd finds the end of the JSON object starting at p.i (just past
// its closing brace), skipping strings and nested arrays and objects. It
// does not validate what is inside: the row change's own decoder does.
func (p *envParser) objectEnd() (int, bool) {
	if !p.peek('{') {
		return 0, false
	}
	depth := 0
	for j := p.i; j < len(p.b); j++ {
		switch p.b[j] {
		case '"':
			for j++; j < len(p.b) && p.b[j] != '"'; j++ {
				if p.b[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// names holds the table and column names of the schema and the row
// change ops, so that the row changes of a message share one copy of each
// instead of a string per name per row.
var names = func() map[string]string {
	m := map[string]string{string(retail.OpPut): string(retail.OpPut), string(retail.OpDel): string(retail.OpDel)}
	for _, t := range retail.Tables() {
		m[t.Name] = t.Name
		for _, c := range t.Cols {
			m[c] = c
		}
	}
	return m
}()

// rowChange reads a row change in the form json.Marshal writes it (see
// retail.RowChange.UnmarshalJSON, which gives the same RowChange for it)
// at p.i and moves past it; on !ok p.i is where it was.
func (p *envParser) rowChange() (retail.RowChange, bool) {
	start := p.i
	var c retail.RowChange
	var op string
	ok := p.lit(`{"t":`) && p.name(&c.Table) && p.lit(`,"op":`) && p.name(&op) && p.lit(`,"c":[`)
	if !ok {
		p.i = start
		return retail.RowChange{}, false
	}
	c.Op = retail.ChangeOp(op)
	c.Cols = make([]string, 0, 8)
	for first := true; !p.peek(']'); first = false {
		var col string
		if (!first && !p.lit(",")) || !p.name(&col) {
			p.i = start
			return retail.RowChange{}, false
		}
		c.Cols = append(c.Cols, col)
	}
	if !p.lit(`],"v":[`) || len(c.Cols) == 0 {
		p.i = start
		return retail.RowChange{}, false
	}
	c.Vals = make([]any, 0, len(c.Cols))
	for first := true; !p.peek(']'); first = false {
		if !first && !p.lit(",") {
			p.i = start
			return retail.RowChange{}, false
		}
		v, ok := p.value()
		if !ok {
			p.i = start
			return retail.RowChange{}, false
		}
		c.Vals = append(c.Vals, v)
	}
	if !p.lit("]}") {
		p.i = start
		return retail.RowChange{}, false
	}
	return c, true
}

// name reads a string like str, sharing the copy in names when it is one.
func (p *envParser) name(out *string) bool {
	if !p.peek('"') {
		return false
	}
	for j := p.i + 1; j < len(p.b) && j-p.i < 64; j++ {
		if p.b[j] == '"' {
			if s, ok := names[string(p.b[p.i+1:j])]; ok {
				*out = s
				p.i = j + 1
				return true
			}
			break
		}
	}
	return p.str(out)
}

// value reads null, an int64 or a string without escapes.
func (p *envParser) value() (any, bool) {
	if p.lit("null") {
		return nil, true
	}
	if p.peek('"') {
		var s string
		if !p.str(&s) {
			return nil, false
		}
		return s, true
	}
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	start := j
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == start || (p.b[start] == '0' && j-start > 1) {
		return nil, false
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return nil, false
	}
	p.i = j
	return n, true
}
