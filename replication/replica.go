package replication

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/endcap/endcap/retail"
)

// edgeSchema is the edge's own tables, beside the region's in the replica
// file, so a local write and its outbox entry commit together.
//
//   - edge_meta: region, edge id, next outbox sequence, applied hub
//     sequence, and whether the pending mutations are applied on top.
//   - edge_pending: the outbox. A mutation stays until the change feed
//     brings the hub's record of it (its applied_mutations row).
//   - edge_undo: before-images of every row the pending mutations wrote
//     (filled by triggers), so they can be taken off again to let the
//     server's changes in underneath: the rebase.
//   - edge_attention: what a person must look at: requests the hub
//     rejected, facts it flagged, mutations it could not read.
const edgeSchema = `
CREATE TABLE IF NOT EXISTS edge_meta (
  key   TEXT PRIMARY KEY,
  value ANY
) STRICT;
CREATE TABLE IF NOT EXISTS edge_pending (
  seq          INTEGER PRIMARY KEY,
  id           TEXT NOT NULL UNIQUE,
  type         TEXT NOT NULL,
  raw          BLOB NOT NULL,
  created_at   INTEGER NOT NULL,
  local_status TEXT NOT NULL,
  local_reason TEXT NOT NULL DEFAULT '',
  acked_seq    INTEGER NOT NULL DEFAULT 0,
  ack_status   TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE TABLE IF NOT EXISTS edge_undo (
  n   INTEGER PRIMARY KEY,
  tbl TEXT NOT NULL,
  op  TEXT NOT NULL,
  row TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS edge_capture (c INTEGER NOT NULL) STRICT;
INSERT INTO edge_capture (c) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM edge_capture);
CREATE TABLE IF NOT EXISTS edge_attention (
  id         TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  status     TEXT NOT NULL,
  code       TEXT NOT NULL,
  reason     TEXT NOT NULL,
  exceptions TEXT NOT NULL,
  at         INTEGER NOT NULL,
  done_by    TEXT NOT NULL DEFAULT '',
  done_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
`

// undoTriggers returns the statements that (re)create the before-image
// triggers on every domain table. They write only while edge_capture.c is
// 1, which the replica sets around its own mutations and nothing else.
func undoTriggers() []string {
	var out []string
	for _, t := range retail.Tables() {
		oldRow := "json_array(" + prefixed("OLD.", t.Cols) + ")"
		newKey := "json_array(" + prefixed("NEW.", t.PK) + ")"
		when := "WHEN (SELECT c FROM edge_capture)"
		out = append(out,
			fmt.Sprintf("DROP TRIGGER IF EXISTS edge_undo_%s_i", t.Name),
			fmt.Sprintf("DROP TRIGGER IF EXISTS edge_undo_%s_u", t.Name),
			fmt.Sprintf("DROP TRIGGER IF EXISTS edge_undo_%s_d", t.Name),
			fmt.Sprintf("CREATE TRIGGER edge_undo_%[1]s_i AFTER INSERT ON %[1]s %[2]s BEGIN INSERT INTO edge_undo (tbl, op, row) VALUES ('%[1]s', 'del', %[3]s); END", t.Name, when, newKey),
			fmt.Sprintf("CREATE TRIGGER edge_undo_%[1]s_u AFTER UPDATE ON %[1]s %[2]s BEGIN INSERT INTO edge_undo (tbl, op, row) VALUES ('%[1]s', 'put', %[3]s); END", t.Name, when, oldRow),
			fmt.Sprintf("CREATE TRIGGER edge_undo_%[1]s_d AFTER DELETE ON %[1]s %[2]s BEGIN INSERT INTO edge_undo (tbl, op, row) VALUES ('%[1]s', 'put', %[3]s); END", t.Name, when, oldRow),
		)
	}
	return out
}

func prefixed(p string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = p + `"` + c + `"`
	}
	return strings.Join(out, ", ")
}

