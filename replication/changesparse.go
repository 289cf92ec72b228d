package replication

import (
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
func parseChanges(b []byte) (Message, bool) { return parseChangesRaw(b, false) }

// parseChangesRaw is parseChanges; with keepRaw, each entry also keeps
// its row changes' bytes (Change.raw, a slice of b), so they can be
// stored as they are.
func parseChangesRaw(b []byte, keepRaw bool) (Message, bool) {
	p := envParser{retail.JSONScanner{B: b}}
	m := Message{V: ProtocolVersion, Kind: KindChanges}
	if !p.Lit(`{"v":1,"kind":"changes","region":`) || !p.Str(&m.Region) || !p.Lit(`,"entries":[`) {
		return Message{}, false
	}
	// Entries are about 1 KB each in the form the hub writes.
	m.Entries = make([]Change, 0, len(b)/1024+1)
	for first := true; !p.Peek(']'); first = false {
		if !first && !p.Lit(",") {
			return Message{}, false
		}
		var c Change
		var status string
		if !p.Lit(`{"seq":`) || !p.Uint(&c.Seq) || !p.Lit(`,"mutation_id":`) || !p.Str(&c.MutationID) ||
			!p.Lit(`,"status":`) || !p.Str(&status) || !p.Lit(`,"changes":[`) {
			return Message{}, false
		}
		c.Status = retail.Status(status)
		c.Changes = []retail.RowChange{} // "changes":[] decodes to an empty slice, not nil
		rawStart := p.I - 1
		for firstRow := true; !p.Peek(']'); firstRow = false {
			if !firstRow && !p.Lit(",") {
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
			if rc.UnmarshalJSON(p.B[p.I:end]) != nil {
				return Message{}, false
			}
			c.Changes = append(c.Changes, rc)
			p.I = end
		}
		if keepRaw {
			c.raw = p.B[rawStart : p.I+1 : p.I+1]
		}
		if !p.Lit("]}") {
			return Message{}, false
		}
		m.Entries = append(m.Entries, c)
	}
	p.I++ // ]
	if p.Lit(`,"head":`) && !p.Uint(&m.Head) {
		return Message{}, false
	}
	if p.Lit(`,"last":`) {
		if !p.Lit("true") {
			return Message{}, false
		}
		m.Last = true
	}
	if !p.Lit("}") || p.I != len(p.B) {
		return Message{}, false
	}
	if len(m.Entries) == 0 {
		return Message{}, false
	}
	return m, true
}

type envParser struct {
	retail.JSONScanner
}

// objectEnd finds the end of the JSON object starting at p.I (just past
// its closing brace), skipping strings and nested arrays and objects. It
// does not validate what is inside: the row change's own decoder does.
func (p *envParser) objectEnd() (int, bool) {
	if !p.Peek('{') {
		return 0, false
	}
	depth := 0
	for j := p.I; j < len(p.B); j++ {
		switch p.B[j] {
		case '"':
			for j++; j < len(p.B) && p.B[j] != '"'; j++ {
				if p.B[j] == '\\' {
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
// at p.I and moves past it; on !ok p.I is where it was.
func (p *envParser) rowChange() (retail.RowChange, bool) {
	start := p.I
	var c retail.RowChange
	var op string
	ok := p.Lit(`{"t":`) && p.name(&c.Table) && p.Lit(`,"op":`) && p.name(&op) && p.Lit(`,"c":[`)
	if !ok {
		p.I = start
		return retail.RowChange{}, false
	}
	c.Op = retail.ChangeOp(op)
	c.Cols = make([]string, 0, 8)
	for first := true; !p.Peek(']'); first = false {
		var col string
		if (!first && !p.Lit(",")) || !p.name(&col) {
			p.I = start
			return retail.RowChange{}, false
		}
		c.Cols = append(c.Cols, col)
	}
	if !p.Lit(`],"v":[`) || len(c.Cols) == 0 {
		p.I = start
		return retail.RowChange{}, false
	}
	c.Vals = make([]any, 0, len(c.Cols))
	for first := true; !p.Peek(']'); first = false {
		if !first && !p.Lit(",") {
			p.I = start
			return retail.RowChange{}, false
		}
		v, ok := p.Value()
		if !ok {
			p.I = start
			return retail.RowChange{}, false
		}
		c.Vals = append(c.Vals, v)
	}
	if !p.Lit("]}") {
		p.I = start
		return retail.RowChange{}, false
	}
	return c, true
}

// name reads a string like str, sharing the copy in names when it is one.
func (p *envParser) name(out *string) bool {
	if !p.Peek('"') {
		return false
	}
	for j := p.I + 1; j < len(p.B) && j-p.I < 64; j++ {
		if p.B[j] == '"' {
			if s, ok := names[string(p.B[p.I+1:j])]; ok {
				*out = s
				p.I = j + 1
				return true
			}
			break
		}
	}
	return p.Str(out)
}
