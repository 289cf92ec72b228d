package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/endcap/endcap/retail"
)

// The hub's leader executes mutations and replicates their effects: the
// row changes, under the hub sequences they will have, in the change
// feed's own encoding. EncodeEffects and DecodeEffects are that encoding;
// RowApplier writes it.

// EncodeEffects encodes change-log entries computed on a state whose hub
// sequence was base. It is the KindChanges message json.Marshal would
// write, with Head set to base, so the feed's one-pass parser reads it
// back; unlike a feed message it has no size bound. Each entry's
// RawChanges is set to its bytes in the result.
func EncodeEffects(base uint64, entries []Change) ([]byte, error) {
	return AppendEffects(make([]byte, 0, 1024*len(entries)+64), base, entries)
}

// AppendEffects is EncodeEffects appending to b (a log entry's own
// header, say), so the encoding is not copied after.
func AppendEffects(b []byte, base uint64, entries []Change) ([]byte, error) {
	b = append(b, `{"v":1,"kind":"changes","region":"","entries":`...)
	if entries == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
	}
	type span struct{ from, to int }
	spans := make([]span, len(entries))
	var err error
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seq":`...)
		b = strconv.AppendUint(b, e.Seq, 10)
		b = append(b, `,"mutation_id":`...)
		if b, err = retail.AppendJSONString(b, e.MutationID); err != nil {
			return nil, err
		}
		b = append(b, `,"status":`...)
		if b, err = retail.AppendJSONString(b, string(e.Status)); err != nil {
			return nil, err
		}
		b = append(b, `,"changes":`...)
		from := len(b)
		if e.raw != nil {
			b = append(b, e.raw...)
		} else if b, err = retail.AppendChangesJSON(b, e.Changes); err != nil {
			return nil, err
		}
		spans[i] = span{from, len(b)}
		b = append(b, '}')
	}
	if entries != nil {
		b = append(b, ']')
	}
	if base != 0 {
		b = append(b, `,"head":`...)
		b = strconv.AppendUint(b, base, 10)
	}
	b = append(b, '}')
	for i, s := range spans {
		entries[i].raw = b[s.from:s.to:s.to]
	}
	return b, nil
}

// DecodeEffects reads what EncodeEffects wrote. Each entry keeps its row
// changes' bytes (RawChanges), a slice of b.
func DecodeEffects(b []byte) (base uint64, entries []Change, err error) {
	m, ok := parseChangesRaw(b, true)
	if !ok {
		if m, err = decodeJSON(b); err != nil {
			return 0, nil, err
		}
		if m.Kind != KindChanges || len(m.Entries) == 0 {
			return 0, nil, fmt.Errorf("%w: effects: want changes, got %q with %d entries", ErrMalformed, m.Kind, len(m.Entries))
		}
	}
	return m.Head, m.Entries, nil
}

// RawChanges is the entry's row changes as JSON: the bytes it was read
// from or built with when it has them, else encoded now.
func (c Change) RawChanges() (json.RawMessage, error) {
	if c.raw != nil {
		return c.raw, nil
	}
	return json.Marshal(c.Changes)
}

// RowApplier writes the row changes of change-log entries in a
// transaction, with the few multi-row statements the edges' feed
// applier uses (see feedApplier). It keeps prepared statement texts and
// buffers between calls; it is not safe for concurrent use.
type RowApplier struct{ a *feedApplier }

// NewRowApplier reads the schema's foreign keys through q.
func NewRowApplier(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (*RowApplier, error) {
	a, err := newFeedApplier(ctx, q)
	if err != nil {
		return nil, err
	}
	return &RowApplier{a}, nil
}

// Apply writes entries' row changes in tx, in order. On an error the
// transaction must be rolled back.
func (r *RowApplier) Apply(ctx context.Context, tx *retail.Tx, entries []Change) error {
	if r == nil || r.a == nil {
		return errors.New("replication: nil RowApplier")
	}
	return r.a.apply(ctx, tx, entries)
}