// ReplicaConfig configures OpenReplica.
type ReplicaConfig struct {
	Path   string // the replica's SQLite file
	Region string
	Edge   string // this edge's id: the origin of its mutations
	Clock  *retail.Clock
	Logger *slog.Logger
	// Durability: FULL (the zero value) for a store: a sale survives a
	// power cut. Benchmarks of many in-process edges may use NORMAL.
	Durability retail.Durability
}

// Replica is an edge's copy of the region: the hub's state as of the
// applied hub sequence, with the edge's own pending mutations applied on
// top, and the outbox that holds them until the hub has them.
type Replica struct {
	cfg   ReplicaConfig
	log   *slog.Logger
	clock *retail.Clock

	mu sync.RWMutex // guards db against Bootstrap's swap
	db *retail.DB

	changed chan struct{} // a new pending mutation (buffered, 1)

	releasers []func() // close what holds the database open; see OnRelease

	applier *feedApplier // writes the feed; used (and made) under the writer, nil after a swap
}

// OnRelease registers fn to be called before the replica's database is
// closed (Close, and Bootstrap's swap): users that keep connections of
// their own (prepared statements) close them there, so no connection to
// the old file outlives it.
func (r *Replica) OnRelease(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releasers = append(r.releasers, fn)
}

func (r *Replica) release() {
	for _, fn := range r.releasers {
		fn()
	}
}

// ErrGap: feed entries do not follow the applied sequence; ask for the
// missing range.
var ErrGap = errors.New("gap in the change feed")

// ErrWrongReplica: the file belongs to another region or edge.
var ErrWrongReplica = errors.New("replica belongs to another region or edge")

// OpenReplica opens (or creates) an edge's replica.
func OpenReplica(ctx context.Context, cfg ReplicaConfig) (*Replica, error) {
	if err := ValidID(cfg.Region); err != nil {
		return nil, fmt.Errorf("region: %w", err)
	}
	if err := ValidID(cfg.Edge); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = &retail.Clock{}
	}
	r := &Replica{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, changed: make(chan struct{}, 1)}
	db, err := r.open(ctx, cfg.Path)
	if err != nil {
		return nil, err
	}
	r.db = db
	return r, nil
}

