package retail

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Status is the outcome of applying a mutation.
type Status string

const (
	StatusAccepted Status = "accepted" // applied, no rule broken
	StatusRejected Status = "rejected" // a request refused; nothing applied
	StatusFlagged  Status = "flagged"  // a fact applied with exceptions
)

// Exception is a rule a fact broke, recorded for people to resolve.
type Exception struct {
	ID          string        `json:"id"` // mutation id + "#" + ordinal
	Kind        ExceptionKind `json:"kind"`
	Entity      string        `json:"entity"` // e.g. "coupon:C-7F2K", "inventory:S001/SKU-1"
	Detail      string        `json:"detail"` // what a person reads
	AmountCents Cents         `json:"amount_cents"`
}

// Result is what Apply made of a mutation.
type Result struct {
	ID         MutationID  `json:"id"`
	Status     Status      `json:"status"`
	Code       string      `json:"code,omitempty"`   // rejection code
	Reason     string      `json:"reason,omitempty"` // rejection reason a clerk can read
	Exceptions []Exception `json:"exceptions,omitempty"`
	// Changes are the rows written, in order, for the change feed: a
	// rejected mutation still writes its applied_mutations row.
	Changes []RowChange `json:"changes,omitempty"`
	// Duplicate: the id was applied before; this is the original result
	// and nothing was written now.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Apply applies m inside tx and returns its result.
//
// Apply is deterministic: the same mutations applied in the same order to
// the same database give the same rows and results on every node. It is
// idempotent on the mutation id: a mutation already applied is answered
// with its original result (Duplicate set) and changes nothing.
//
// A Request that breaks a rule is rejected; a Fact never is for a business
// rule, but is applied and flagged with Exceptions. A mutation that does
// not validate (no lines, a product the region does not have) is rejected
// with CodeInvalid or CodeNotFound, whatever its class: there is nothing it
// could be applied to. A rejected mutation leaves nothing in tx but its
// applied_mutations row.
//
// A non-nil error means the database failed (or ctx ended); tx should then
// be rolled back and the mutation retried, never skipped.
func Apply(ctx context.Context, tx *Tx, m Mutation) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	a := &applier{tx: tx, m: m, id: m.ID.String(), at: m.HLC.Wall}
	res := Result{ID: m.ID, Status: StatusAccepted}
	typ := ""
	if m.Body != nil {
		typ = m.Body.Type()
	}
	if err := m.Validate(); err != nil {
		res.Status, res.Code, res.Reason = StatusRejected, CodeInvalid, err.Error()
		rec := a.record(typ, res)
		if fresh, err := a.insertNew(ctx, tAppliedMutations, rec); err != nil {
			return Result{}, fmt.Errorf("apply %s %s: record: %w", typ, m.ID, err)
		} else if !fresh {
			return duplicate(ctx, tx, m.ID)
		}
		a.changes = append(a.changes, RowChange{Table: tAppliedMutations.name, Op: OpPut, Cols: tAppliedMutations.cols, Vals: rec})
		res.Changes = a.changes
		return res, nil
	}
	if _, err := tx.exec(ctx, "SAVEPOINT apply"); err != nil {
		return Result{}, fmt.Errorf("apply %s %s: %w", typ, m.ID, err)
	}
	// The mutation's applied_mutations row goes first, as if accepted: a
	// mutation applied before finds its row there (and nothing else is
	// written), one that is not holds the id from here on. The row's
	// change is recorded last, with the outcome, as it always was.
	rec := a.record(typ, res)
	if fresh, err := a.insertNew(ctx, tAppliedMutations, rec); err != nil || !fresh {
		if _, rerr := tx.exec(context.WithoutCancel(ctx), "RELEASE apply"); err == nil {
			err = rerr
		}
		if err != nil {
			return Result{}, fmt.Errorf("apply %s %s: record: %w", typ, m.ID, err)
		}
		return duplicate(ctx, tx, m.ID)
	}
	err := m.Body.apply(ctx, a)
	if err == nil {
		err = a.writeExceptions(ctx)
	}
	var rej *Rejection
	switch {
	case err == nil:
		if len(a.exceptions) > 0 {
			res.Status = StatusFlagged
			res.Exceptions = a.exceptions
		}
	case errors.As(err, &rej):
		// Everything the mutation wrote goes, its applied_mutations row too;
		// the row is written again below, rejected.
		res.Status, res.Code, res.Reason = StatusRejected, rej.Code, rej.Reason
		a.changes = nil
		if _, err := tx.exec(ctx, "ROLLBACK TO apply"); err != nil {
			return Result{}, fmt.Errorf("apply %s %s: %w", typ, m.ID, err)
		}
	default:
		tx.exec(context.WithoutCancel(ctx), "ROLLBACK TO apply")
		tx.exec(context.WithoutCancel(ctx), "RELEASE apply")
		return Result{}, fmt.Errorf("apply %s %s: %w", typ, m.ID, err)
	}
	if _, err := tx.exec(ctx, "RELEASE apply"); err != nil {
		return Result{}, fmt.Errorf("apply %s %s: %w", typ, m.ID, err)
	}
	if res.Status == StatusAccepted {
		// The row written first is the row: record its change.
		a.changes = append(a.changes, RowChange{Table: tAppliedMutations.name, Op: OpPut, Cols: tAppliedMutations.cols, Vals: rec})
	} else if err := a.put(ctx, tAppliedMutations, a.record(typ, res)...); err != nil {
		return Result{}, fmt.Errorf("apply %s %s: record: %w", typ, m.ID, err)
	}
	res.Changes = a.changes
	return res, nil
}

