package hub

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
)

// Log entry types: the first byte of every raft log entry's data.
const (
	entryMutations  byte = 1 // a JSON array of encoded mutations (group commit)
	entryMember     byte = 2 // a member's addresses, JSON
	entryMemberGone byte = 3 // a member removed, JSON (only the id is read)
	entryEffects    byte = 4 // mutations the leader executed: their row changes (replication.EncodeEffects)
)

// hubSchema is the hub's own tables, beside the region's in the same file,
// so they commit in the same transaction as the mutations they describe.
const hubSchema = `
CREATE TABLE IF NOT EXISTS hub_meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS hub_changes (
  seq         INTEGER PRIMARY KEY,
  mutation_id TEXT NOT NULL,
  status      TEXT NOT NULL,
  changes     BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS hub_origins (
  origin   TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS hub_members (
  id        TEXT PRIMARY KEY,
  raft_addr TEXT NOT NULL,
  http_addr TEXT NOT NULL
) STRICT;
`

// Member is a hub node's addresses, replicated so any node can find the
// leader's HTTP API.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// MutationResult is the hub's answer for one mutation: the domain result
// (without its row changes) and the hub sequence its changes were logged
// under (0 for a duplicate: its changes were logged the first time).
type MutationResult struct {
	retail.Result
	Seq uint64 `json:"seq,omitempty"`
	// Err is set when the mutation could not be applied at all (it did not
	// decode); nothing was recorded for it.
	Err string `json:"error,omitempty"`
}

// Change is one entry of the change log: a mutation's row changes under
// its hub sequence number, as the feed carries it.
type Change = replication.Change

// FSM is the raft state machine. Its state is one SQLite file; it records
// the last raft index it applied inside that file, in the same transaction
// as the entry's effects, so an entry is applied exactly once even when
// raft replays its log after a restart.
type FSM struct {
	dir    string // holds state.db
	log    *slog.Logger
	retain uint64 // change-log entries kept; 0 keeps all

	mu sync.RWMutex // guards db against Restore's swap
	db *retail.DB

	appliedIndex atomic.Uint64
	hubSeq       atomic.Uint64
	seqMu        sync.Mutex
	seqCh        chan struct{} // closed when hubSeq moves; then replaced
	applied      atomic.Uint64 // mutations applied since start, for metrics

	rows *replication.RowApplier // writes effects entries; made on first use, under the writer

	// execMu orders execute against the FSM's own transactions: execute
	// holds it from its begin until its batch is pending, and the FSM
	// holds it from taking the pending batch until its own begin. So
	// the FSM never waits for the writer of a batch it cannot see.
	execMu  sync.Mutex
	pendMu  sync.Mutex
	pending *pendingExec // the leader's executed batch, open (effects.go)
}

// FSMConfig configures an FSM.
type FSMConfig struct {
	Dir    string
	Logger *slog.Logger // nil: discard
	// RetainChanges is how many change-log entries are kept for edges to
	// catch up from; older ones are deleted. 0 keeps them all.
	RetainChanges uint64
}

// OpenFSM opens (or creates) the state database in cfg.Dir. A corrupt file
// is an error, never replaced.
func OpenFSM(ctx context.Context, cfg FSMConfig) (*FSM, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	f := &FSM{dir: cfg.Dir, log: cfg.Logger, retain: cfg.RetainChanges}
	if err := f.open(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FSM) path() string { return filepath.Join(f.dir, "state.db") }

func (f *FSM) open(ctx context.Context) error {
	// NORMAL durability: the raft log is the durable record; after a power
	// cut the FSM replays the entries past the index stored in the file.
	// Checkpoints run in the background, off the commit path: the leader
	// executes and commits one batch at a time, so a checkpoint inside a
	// commit (SQLite's default, every 1,000 pages) would hold up every
	// write behind it.
	db, err := retail.Open(ctx, f.path(), retail.Options{Durability: retail.DurabilityNormal, Checkpoint: retail.CheckpointBackground})
	if err != nil {
		return fmt.Errorf("hub state: %w", err)
	}
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
		db.Close()
		return fmt.Errorf("hub state %s is damaged (quick_check: %q, %v); restore it from a snapshot or wipe the node and let it rejoin", f.path(), check, err)
	}
	if _, err := db.ExecContext(ctx, hubSchema); err != nil {
		db.Close()
		return fmt.Errorf("hub state schema: %w", err)
	}
	// The stored index and sequence decide what is replayed and which
	// effects entries are stale: never guess them.
	var idx, seq int64
	if err := db.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM hub_meta WHERE key = 'applied_index'), 0), coalesce((SELECT value FROM hub_meta WHERE key = 'hub_seq'), 0)").Scan(&idx, &seq); err != nil {
		db.Close()
		return fmt.Errorf("hub state %s: read the applied index: %w", f.path(), err)
	}
	f.db = db
	f.appliedIndex.Store(uint64(idx))
	f.setHubSeq(uint64(seq))
	return nil
}

