package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/endcap/endcap/retail"
)

// The hub's leader executes mutations and replicates their effects: the
// row changes, under the hub sequences they will have, in the change
// feed's own encoding. EncodeEffects and DecodeEffects are that encoding;
// RowApplier writes it.

// EncodeEffects encodes change-log entries computed on a state whose hub
// sequence was base. It is a KindChanges message with Head set to base,
// so the feed's one-pass parser reads it back; unlike a feed message it
// has no size bound.
func EncodeEffects(base uint64, entries []Change) ([]byte, error) {
	return json.Marshal(Message{V: ProtocolVersion, Kind: KindChanges, Region: "", Entries: entries, Head: base})
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