func (r *Replica) open(ctx context.Context, path string) (*retail.DB, error) {
	db, err := retail.Open(ctx, path, retail.Options{Durability: r.cfg.Durability})
	if err != nil {
		return nil, err
	}
	err = db.Update(ctx, func(tx *retail.Tx) error {
		if _, err := tx.SQL().ExecContext(ctx, edgeSchema); err != nil {
			return fmt.Errorf("edge schema: %w", err)
		}
		for _, s := range undoTriggers() {
			if _, err := tx.SQL().ExecContext(ctx, s); err != nil {
				return fmt.Errorf("edge triggers: %w", err)
			}
		}
		for k, v := range map[string]string{"region": r.cfg.Region, "edge": r.cfg.Edge} {
			var have string
			err := tx.SQL().QueryRowContext(ctx, "SELECT value FROM edge_meta WHERE key = ?", k).Scan(&have)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if err := setMeta(ctx, tx, k, v); err != nil {
					return err
				}
			case err != nil:
				return err
			case have != v:
				return fmt.Errorf("%w: %s is %q, not %q", ErrWrongReplica, k, have, v)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	return db, nil
}

// Close closes the replica.
func (r *Replica) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release()
	return r.db.Close()
}

// Edge is this edge's id.
func (r *Replica) Edge() string { return r.cfg.Edge }

// Region is the region's id.
func (r *Replica) Region() string { return r.cfg.Region }

// Clock is the edge's hybrid logical clock.
func (r *Replica) Clock() *retail.Clock { return r.clock }

// DB gives read access to the replica; call done when finished. Reads
// see the hub's state plus this edge's pending mutations.
func (r *Replica) DB() (db *retail.DB, done func()) {
	r.mu.RLock()
	return r.db, r.mu.RUnlock
}

// Changed is signalled when a mutation is added to the outbox.
func (r *Replica) Changed() <-chan struct{} { return r.changed }

func setMeta(ctx context.Context, tx *retail.Tx, key string, v any) error {
	_, err := tx.Exec(ctx, "INSERT INTO edge_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, v)
	if err != nil {
		return fmt.Errorf("edge_meta %s: %w", key, err)
	}
	return nil
}

func metaInt(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, key string) (int64, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT value FROM edge_meta WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("edge_meta %s: %w", key, err)
	}
	return v.Int64, nil
}

func capture(ctx context.Context, tx *retail.Tx, on bool) error {
	v := 0
	if on {
		v = 1
	}
	_, err := tx.Exec(ctx, "UPDATE edge_capture SET c = ?", v)
	return err
}

// Write applies a new mutation of this edge to the replica and adds it to
// the outbox, in one transaction: the network is never on the path. A
// request the local rules reject is not written at all and comes back
// with StatusRejected (err nil); a flagged fact is written and uploaded.
func (r *Replica) Write(ctx context.Context, actor retail.Actor, body retail.Body) (retail.Result, error) {
	res, err := r.WriteBatch(ctx, actor, body)
	if err != nil {
		return retail.Result{}, err
	}
	return res[0], nil
}

// WriteBatch is Write for several mutations in one transaction (one
// commit, one fsync): a sign-in's visit, offers and coupons. Each is
// applied on top of the ones before it; one the local rules reject is
// left out (its result says why) and the others are written.
func (r *Replica) WriteBatch(ctx context.Context, actor retail.Actor, bodies ...retail.Body) ([]retail.Result, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]retail.Result, len(bodies))
	written := 0
	err := r.db.Update(ctx, func(tx *retail.Tx) error {
		written = 0
		if err := r.ensureApplied(ctx, tx); err != nil {
			return err
		}
		next, err := metaInt(ctx, tx.SQL(), "next_seq")
		if err != nil {
			return err
		}
		seq := uint64(max(next, 1))
		for i, body := range bodies {
			m := retail.Mutation{ID: retail.MutationID{Origin: r.cfg.Edge, Seq: seq}, HLC: r.clock.Tick(), Actor: actor, Body: body}
			raw, err := retail.Encode(m)
			if err != nil {
				out[i] = retail.Result{ID: m.ID, Status: retail.StatusRejected, Code: retail.CodeInvalid, Reason: err.Error()}
				continue
			}
			if _, err := tx.Exec(ctx, "SAVEPOINT edge_write"); err != nil {
				return err
			}
			res, err := applyCaptured(ctx, tx, m)
			if err != nil {
				return err
			}
			res.Changes = nil
			out[i] = res
			if res.Status == retail.StatusRejected {
				// Not written: its applied_mutations row and undo entries go.
				if _, err := tx.Exec(ctx, "ROLLBACK TO edge_write"); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "RELEASE edge_write"); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Exec(ctx, "RELEASE edge_write"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO edge_pending (seq, id, type, raw, created_at, local_status) VALUES (?, ?, ?, ?, ?, ?)",
				int64(seq), m.ID.String(), body.Type(), raw, time.Now().UnixMilli(), string(res.Status)); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			seq++
			written++
		}
		if written == 0 {
			return nil
		}
		return setMeta(ctx, tx, "next_seq", int64(seq))
	})
	if err != nil {
		return nil, err
	}
	if written > 0 {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
	return out, nil
}

func applyCaptured(ctx context.Context, tx *retail.Tx, m retail.Mutation) (retail.Result, error) {
	if err := capture(ctx, tx, true); err != nil {
		return retail.Result{}, err
	}
	res, err := retail.Apply(ctx, tx, m)
	if err != nil {
		return retail.Result{}, err
	}
	return res, capture(ctx, tx, false)
}

// ensureApplied re-applies the pending mutations if a catch-up left them
// off.
func (r *Replica) ensureApplied(ctx context.Context, tx *retail.Tx) error {
	on, err := metaInt(ctx, tx.SQL(), "pending_applied")
	if err != nil || on == 1 {
		return err
	}
	return r.redo(ctx, tx)
}

// undo takes the pending mutations' effects off, newest first, leaving
// the hub's state as of the applied sequence.
func (r *Replica) undo(ctx context.Context, tx *retail.Tx) error {
	on, err := metaInt(ctx, tx.SQL(), "pending_applied")
	if err != nil || on == 0 {
		return err
	}
	rows, err := tx.SQL().QueryContext(ctx, "SELECT tbl, op, row FROM edge_undo ORDER BY n DESC")
	if err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	var changes []retail.RowChange
	tables := tableIndex()
	for rows.Next() {
		var tbl, op, row string
		if err := rows.Scan(&tbl, &op, &row); err != nil {
			rows.Close()
			return fmt.Errorf("undo: %w", err)
		}
		t, ok := tables[tbl]
		if !ok {
			rows.Close()
			return fmt.Errorf("undo: unknown table %q", tbl)
		}
		vals, err := decodeRow(row)
		if err != nil {
			rows.Close()
			return fmt.Errorf("undo %s: %w", tbl, err)
		}
		c := retail.RowChange{Table: tbl, Op: retail.OpPut, Cols: t.Cols, Vals: vals}
		if op == "del" {
			c.Op, c.Cols = retail.OpDel, t.PK
		}
		changes = append(changes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	if err := retail.ApplyChanges(ctx, tx, changes); err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM edge_undo"); err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	return setMeta(ctx, tx, "pending_applied", 0)
}

// redo applies the pending mutations on top of the hub's state, oldest
// first, capturing their before-images again.
func (r *Replica) redo(ctx context.Context, tx *retail.Tx) error {
	type pending struct {
		seq int64
		raw []byte
	}
	var ps []pending
	rows, err := tx.SQL().QueryContext(ctx, "SELECT seq, raw FROM edge_pending ORDER BY seq")
	if err != nil {
		return fmt.Errorf("redo: %w", err)
	}
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.seq, &p.raw); err != nil {
			rows.Close()
			return fmt.Errorf("redo: %w", err)
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("redo: %w", err)
	}
	for _, p := range ps {
		m, err := retail.Decode(p.raw)
		if err != nil {
			return fmt.Errorf("redo %d: %w", p.seq, err)
		}
		res, err := applyCaptured(ctx, tx, m)
		if err != nil {
			return fmt.Errorf("redo %s: %w", m.ID, err)
		}
		if _, err := tx.Exec(ctx, "UPDATE edge_pending SET local_status = ?, local_reason = ? WHERE seq = ?",
			string(res.Status), res.Reason, p.seq); err != nil {
			return fmt.Errorf("redo: %w", err)
		}
	}
	return setMeta(ctx, tx, "pending_applied", 1)
}

func tableIndex() map[string]retail.TableInfo {
	out := map[string]retail.TableInfo{}
	for _, t := range retail.Tables() {
		out[t.Name] = t
	}
	return out
}

// decodeRow reads a JSON array written by json_array into driver values:
// integers as int64, text as string, NULL as nil.
func decodeRow(s string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	for i, v := range raw {
		if n, ok := v.(json.Number); ok {
			x, err := n.Int64()
			if err != nil {
				return nil, fmt.Errorf("value %d: %q is not an integer", i, n)
			}
			raw[i] = x
		}
	}
	return raw, nil
}

// Status is a replica's sync state.
type ReplicaStatus struct {
	Region         string `json:"region"`
	Edge           string `json:"edge"`
	AppliedSeq     uint64 `json:"applied_seq"`
	Pending        int    `json:"pending"`
	PendingUnacked int    `json:"pending_unacked"`
	OldestPending  int64  `json:"oldest_pending_ms,omitempty"` // unix ms
	Attention      int    `json:"attention"`
	NextSeq        uint64 `json:"next_seq"`
}

// Status reads the replica's sync state.
func (r *Replica) Status(ctx context.Context) (ReplicaStatus, error) {
	db, done := r.DB()
	defer done()
	s := ReplicaStatus{Region: r.cfg.Region, Edge: r.cfg.Edge}
	var applied, next int64
	var oldest sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT
	  coalesce((SELECT value FROM edge_meta WHERE key = 'applied_seq'), 0),
	  coalesce((SELECT value FROM edge_meta WHERE key = 'next_seq'), 1),
	  (SELECT count(*) FROM edge_pending),
	  (SELECT count(*) FROM edge_pending WHERE acked_seq = 0),
	  (SELECT min(created_at) FROM edge_pending),
	  (SELECT count(*) FROM edge_attention WHERE done_at = 0)`).
		Scan(&applied, &next, &s.Pending, &s.PendingUnacked, &oldest, &s.Attention)
	s.AppliedSeq, s.NextSeq, s.OldestPending = uint64(applied), uint64(next), oldest.Int64
	return s, err
}

// AppliedSeq is the hub sequence the replica has applied up to.
func (r *Replica) AppliedSeq(ctx context.Context) (uint64, error) {
	db, done := r.DB()
	defer done()
	v, err := metaInt(ctx, db, "applied_seq")
	return uint64(v), err
}

// PendingMutation is one outbox entry.
type PendingMutation struct {
	Seq         uint64          `json:"seq"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Raw         json.RawMessage `json:"-"`
	CreatedAt   int64           `json:"created_at"`
	LocalStatus string          `json:"local_status"`
	LocalReason string          `json:"local_reason,omitempty"`
	AckedSeq    uint64          `json:"acked_seq,omitempty"`
	AckStatus   string          `json:"ack_status,omitempty"`
}

// Pending lists outbox entries with seq >= from, oldest first, at most
// limit; unackedOnly leaves out those the hub has acknowledged.
func (r *Replica) Pending(ctx context.Context, from uint64, limit int, unackedOnly bool) ([]PendingMutation, error) {
	db, done := r.DB()
	defer done()
	return pendingIn(ctx, db, from, limit, unackedOnly)
}

func pendingIn(ctx context.Context, db *retail.DB, from uint64, limit int, unackedOnly bool) ([]PendingMutation, error) {
	q := "SELECT seq, id, type, raw, created_at, local_status, local_reason, acked_seq, ack_status FROM edge_pending WHERE seq >= ?"
	if unackedOnly {
		q += " AND acked_seq = 0 AND ack_status = ''"
	}
	rows, err := db.QueryContext(ctx, q+" ORDER BY seq LIMIT ?", int64(from), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PendingMutation
	for rows.Next() {
		var p PendingMutation
		var raw []byte
		if err := rows.Scan(&p.Seq, &p.ID, &p.Type, &raw, &p.CreatedAt, &p.LocalStatus, &p.LocalReason, &p.AckedSeq, &p.AckStatus); err != nil {
			return nil, err
		}
		p.Raw = raw
		out = append(out, p)
	}
	return out, rows.Err()
}

// Attention is something a person must look at: a request the hub
// rejected (rolled back here), a fact it flagged (applied, with its
// exceptions), or a mutation the hub could not read.
type Attention struct {
	ID         string             `json:"id"`
	Type       string             `json:"type"`
	Status     string             `json:"status"` // rejected, flagged, unreadable
	Code       string             `json:"code,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Exceptions []retail.Exception `json:"exceptions,omitempty"`
	At         int64              `json:"at"`
	DoneBy     string             `json:"done_by,omitempty"`
	DoneAt     int64              `json:"done_at,omitempty"`
}

// AttentionList lists the attention items, open ones only unless all.
func (r *Replica) AttentionList(ctx context.Context, all bool) ([]Attention, error) {
	db, done := r.DB()
	defer done()
	return attentionIn(ctx, db, all)
}

func attentionIn(ctx context.Context, db *retail.DB, all bool) ([]Attention, error) {
	q := "SELECT id, type, status, code, reason, exceptions, at, done_by, done_at FROM edge_attention"
	if !all {
		q += " WHERE done_at = 0"
	}
	rows, err := db.QueryContext(ctx, q+" ORDER BY at, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attention
	for rows.Next() {
		var a Attention
		var exc string
		if err := rows.Scan(&a.ID, &a.Type, &a.Status, &a.Code, &a.Reason, &exc, &a.At, &a.DoneBy, &a.DoneAt); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(exc), &a.Exceptions); err != nil {
			return nil, fmt.Errorf("attention %s: %w", a.ID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DismissAttention marks an item seen and dealt with by who.
func (r *Replica) DismissAttention(ctx context.Context, id, who string) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.db.Update(ctx, func(tx *retail.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE edge_attention SET done_by = ?, done_at = ? WHERE id = ? AND done_at = 0", who, time.Now().UnixMilli(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("attention %s: %w", id, os.ErrNotExist)
		}
		return nil
	})
}

// MarkAcked records the hub's acks: an acknowledged mutation is not sent
// again. It stays pending until the feed brings its changes. A mutation
// the hub could not read goes on the attention list and stays pending
// (later ones wait behind it: the hub applies an edge's mutations in
// order) until a hub that reads it takes it.
func (r *Replica) MarkAcked(ctx context.Context, results []AckResult) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.db.Update(ctx, func(tx *retail.Tx) error {
		for _, a := range results {
			if a.Err != "" {
				if _, err := tx.Exec(ctx, "UPDATE edge_pending SET ack_status = 'unreadable' WHERE id = ?", a.ID); err != nil {
					return err
				}
				if err := addAttention(ctx, tx, Attention{ID: a.ID, Status: "unreadable", Code: "unreadable", Reason: "the hub could not read this mutation (" + a.Err + "); it is kept and sent again after the hub is upgraded", At: time.Now().UnixMilli()}); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Exec(ctx, "UPDATE edge_pending SET acked_seq = ?, ack_status = ? WHERE id = ?", int64(a.Seq), string(a.Status), a.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

func addAttention(ctx context.Context, tx *retail.Tx, a Attention) error {
	if a.Type == "" {
		_ = tx.SQL().QueryRowContext(ctx, "SELECT type FROM edge_pending WHERE id = ?", a.ID).Scan(&a.Type)
	}
	exc, err := json.Marshal(a.Exceptions)
	if err != nil {
		return err
	}
	if a.Exceptions == nil {
		exc = []byte("[]")
	}
	_, err = tx.Exec(ctx, `INSERT INTO edge_attention (id, type, status, code, reason, exceptions, at) VALUES (?, ?, ?, ?, ?, ?, ?)
	  ON CONFLICT (id) DO UPDATE SET type = excluded.type, status = excluded.status, code = excluded.code, reason = excluded.reason, exceptions = excluded.exceptions`,
		a.ID, a.Type, a.Status, a.Code, a.Reason, string(exc), a.At)
	return err
}

// ApplyFeed applies change-log entries from the hub, strictly in order:
// entries at or below the applied sequence are skipped; an entry past the
// next one is ErrGap. It takes the pending mutations off, writes the
// hub's changes (server state wins), settles the pending mutations the
// hub has now applied (rejected and flagged ones go to the attention
// list), and — when reapply is set — applies the rest on top again. A
// catch-up of many batches passes reapply=false until the last.
// It returns how many entries it applied.
func (r *Replica) ApplyFeed(ctx context.Context, entries []Change, reapply bool) (int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	// Relaxed: the feed can be fetched again after a power cut (applied_seq
	// commits with it), and the next local write's commit fsyncs it all.
	err := r.db.UpdateRelaxed(ctx, func(tx *retail.Tx) error {
		applied, err := metaInt(ctx, tx.SQL(), "applied_seq")
		if err != nil {
			return err
		}
		i := 0
		for i < len(entries) && entries[i].Seq <= uint64(applied) {
			i++
		}
		entries = entries[i:]
		if len(entries) == 0 && !reapply {
			return nil
		}
		if len(entries) > 0 && entries[0].Seq != uint64(applied)+1 {
			return fmt.Errorf("%w: have %d, got %d", ErrGap, applied, entries[0].Seq)
		}
		if len(entries) > 0 {
			fast, err := r.disjoint(ctx, tx, entries)
			if err != nil {
				return err
			}
			if fast {
				// Nothing here touches a row the pending mutations wrote,
				// and none of them is settled: the undo log stays valid,
				// and the rows go in under the pending mutations' feet.
				if err := r.applyEntries(ctx, tx, entries); err != nil {
					return err
				}
				n = len(entries)
				if err := setMeta(ctx, tx, "applied_seq", int64(entries[len(entries)-1].Seq)); err != nil {
					return err
				}
				return r.skipUsedSeqs(ctx, tx, entries)
			}
			if err := r.undo(ctx, tx); err != nil {
				return err
			}
			if err := r.applyEntries(ctx, tx, entries); err != nil {
				return err
			}
			n = len(entries)
			if err := setMeta(ctx, tx, "applied_seq", int64(entries[len(entries)-1].Seq)); err != nil {
				return err
			}
			if err := r.skipUsedSeqs(ctx, tx, entries); err != nil {
				return err
			}
			if err := r.settle(ctx, tx); err != nil {
				return err
			}
		}
		if reapply {
			return r.ensureApplied(ctx, tx)
		}
		return nil
	})
	return n, err
}

// applyEntries writes the entries' row changes and advances the clock
// past their mutations. The caller holds the writer (tx), which guards
// r.applier.
func (r *Replica) applyEntries(ctx context.Context, tx *retail.Tx, entries []Change) error {
	if r.applier == nil {
		a, err := newFeedApplier(ctx, tx.SQL())
		if err != nil {
			return err
		}
		r.applier = a
	}
	if err := r.applier.apply(ctx, tx, entries); err != nil {
		return err
	}
	for _, e := range entries {
		r.observe(e)
	}
	return nil
}

// skipUsedSeqs moves the outbox sequence past any of this edge's
// mutations the hub already has but the outbox does not (an edge whose
// disk was replaced, starting again from an empty replica): a new sale
// must never reuse the id of an old one, or the hub would answer it as a
// duplicate and drop it.
func (r *Replica) skipUsedSeqs(ctx context.Context, tx *retail.Tx, entries []Change) error {
	var top uint64
	for _, e := range entries {
		id, err := retail.ParseMutationID(e.MutationID)
		if err == nil && id.Origin == r.cfg.Edge {
			top = max(top, id.Seq)
		}
	}
	if top == 0 {
		return nil
	}
	next, err := metaInt(ctx, tx.SQL(), "next_seq")
	if err != nil || uint64(next) > top {
		return err
	}
	r.log.Warn("the hub has mutations of this edge the replica did not know; skipping their sequence numbers", "next_seq", top+1)
	return setMeta(ctx, tx, "next_seq", int64(top+1))
}

// disjoint reports whether entries can be applied without taking the
// pending mutations off first: they are applied on top now, none of the
// entries is one of them, and no row an entry writes is one they wrote.
// Then the result is the same as undo, apply, redo — except that a
// pending mutation re-applied on the new rows might decide otherwise (a
// request now short of stock): that is the hub's to decide anyway, and the
// next rebase that touches it shows it. Most of the feed is other stores'
// changes, and this keeps its cost independent of the outbox.
func (r *Replica) disjoint(ctx context.Context, tx *retail.Tx, entries []Change) (bool, error) {
	on, err := metaInt(ctx, tx.SQL(), "pending_applied")
	if err != nil || on == 0 {
		return false, err // nothing on top: the plain path is as cheap
	}
	rows, err := tx.SQL().QueryContext(ctx, "SELECT id FROM edge_pending")
	if err != nil {
		return false, err
	}
	ours := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return false, err
		}
		ours[id] = true
	}
	rows.Close()
	if len(ours) == 0 {
		return false, rows.Err()
	}
	for _, e := range entries {
		if ours[e.MutationID] {
			return false, nil
		}
	}
	tables := tableIndex()
	written := map[string]bool{}
	urows, err := tx.SQL().QueryContext(ctx, "SELECT tbl, op, row FROM edge_undo")
	if err != nil {
		return false, err
	}
	for urows.Next() {
		var tbl, op, row string
		if err := urows.Scan(&tbl, &op, &row); err != nil {
			urows.Close()
			return false, err
		}
		vals, err := decodeRow(row)
		if err != nil {
			urows.Close()
			return false, err
		}
		t := tables[tbl]
		cols := t.Cols
		if op == "del" {
			cols = t.PK
		}
		written[rowKey(tbl, t.PK, cols, vals)] = true
	}
	urows.Close()
	if err := urows.Err(); err != nil {
		return false, err
	}
	for _, e := range entries {
		for _, c := range e.Changes {
			t, ok := tables[c.Table]
			if !ok || written[rowKey(c.Table, t.PK, c.Cols, c.Vals)] {
				return false, nil
			}
		}
	}
	return true, nil
}

// rowKey names a row by table and primary key, from a row's values in
// cols order.
func rowKey(table string, pk, cols []string, vals []any) string {
	var b strings.Builder
	b.WriteString(table)
	for _, k := range pk {
		b.WriteByte(0)
		if i := slices.Index(cols, k); i >= 0 && i < len(vals) {
			fmt.Fprintf(&b, "%T:%v", vals[i], vals[i])
		}
	}
	return b.String()
}

// observe advances the clock past the hub's mutation times.
func (r *Replica) observe(e Change) {
	for _, c := range e.Changes {
		if c.Table != "applied_mutations" || c.Op != retail.OpPut {
			continue
		}
		if i := slices.Index(c.Cols, "hlc"); i >= 0 && i < len(c.Vals) {
			if s, ok := c.Vals[i].(string); ok {
				if h, err := retail.ParseHLC(s); err == nil {
					r.clock.Observe(h)
				}
			}
		}
	}
}

// settle drops the pending mutations the hub has applied (their
// applied_mutations rows came with the feed) and puts the ones it
// rejected or flagged on the attention list. The pending mutations must
// be off (undo) when it runs.
func (r *Replica) settle(ctx context.Context, tx *retail.Tx) error {
	rows, err := tx.SQL().QueryContext(ctx, `SELECT p.seq, p.id, p.type, a.status, a.code, a.reason
	  FROM edge_pending p JOIN applied_mutations a ON a.id = p.id ORDER BY p.seq`)
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	var done []Attention
	var seqs []int64
	for rows.Next() {
		var a Attention
		var seq int64
		if err := rows.Scan(&seq, &a.ID, &a.Type, &a.Status, &a.Code, &a.Reason); err != nil {
			rows.Close()
			return fmt.Errorf("settle: %w", err)
		}
		seqs = append(seqs, seq)
		if a.Status != string(retail.StatusAccepted) {
			done = append(done, a)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	now := time.Now().UnixMilli()
	for _, a := range done {
		erows, err := tx.SQL().QueryContext(ctx, "SELECT id, kind, entity, detail, amount_cents FROM exceptions WHERE mutation_id = ? ORDER BY id", a.ID)
		if err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		for erows.Next() {
			var e retail.Exception
			if err := erows.Scan(&e.ID, &e.Kind, &e.Entity, &e.Detail, &e.AmountCents); err != nil {
				erows.Close()
				return fmt.Errorf("settle: %w", err)
			}
			a.Exceptions = append(a.Exceptions, e)
		}
		erows.Close()
		a.At = now
		if err := addAttention(ctx, tx, a); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		r.log.Warn("hub did not accept a mutation as written here", "id", a.ID, "type", a.Type, "status", a.Status, "code", a.Code, "reason", a.Reason)
	}
	for _, s := range seqs {
		if _, err := tx.Exec(ctx, "DELETE FROM edge_pending WHERE seq = ?", s); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
	}
	return nil
}

// Rebase re-applies the pending mutations if a catch-up left them off.
func (r *Replica) Rebase(ctx context.Context) error {
	_, err := r.ApplyFeed(ctx, nil, true)
	return err
}

// RegionChecksum is the checksum of the region's rows as the hub holds
// them: the pending mutations are taken off for the reading (and put back).
// Equal to the hub's region checksum at the same applied sequence.
func (r *Replica) RegionChecksum(ctx context.Context) (sum string, applied uint64, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return "", 0, err
	}
	defer tx.Rollback() // the undo is never committed
	if err := r.undo(ctx, tx); err != nil {
		return "", 0, err
	}
	a, err := metaInt(ctx, tx.SQL(), "applied_seq")
	if err != nil {
		return "", 0, err
	}
	sum, err = retail.RegionChecksum(ctx, tx.SQL())
	return sum, uint64(a), err
}
