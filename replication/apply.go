package replication

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/endcap/endcap/retail"
)

// feedApplier writes the row changes of many change-log entries with few
// statements: the puts of one table go in multi-row upserts (up to
// putChunks[0] rows a statement), which costs SQLite and the driver far
// less than one statement a row. The result is the one
// retail.ApplyChanges gives applying the entries one row at a time, in
// order, and every statement leaves the foreign keys satisfied, as each
// of those would:
//
//   - Within a table, rows are written in feed order, and a multi-row
//     upsert writes its rows in order (a later put of the same key
//     updates the row the earlier one wrote).
//   - Puts are buffered per table and written parents first (the order
//     of the schema's foreign keys): a row's parent was written before
//     it in the feed (or existed already), so it is there when the row's
//     statement ends. A delete is a barrier: everything buffered is
//     written before it runs, so a delete never overtakes a put.
//   - Nothing else can tell the order of the writes to different tables:
//     the foreign keys have no ON DELETE or ON UPDATE actions, and the
//     only triggers are the replica's undo triggers, which do nothing
//     while no mutation is being captured.
//
// newFeedApplier checks all of this on the schema; when the foreign keys
// form a cycle (no such order), have actions, or other triggers exist, it
// writes one row a statement (retail.ApplyChanges). Like
// retail.ApplyChanges it accepts only the tables and whole-row column
// lists of this schema version, so nothing from the wire becomes SQL.
// Not safe for concurrent use.
type feedApplier struct {
	tables  map[string]*applyTable
	order   []*applyTable // parents before children; nil: one row a statement
	args    []any
	pending int // rows buffered
}

type applyTable struct {
	info  retail.TableInfo
	puts  [][]any // buffered rows, in feed order
	del   string
	multi map[int]string // rows → upsert of that many rows
}

// putChunks are the statement sizes a table's buffered puts are written
// in, largest first: a few statements prepared once, reused.
var putChunks = []int{32, 8, 1}

// newFeedApplier reads the foreign keys between the domain tables from
// the schema q sees.
func newFeedApplier(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (*feedApplier, error) {
	a := &feedApplier{tables: map[string]*applyTable{}}
	parents := map[string][]string{}
	// Triggers other than the undo triggers could see the order of the
	// writes: then one row a statement.
	var others int
	if err := queryRow(ctx, q, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name NOT LIKE 'edge\_undo\_%' ESCAPE '\'`, &others); err != nil {
		return nil, fmt.Errorf("triggers: %w", err)
	}
	unordered := others > 0
	var names []string
	for _, t := range retail.Tables() {
		where := make([]string, len(t.PK))
		for i, c := range t.PK {
			where[i] = c + " = ?"
		}
		a.tables[t.Name] = &applyTable{info: t, multi: map[int]string{},
			del: fmt.Sprintf("DELETE FROM %s WHERE %s", t.Name, strings.Join(where, " AND "))}
		names = append(names, t.Name)
		rows, err := q.QueryContext(ctx, `SELECT "table", on_update, on_delete FROM pragma_foreign_key_list(?)`, t.Name)
		if err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", t.Name, err)
		}
		for rows.Next() {
			var p, onUpdate, onDelete string
			if err := rows.Scan(&p, &onUpdate, &onDelete); err != nil {
				rows.Close()
				return nil, fmt.Errorf("foreign keys of %s: %w", t.Name, err)
			}
			parents[t.Name] = append(parents[t.Name], p)
			if !passive(onUpdate) || !passive(onDelete) {
				unordered = true // a write that writes elsewhere
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", t.Name, err)
		}
	}
	// Parents first (depth-first, names in order for a stable result);
	// a cycle leaves order nil.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			return false
		case 2:
			return true
		}
		state[n] = 1
		for _, p := range parents[n] {
			if p == n || !visit(p) {
				return false
			}
		}
		state[n] = 2
		if t := a.tables[n]; t != nil {
			a.order = append(a.order, t)
		}
		return true
	}
	for _, n := range names {
		if !visit(n) {
			unordered = true
			break
		}
	}
	if unordered {
		a.order = nil
	}
	return a, nil
}

// passive reports whether a foreign key action does nothing but check.
func passive(action string) bool {
	return action == "NO ACTION" || action == "RESTRICT"
}

