package retail

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// writeThenReject writes rows and then refuses: what Apply's savepoint is
// for, since no mutation type of this version rejects after writing.
type writeThenReject struct{ fail error }

func (*writeThenReject) Type() string    { return "test_write_then_reject" }
func (*writeThenReject) Class() Class    { return Request }
func (*writeThenReject) Validate() error { return nil }
func (b *writeThenReject) apply(ctx context.Context, a *applier) error {
	if err := a.put(ctx, tStores, "S9", KindStore, "Ghost", "west", "", "UTC", a.at); err != nil {
		return err
	}
	if err := a.moveStock(ctx, "S1", "SKU-1", -1, 0, true); err != nil {
		return err
	}
	// An argument database/sql converts (a driver.Valuer) goes its way.
	if _, err := a.tx.exec(ctx, "UPDATE stores SET address = coalesce(?, 'x') WHERE id = 'S9'", sql.NullString{}); err != nil {
		return err
	}
	if b.fail != nil {
		return b.fail
	}
	return reject(CodeConflict, "No.")
}

// A rejection after writes leaves nothing but its applied_mutations row.
func TestRejectionRollsBackItsWrites(t *testing.T) {
	r := newRegion(t)
	before := dump(t, r.db)
	res := r.apply(&writeThenReject{})
	if res.Status != StatusRejected || res.Code != CodeConflict {
		t.Fatalf("got %s %s", res.Status, res.Code)
	}
	if len(res.Changes) != 1 || res.Changes[0].Table != "applied_mutations" {
		t.Fatalf("changes %v", tables(res.Changes))
	}
	if r.int("SELECT count(*) FROM stores WHERE id = 'S9'") != 0 || r.onHand("S1", "SKU-1") != 5 {
		t.Fatal("the rejected mutation's writes were kept")
	}
	if _, err := r.db.ExecContext(context.Background(), "DELETE FROM applied_mutations WHERE id = ?", res.ID.String()); err != nil {
		t.Fatal(err)
	}
	if after := dump(t, r.db); after != before {
		t.Fatalf("database changed: %s", diffLines(before, after))
	}
	// A database error fails Apply; the caller rolls back.
	ctx := context.Background()
	err := r.db.Update(ctx, func(tx *Tx) error {
		_, err := Apply(ctx, tx, r.mutation(&writeThenReject{fail: errors.New("disk on fire")}))
		return err
	})
	if err == nil || r.int("SELECT count(*) FROM stores WHERE id = 'S9'") != 0 {
		t.Fatalf("err %v", err)
	}
}

// One write transaction at a time: a second Begin waits for the first to
// end, or for its context.
func TestWriteTransactionsTakeTurns(t *testing.T) {
	r := newRegion(t)
	ctx := context.Background()
	tx, err := r.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := r.db.Begin(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Begin: %v", err)
	}
	done := make(chan error)
	go func() {
		done <- r.db.Update(ctx, func(tx *Tx) error {
			_, err := Apply(ctx, tx, r.mutation(&AdjustStock{Location: "S1", SKU: "SKU-2", Delta: 1, Reason: "count"}))
			return err
		})
	}()
	select {
	case err := <-done:
		t.Fatalf("second transaction ran inside the first: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if _, err := Apply(ctx, tx, r.mutation(&AdjustStock{Location: "S1", SKU: "SKU-2", Delta: 1, Reason: "count"})); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.onHand("S1", "SKU-2"); got != 22 {
		t.Fatalf("on hand %d, want 22", got)
	}
	if err := tx.Rollback(); !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("rollback after commit: %v", err)
	}
}

// When Begin's context ends, statements fail, Commit rolls back, and the
// next transaction starts clean.
func TestTransactionContextEnds(t *testing.T) {
	r := newRegion(t)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := r.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if _, err := Apply(bg, tx, r.mutation(&AdjustStock{Location: "S1", SKU: "SKU-2", Delta: 1, Reason: "count"})); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := Apply(bg, tx, r.mutation(&AdjustStock{Location: "S1", SKU: "SKU-2", Delta: 1, Reason: "count"})); !errors.Is(err, context.Canceled) {
		t.Fatalf("apply after cancel: %v", err)
	}
	var n int
	if err := tx.queryRow(bg, "SELECT 1").Scan(&n); !errors.Is(err, context.Canceled) {
		t.Fatalf("query after cancel: %v", err)
	}
	if err := tx.Commit(); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit after cancel: %v", err)
	}
	if got := r.onHand("S1", "SKU-2"); got != 20 {
		t.Fatalf("on hand %d, want 20: the cancelled transaction committed", got)
	}
	r.mustAccept(&AdjustStock{Location: "S1", SKU: "SKU-2", Delta: 1, Reason: "count"})
	if got := r.onHand("S1", "SKU-2"); got != 21 {
		t.Fatalf("on hand %d, want 21", got)
	}
}

// Close does not wait for an open transaction, which then ends normally.
func TestCloseWithOpenTransaction(t *testing.T) {
	r := newRegion(t)
	ctx := context.Background()
	tx, err := r.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.Begin(ctx); err == nil {
		t.Fatal("Begin after Close")
	}
}