// record is the applied_mutations row of the mutation with result res.
func (a *applier) record(typ string, res Result) []any {
	return []any{a.id, typ, a.m.HLC.String(), a.m.Actor.String(),
		string(res.Status), res.Code, res.Reason}
}

// duplicate answers a mutation whose id has an applied_mutations row
// with its original result.
func duplicate(ctx context.Context, tx *Tx, id MutationID) (Result, error) {
	res, ok, err := previousResult(ctx, tx, id)
	if err == nil && !ok {
		err = fmt.Errorf("look up mutation %s: its row is missing", id)
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

func previousResult(ctx context.Context, tx *Tx, id MutationID) (Result, bool, error) {
	res := Result{ID: id, Duplicate: true}
	const q = "SELECT status, code, reason FROM applied_mutations WHERE id = ?"
	found := false
	_, err := tx.rawQuery(ctx, func(row []driver.Value) error {
		found = true
		var ok [3]bool
		var status string
		status, ok[0] = row[0].(string)
		res.Code, ok[1] = row[1].(string)
		res.Reason, ok[2] = row[2].(string)
		res.Status = Status(status)
		if ok != [3]bool{true, true, true} {
			return fmt.Errorf("applied_mutations row %v: want text", row)
		}
		return nil
	}, q, id.String())
	if err != nil {
		return Result{}, false, fmt.Errorf("look up mutation %s: %w", id, err)
	}
	if !found {
		return Result{}, false, nil
	}
	rows, err := tx.query(ctx, "SELECT id, kind, entity, detail, amount_cents FROM exceptions WHERE mutation_id = ? ORDER BY id", id.String())
	if err != nil {
		return Result{}, false, fmt.Errorf("look up mutation %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Exception
		if err := rows.Scan(&e.ID, &e.Kind, &e.Entity, &e.Detail, &e.AmountCents); err != nil {
			return Result{}, false, fmt.Errorf("look up mutation %s: %w", id, err)
		}
		res.Exceptions = append(res.Exceptions, e)
	}
	return res, true, rows.Err()
}

// applier carries one mutation's application: the transaction, the
// mutation, its time, and the rows and exceptions it has written so far.
type applier struct {
	tx         *Tx
	m          Mutation
	id         string // m.ID.String()
	at         int64  // the mutation's HLC wall time: "now" for Apply
	changes    []RowChange
	exceptions []Exception
}

// flag records an exception on the fact being applied.
func (a *applier) flag(kind ExceptionKind, entity string, amount Cents, format string, args ...any) {
	a.exceptions = append(a.exceptions, Exception{
		ID:          fmt.Sprintf("%s#%d", a.m.ID, len(a.exceptions)+1),
		Kind:        kind,
		Entity:      entity,
		Detail:      fmt.Sprintf(format, args...),
		AmountCents: amount,
	})
}

func (a *applier) writeExceptions(ctx context.Context) error {
	for _, e := range a.exceptions {
		if err := a.put(ctx, tExceptions, e.ID, a.m.ID.String(), string(e.Kind), e.Entity, e.Detail,
			e.AmountCents, "open", a.at, nil, nil, ""); err != nil {
			return err
		}
	}
	return nil
}

// put writes a whole row (inserting it, or updating every column of the
// row with the same key) and records it as a change.
func (a *applier) put(ctx context.Context, t *tableDef, vals ...any) error {
	if len(vals) != len(t.cols) {
		return fmt.Errorf("put %s: %d values for %d columns", t.name, len(vals), len(t.cols))
	}
	for i, v := range vals {
		vals[i] = normalize(v)
	}
	if _, err := a.tx.exec(ctx, t.upsertSQL, vals...); err != nil {
		return fmt.Errorf("put %s: %w", t.name, err)
	}
	a.changes = append(a.changes, RowChange{Table: t.name, Op: OpPut, Cols: t.cols, Vals: vals})
	return nil
}

// insertNew inserts the whole row vals into t unless a row with its key
// exists, and reports whether it did. It records no change: the caller
// does, once it knows the row is final.
func (a *applier) insertNew(ctx context.Context, t *tableDef, vals []any) (bool, error) {
	res, err := a.tx.exec(ctx, insertSQL(t, 1, " ON CONFLICT DO NOTHING"), vals...)
	if err != nil {
		return false, fmt.Errorf("insert %s: %w", t.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert %s: %w", t.name, err)
	}
	return n == 1, nil
}

// maxRowsPerInsert bounds the rows insert writes in one statement, so
// that a writer prepares at most that many statements per table.
const maxRowsPerInsert = 16

// insert writes new rows of t and records them as changes, in order.
// rows holds whole rows, one after the other, each in t's column order.
// It runs one statement for up to maxRowsPerInsert rows. Unlike put it
// never replaces a row: a key that exists, like any broken constraint (a
// foreign key), fails the statement, and nothing of it is written.
func (a *applier) insert(ctx context.Context, t *tableDef, rows []any) error {
	w := len(t.cols)
	if len(rows)%w != 0 {
		return fmt.Errorf("insert %s: %d values for rows of %d columns", t.name, len(rows), w)
	}
	for i, v := range rows {
		rows[i] = normalize(v)
	}
	for len(rows) > 0 {
		n := min(len(rows)/w, maxRowsPerInsert)
		if _, err := a.tx.exec(ctx, insertSQL(t, n, ""), rows[:n*w]...); err != nil {
			return fmt.Errorf("insert %s: %w", t.name, err)
		}
		for i := range n {
			a.changes = append(a.changes, RowChange{Table: t.name, Op: OpPut, Cols: t.cols, Vals: rows[i*w : (i+1)*w : (i+1)*w]})
		}
		rows = rows[n*w:]
	}
	return nil
}

// insertSQL is an INSERT of n whole rows into t, followed by tail,
// built once per table, row count and tail.
func insertSQL(t *tableDef, n int, tail string) string {
	k := insertKey{t, n, tail}
	if q, ok := insertSQLs.Load(k); ok {
		return q.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	q := "INSERT INTO " + t.name + " (" + quoteIdents(t.cols) + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + tail
	insertSQLs.Store(k, q)
	return q
}

type insertKey struct {
	t    *tableDef
	n    int
	tail string
}

var insertSQLs sync.Map // insertKey -> string

// del deletes the row with the given key and records it as a change.
func (a *applier) del(ctx context.Context, t *tableDef, key ...any) error {
	if _, err := a.tx.exec(ctx, t.deleteSQL, key...); err != nil {
		return fmt.Errorf("delete %s: %w", t.name, err)
	}
	a.changes = append(a.changes, RowChange{Table: t.name, Op: OpDel, Cols: t.pk, Vals: key})
	return nil
}

// update runs an UPDATE of table t (a statement without RETURNING) and
// records every row it changed, whole, as a put. It returns those rows.
func (a *applier) update(ctx context.Context, t *tableDef, query string, args ...any) ([][]any, error) {
	rows, err := a.returning(ctx, t, query+t.returning, args...)
	if err != nil {
		return nil, err
	}
	for _, vals := range rows {
		a.changes = append(a.changes, RowChange{Table: t.name, Op: OpPut, Cols: t.cols, Vals: vals})
	}
	return rows, nil
}

// returning runs a statement on table t that returns whole rows of t
// (RETURNING every column) and returns them, in the order SQLite gives
// them. It records no change.
func (a *applier) returning(ctx context.Context, t *tableDef, query string, args ...any) ([][]any, error) {
	var out [][]any
	handled, err := a.tx.rawQuery(ctx, func(row []driver.Value) error {
		vals := make([]any, len(row))
		for i, v := range row {
			if b, ok := v.([]byte); ok {
				v = bytes.Clone(b) // as Scan into *any does
			}
			vals[i] = normalize(v)
		}
		out = append(out, vals)
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", t.name, err)
	}
	if handled {
		return out, nil
	}
	rows, err := a.tx.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("update %s: %w", t.name, err)
		}
		for i, v := range vals {
			vals[i] = normalize(v)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("update %s: %w", t.name, err)
	}
	return out, nil
}

// exists runs a query that selects at most one row and reports whether it did.
func (a *applier) exists(ctx context.Context, query string, args ...any) (bool, error) {
	found := false
	handled, err := a.tx.rawQuery(ctx, func([]driver.Value) error {
		found = true
		return nil
	}, query, args...)
	if handled {
		return found, err
	}
	var one int
	err = a.tx.queryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// mustExist rejects with CodeNotFound when the row is missing.
func (a *applier) mustExist(ctx context.Context, what, table, keyCol string, key any) error {
	ok, err := a.exists(ctx, "SELECT 1 FROM "+table+" WHERE "+keyCol+" = ?", key)
	if err != nil {
		return fmt.Errorf("look up %s %v: %w", what, key, err)
	}
	if !ok {
		return reject(CodeNotFound, "Unknown %s %v.", what, key)
	}
	return nil
}

// setting reads an integer region setting.
func (a *applier) setting(ctx context.Context, key string) (int64, error) {
	var s string
	if err := a.tx.queryRow(ctx, "SELECT value FROM settings WHERE key = ?", key).Scan(&s); err != nil {
		return 0, fmt.Errorf("setting %s: %w", key, err)
	}
	var v int64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, fmt.Errorf("setting %s=%q: %w", key, s, err)
	}
	return v, nil
}

// normalize maps Go values to the few types SQLite stores, so recorded
// changes and the database hold the same thing: int64, string, []byte, nil.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, int64, string, []byte:
		return x
	case int:
		return int64(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case *string:
		if x == nil {
			return nil
		}
		return *x
	case *int64:
		if x == nil {
			return nil
		}
		return *x
	case float64:
		return x
	default:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
			return rv.String() // the enumeration types
		}
		panic(fmt.Sprintf("retail: cannot store %T", v))
	}
}

// nullable maps "" to NULL, for optional references.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func quoteIdents(cols []string) string {
	return strings.Join(cols, ", ")
}