func queryRow(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, dest ...any) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// upsert is the statement that puts n rows of t.
func (t *applyTable) upsert(n int) string {
	if q, ok := t.multi[n]; ok {
		return q
	}
	var set []string
	for _, c := range t.info.Cols {
		if !slices.Contains(t.info.PK, c) {
			set = append(set, c+" = excluded."+c)
		}
	}
	conflict := "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.info.Cols)), ", ") + ")"
	rows := strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) %s",
		t.info.Name, strings.Join(t.info.Cols, ", "), rows, strings.Join(t.info.PK, ", "), conflict)
	t.multi[n] = q
	return q
}

// apply writes the row changes of entries in tx. On an error the
// transaction must be rolled back: some rows may be written.
func (a *feedApplier) apply(ctx context.Context, tx *retail.Tx, entries []Change) error {
	if a.order == nil {
		for _, e := range entries {
			if err := retail.ApplyChanges(ctx, tx, e.Changes); err != nil {
				return fmt.Errorf("feed entry %d (%s): %w", e.Seq, e.MutationID, err)
			}
		}
		return nil
	}
	defer a.reset()
	for _, e := range entries {
		for i, c := range e.Changes {
			t := a.tables[c.Table]
			if t == nil {
				return fmt.Errorf("feed entry %d (%s): change %d: unknown table %q", e.Seq, e.MutationID, i, c.Table)
			}
			want := t.info.Cols
			if c.Op == retail.OpDel {
				want = t.info.PK
			} else if c.Op != retail.OpPut {
				return fmt.Errorf("feed entry %d (%s): change %d: unknown op %q", e.Seq, e.MutationID, i, c.Op)
			}
			if !slices.Equal(c.Cols, want) {
				return fmt.Errorf("feed entry %d (%s): change %d: %s columns %v, want %v", e.Seq, e.MutationID, i, c.Table, c.Cols, want)
			}
			if len(c.Vals) != len(c.Cols) {
				return fmt.Errorf("feed entry %d (%s): change %d: %s has %d values for %d columns", e.Seq, e.MutationID, i, c.Table, len(c.Vals), len(c.Cols))
			}
			if c.Op == retail.OpPut {
				t.puts = append(t.puts, c.Vals)
				a.pending++
				continue
			}
			if err := a.flushAll(ctx, tx); err != nil {
				return fmt.Errorf("feed up to entry %d (%s): %w", e.Seq, e.MutationID, err)
			}
			if _, err := tx.Exec(ctx, t.del, c.Vals...); err != nil {
				return fmt.Errorf("feed entry %d (%s): change %d: del %s: %w", e.Seq, e.MutationID, i, c.Table, err)
			}
		}
	}
	if err := a.flushAll(ctx, tx); err != nil {
		return fmt.Errorf("feed up to entry %d: %w", entries[len(entries)-1].Seq, err)
	}
	return nil
}

// flushAll writes every buffered put, parents first.
func (a *feedApplier) flushAll(ctx context.Context, tx *retail.Tx) error {
	if a.pending == 0 {
		return nil
	}
	for _, t := range a.order {
		if err := a.flush(ctx, tx, t); err != nil {
			return err
		}
	}
	a.pending = 0
	return nil
}

// reset drops what is buffered (after an error) and the references to
// the entries' values.
func (a *feedApplier) reset() {
	for _, t := range a.order {
		clear(t.puts)
		t.puts = t.puts[:0]
	}
	clear(a.args)
	a.args = a.args[:0]
	a.pending = 0
}

// flush writes t's buffered puts, in order.
func (a *feedApplier) flush(ctx context.Context, tx *retail.Tx, t *applyTable) error {
	rows := t.puts
	for len(rows) > 0 {
		n := 1
		for _, k := range putChunks {
			if len(rows) >= k {
				n = k
				break
			}
		}
		a.args = a.args[:0]
		for _, r := range rows[:n] {
			a.args = append(a.args, r...)
		}
		if _, err := tx.Exec(ctx, t.upsert(n), a.args...); err != nil {
			return fmt.Errorf("put %d rows into %s: %w", n, t.info.Name, err)
		}
		rows = rows[n:]
	}
	clear(t.puts)
	t.puts = t.puts[:0]
	return nil
}