// Close closes the state database.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbackPending()
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}

// AppliedIndex is the last raft index applied to the state.
func (f *FSM) AppliedIndex() uint64 { return f.appliedIndex.Load() }

// HubSeq is the last hub sequence number assigned.
func (f *FSM) HubSeq() uint64 { return f.hubSeq.Load() }

// MutationsApplied counts mutations applied since the FSM was opened.
func (f *FSM) MutationsApplied() uint64 { return f.applied.Load() }

// DB returns the state database for reads, and a function to call when
// done (Restore waits for readers before it swaps the file).
func (f *FSM) DB() (*retail.DB, func()) {
	f.mu.RLock()
	return f.db, f.mu.RUnlock
}

// Apply applies one log entry. It is here for raft.FSM; raft calls
// ApplyBatch, which does the work.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed log entries in one SQLite transaction. An
// entry at or below the index stored in the database was applied before
// (raft replays its log after a restart) and is skipped. The response for
// a mutations entry is []MutationResult; for others, nil. A database
// failure stops the node: carrying on would let replicas diverge.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	f.mu.RLock()
	defer f.mu.RUnlock()
	ctx := context.Background()
	seq := f.hubSeq.Load()
	last := f.appliedIndex.Load()
	// The leader's pending execution is used when the first new entry is
	// its effects entry; otherwise it is rolled back before anything else
	// is written (it holds the only writer).
	var tx *retail.Tx
	var written *pendingExec
	writtenAt := -1
	f.execMu.Lock()
	if p := f.takePending(); p != nil {
		first := slices.IndexFunc(logs, func(l *raft.Log) bool { return l.Index > last })
		if first >= 0 && logs[first].Type == raft.LogCommand && bytes.Equal(logs[first].Data, p.entry) {
			tx, written, writtenAt = p.tx, p, first
		} else {
			p.tx.Rollback()
		}
	}
	if tx == nil {
		var err error
		if tx, err = f.db.Begin(ctx); err != nil {
			panic(fmt.Sprintf("hub fsm: begin: %v", err))
		}
	}
	f.execMu.Unlock()
	defer tx.Rollback()
	n := uint64(0)
	for i, l := range logs {
		if l.Index <= last {
			continue
		}
		last = l.Index
		if l.Type != raft.LogCommand || len(l.Data) == 0 {
			continue
		}
		switch l.Data[0] {
		case entryMutations:
			var raws []json.RawMessage
			if err := json.Unmarshal(l.Data[1:], &raws); err != nil {
				panic(fmt.Sprintf("hub fsm: entry %d is not a mutation batch: %v", l.Index, err))
			}
			results := make([]MutationResult, len(raws))
			for j, raw := range raws {
				results[j], seq = f.applyOne(ctx, tx, raw, seq)
				n++
			}
			resp[i] = results
		case entryEffects:
			var r effectsResult
			var w *pendingExec
			if i == writtenAt {
				w = written
			}
			r, seq, n = f.applyEffects(ctx, tx, l, seq, n, w)
			resp[i] = r
		case entryMember:
			var m Member
			if err := json.Unmarshal(l.Data[1:], &m); err != nil {
				panic(fmt.Sprintf("hub fsm: entry %d is not a member: %v", l.Index, err))
			}
			if _, err := tx.Exec(ctx, "INSERT INTO hub_members (id, raft_addr, http_addr) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET raft_addr = excluded.raft_addr, http_addr = excluded.http_addr",
				m.ID, m.RaftAddr, m.HTTPAddr); err != nil {
				panic(fmt.Sprintf("hub fsm: member: %v", err))
			}
		case entryMemberGone:
			var m Member
			if err := json.Unmarshal(l.Data[1:], &m); err != nil {
				panic(fmt.Sprintf("hub fsm: entry %d is not a member: %v", l.Index, err))
			}
			if _, err := tx.Exec(ctx, "DELETE FROM hub_members WHERE id = ?", m.ID); err != nil {
				panic(fmt.Sprintf("hub fsm: member gone: %v", err))
			}
		default:
			// An entry type this version does not know: stop rather than
			// let this node's state differ from its peers'.
			panic(fmt.Sprintf("hub fsm: entry %d has unknown type %d; upgrade this node", l.Index, l.Data[0]))
		}
	}
	if last == f.appliedIndex.Load() {
		return resp
	}
	if f.retain > 0 && seq > f.retain {
		if _, err := tx.Exec(ctx, "DELETE FROM hub_changes WHERE seq <= ?", seq-f.retain); err != nil {
			panic(fmt.Sprintf("hub fsm: compact change log: %v", err))
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO hub_meta (key, value) VALUES ('applied_index', ?), ('hub_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		int64(last), int64(seq)); err != nil {
		panic(fmt.Sprintf("hub fsm: meta: %v", err))
	}
	if err := tx.Commit(); err != nil {
		panic(fmt.Sprintf("hub fsm: commit: %v", err))
	}
	f.appliedIndex.Store(last)
	f.setHubSeq(seq)
	f.applied.Add(n)
	return resp
}

func (f *FSM) applyOne(ctx context.Context, tx *retail.Tx, raw []byte, seq uint64) (MutationResult, uint64) {
	m, err := retail.Decode(raw)
	if errors.Is(err, retail.ErrUnknownVersion) || errors.Is(err, retail.ErrUnknownType) {
		panic(fmt.Sprintf("hub fsm: %v; upgrade this node", err))
	}
	if err != nil {
		// The leader decodes before it proposes, so only a bug gets here;
		// the same bytes fail the same way on every node.
		return MutationResult{Err: err.Error()}, seq
	}
	res, err := retail.Apply(ctx, tx, m)
	if err != nil {
		panic(fmt.Sprintf("hub fsm: apply %s: %v", m.ID, err))
	}
	out := MutationResult{Result: res}
	out.Changes = nil
	if res.Duplicate {
		return out, seq
	}
	seq++
	changes, err := json.Marshal(res.Changes)
	if err != nil {
		panic(fmt.Sprintf("hub fsm: encode changes: %v", err))
	}
	if _, err := tx.Exec(ctx, "INSERT INTO hub_changes (seq, mutation_id, status, changes) VALUES (?, ?, ?, ?)",
		int64(seq), m.ID.String(), string(res.Status), changes); err != nil {
		panic(fmt.Sprintf("hub fsm: change log: %v", err))
	}
	if _, err := tx.Exec(ctx, "INSERT INTO hub_origins (origin, last_seq) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
		m.ID.Origin, int64(m.ID.Seq)); err != nil {
		panic(fmt.Sprintf("hub fsm: origins: %v", err))
	}
	out.Seq = seq
	return out, seq
}

// setHubSeq publishes a new hub sequence and wakes WaitSeq callers.
func (f *FSM) setHubSeq(seq uint64) {
	f.hubSeq.Store(seq)
	f.seqMu.Lock()
	if f.seqCh != nil {
		close(f.seqCh)
		f.seqCh = nil
	}
	f.seqMu.Unlock()
}

// WaitSeq blocks until the hub sequence passes after, or ctx ends.
func (f *FSM) WaitSeq(ctx context.Context, after uint64) {
	for f.hubSeq.Load() <= after {
		f.seqMu.Lock()
		if f.seqCh == nil {
			f.seqCh = make(chan struct{})
		}
		ch := f.seqCh
		f.seqMu.Unlock()
		if f.hubSeq.Load() > after {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// OriginSeq is the highest sequence of origin's mutations applied: an
// edge's mutations are applied in its outbox order, so every lower one
// is applied too.
func (f *FSM) OriginSeq(ctx context.Context, origin string) (uint64, error) {
	db, done := f.DB()
	defer done()
	var seq int64
	err := db.QueryRowContext(ctx, "SELECT coalesce((SELECT last_seq FROM hub_origins WHERE origin = ?), 0)", origin).Scan(&seq)
	return uint64(seq), err
}

// Changes reads up to limit change-log entries with seq >= from. It
// returns ErrCompacted when from is below the oldest retained entry.
func (f *FSM) Changes(ctx context.Context, from uint64, limit int) ([]Change, error) {
	return f.changes(ctx, from, limit, false)
}

func (f *FSM) changes(ctx context.Context, from uint64, limit int, raw bool) ([]Change, error) {
	db, done := f.DB()
	defer done()
	if from > 1 {
		var oldest sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT min(seq) FROM hub_changes").Scan(&oldest); err != nil {
			return nil, err
		}
		if oldest.Valid && uint64(oldest.Int64) > from {
			return nil, &replication.CompactedError{Oldest: uint64(oldest.Int64)}
		}
		if !oldest.Valid && f.HubSeq() >= from {
			return nil, &replication.CompactedError{Oldest: f.HubSeq() + 1}
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT seq, mutation_id, status, changes FROM hub_changes WHERE seq >= ? ORDER BY seq LIMIT ?", int64(from), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		var data []byte
		if err := rows.Scan(&c.Seq, &c.MutationID, &c.Status, &data); err != nil {
			return nil, err
		}
		if raw {
			out = append(out, replication.RawChange(c.Seq, c.MutationID, c.Status, data))
			continue
		}
		if err := json.Unmarshal(data, &c.Changes); err != nil {
			return nil, fmt.Errorf("change %d: %w", c.Seq, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ChangesRaw is Changes with each entry's row changes left as the JSON
// stored in the change log, for publishing as they are.
func (f *FSM) ChangesRaw(ctx context.Context, from uint64, limit int) ([]Change, error) {
	return f.changes(ctx, from, limit, true)
}

// ErrCompacted: the change log no longer holds the range asked for; the
// edge must bootstrap from a snapshot.
var ErrCompacted = replication.ErrCompacted

// Members lists the replicated member addresses.
func (f *FSM) Members(ctx context.Context) (map[string]Member, error) {
	db, done := f.DB()
	defer done()
	rows, err := db.QueryContext(ctx, "SELECT id, raft_addr, http_addr FROM hub_members")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Member{}
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.ID, &m.RaftAddr, &m.HTTPAddr); err != nil {
			return nil, err
		}
		out[m.ID] = m
	}
	return out, rows.Err()
}

var _ raft.BatchingFSM = (*FSM)(nil)

// Checksum is retail.Checksum of the state, with the applied index it was
// taken at. Both are read in one SQLite read transaction, so they agree
// while writes go on (WAL: the read sees one consistent state).
func (f *FSM) Checksum(ctx context.Context) (ChecksumResponse, error) {
	db, done := f.DB()
	defer done()
	conn, err := db.Conn(ctx)
	if err != nil {
		return ChecksumResponse{}, err
	}
	defer conn.Close()
	// A deferred BEGIN takes no write lock; the first read fixes the view.
	if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return ChecksumResponse{}, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	var idx, seq int64
	if err := conn.QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM hub_meta WHERE key = 'applied_index'), 0), coalesce((SELECT value FROM hub_meta WHERE key = 'hub_seq'), 0)").Scan(&idx, &seq); err != nil {
		return ChecksumResponse{}, err
	}
	sum, err := retail.Checksum(ctx, conn)
	if err != nil {
		return ChecksumResponse{}, err
	}
	region, err := retail.RegionChecksum(ctx, conn)
	return ChecksumResponse{AppliedIndex: uint64(idx), HubSeq: uint64(seq), Checksum: sum, RegionChecksum: region}, err
}
