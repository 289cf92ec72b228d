package hub

import (
	"context"
	"errors"
	"fmt"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
)

// The leader executes, the log carries effects.
//
// The leader runs retail.Apply for a batch of mutations on its own state,
// in a transaction it rolls back, and proposes what Apply wrote (each
// mutation's row changes, under the hub sequence it will have) as one
// effects entry. Every node, the leader too, applies that entry by
// writing the rows: a fraction of the work of running Apply again, on
// each of the three or five nodes. See DESIGN.md.
//
// An entry is only right on the state it was computed on. It carries
// that state's hub sequence (every mutation that changes the region
// takes one, so equal sequences mean equal regions); a node whose
// sequence differs when the entry comes to be applied applies nothing
// and answers stale, the same on every node, and the leader executes
// the batch again.

// effectsResult is the FSM's answer to an effects entry.
type effectsResult struct {
	// Stale: the entry was computed on another state than the one it
	// met (a leader change, or an entry committed in between); nothing
	// was applied.
	Stale bool
}

// execution is a batch executed on the leader's state: one result per
// mutation, and the effects entry to propose (nil when every mutation
// was a duplicate: then nothing needs committing).
type execution struct {
	results []MutationResult
	entry   []byte
	// pending is the executed transaction, still open, when execute was
	// asked to keep it (see pendingExec); nil otherwise.
	pending *pendingExec
}

// pendingExec is a batch the leader executed and did not roll back. If
// the next entry the FSM applies is that batch's effects entry, the FSM
// finishes and commits this transaction instead of writing the rows a
// second time. Anything else the FSM applies first rolls it back, and
// the entry, if it comes, is applied like any other. While it is open
// it holds the state's only writer, so nothing else can change the
// state it was executed on.
type pendingExec struct {
	tx      *retail.Tx
	entry   []byte
	base    uint64
	entries []replication.Change // the entry's, with their row changes' bytes
}

// takePending hands the pending execution, if any, to the caller, who
// must commit or roll it back.
func (f *FSM) takePending() *pendingExec {
	f.pendMu.Lock()
	defer f.pendMu.Unlock()
	p := f.pending
	f.pending = nil
	return p
}

// rollbackPending rolls back the pending execution, if any, before the
// state is closed or swapped; the caller holds f.mu, so no execute or
// ApplyBatch is running.
func (f *FSM) rollbackPending() {
	if p := f.takePending(); p != nil {
		p.tx.Rollback()
	}
}

// dropPending rolls p back unless the FSM has taken it.
func (f *FSM) dropPending(p *pendingExec) {
	if p == nil {
		return
	}
	// Under f.mu, so that Restore cannot swap the file between taking
	// p and rolling it back.
	f.mu.RLock()
	defer f.mu.RUnlock()
	f.pendMu.Lock()
	mine := f.pending == p
	if mine {
		f.pending = nil
	}
	f.pendMu.Unlock()
	if mine {
		p.tx.Rollback()
	}
}

// execute runs muts through retail.Apply on the current state, returning
// their results with the hub sequences their changes will be logged
// under once the entry commits. It rolls back, unless keep is set and
// there is an entry: then the transaction stays open as the FSM's
// pending execution (ex.pending), for the caller to drop once the
// entry's future is done.
func (f *FSM) execute(ctx context.Context, muts []retail.Mutation, keep bool) (ex execution, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return execution{}, errors.New("hub state is closed")
	}
	f.execMu.Lock()
	defer f.execMu.Unlock()
	if p := f.takePending(); p != nil {
		p.tx.Rollback() // an earlier batch's, never taken: cannot happen, but never hold the writer
	}
	// A kept transaction is finished by the FSM, which must not find it
	// ended by the caller's context.
	txCtx := ctx
	if keep {
		txCtx = context.WithoutCancel(ctx)
	}
	tx, err := f.db.Begin(txCtx)
	if err != nil {
		return execution{}, fmt.Errorf("execute: %w", err)
	}
	defer func() {
		if ex.pending == nil {
			tx.Rollback()
		}
	}()
	var base int64
	if err := tx.SQL().QueryRowContext(ctx, "SELECT coalesce((SELECT value FROM hub_meta WHERE key = 'hub_seq'), 0)").Scan(&base); err != nil {
		return execution{}, fmt.Errorf("execute: %w", err)
	}
	seq := uint64(base)
	ex = execution{results: make([]MutationResult, len(muts))}
	var entries []replication.Change
	for i, m := range muts {
		res, err := retail.Apply(ctx, tx, m)
		if err != nil {
			return execution{}, fmt.Errorf("execute %s: %w", m.ID, err)
		}
		changes := res.Changes
		res.Changes = nil
		ex.results[i] = MutationResult{Result: res}
		if res.Duplicate {
			continue
		}
		seq++
		ex.results[i].Seq = seq
		entries = append(entries, replication.Change{Seq: seq, MutationID: m.ID.String(), Status: res.Status, Changes: changes})
	}
	if len(entries) == 0 {
		return ex, nil
	}
	ex.entry = make([]byte, 1, 1024*len(entries)+64)
	ex.entry[0] = entryEffects
	if ex.entry, err = replication.AppendEffects(ex.entry, uint64(base), entries); err != nil {
		return execution{}, fmt.Errorf("execute: encode effects: %w", err)
	}
	if keep {
		ex.pending = &pendingExec{tx: tx, entry: ex.entry, base: uint64(base), entries: entries}
		f.pendMu.Lock()
		f.pending = ex.pending
		f.pendMu.Unlock()
	}
	return ex, nil
}

// applyEffects applies effects entry l inside ApplyBatch's transaction,
// on a state at hub sequence seq, having applied n mutations so far.
// written, when set, is the entry's own pending execution, tx: its rows
// are written already and its entries need no decoding. A database
// failure panics, as in ApplyBatch.
func (f *FSM) applyEffects(ctx context.Context, tx *retail.Tx, l *raft.Log, seq, n uint64, written *pendingExec) (effectsResult, uint64, uint64) {
	var base uint64
	var entries []replication.Change
	var err error
	if written != nil {
		base, entries = written.base, written.entries
	} else if base, entries, err = replication.DecodeEffects(l.Data[1:]); err != nil {
		panic(fmt.Sprintf("hub fsm: entry %d is not an effects entry: %v", l.Index, err))
	}
	if base != seq {
		if written != nil {
			// Its rows are in tx already: committing would apply them
			// on the wrong state. The writer was held since it was
			// executed, so only a bug gets here.
			panic(fmt.Sprintf("hub fsm: entry %d: the leader's own batch was executed at hub sequence %d, the state is at %d", l.Index, base, seq))
		}
		return effectsResult{Stale: true}, seq, n
	}
	for i, e := range entries {
		if e.Seq != base+1+uint64(i) {
			panic(fmt.Sprintf("hub fsm: entry %d: change %d has hub sequence %d, want %d", l.Index, i, e.Seq, base+1+uint64(i)))
		}
	}
	if f.rows == nil {
		if f.rows, err = replication.NewRowApplier(ctx, tx.SQL()); err != nil {
			panic(fmt.Sprintf("hub fsm: row applier: %v", err))
		}
	}
	if written == nil {
		if err := f.rows.Apply(ctx, tx, entries); err != nil {
			panic(fmt.Sprintf("hub fsm: entry %d: %v", l.Index, err))
		}
	}
	origins := map[string]uint64{}
	for _, e := range entries {
		raw, err := e.RawChanges()
		if err != nil {
			panic(fmt.Sprintf("hub fsm: entry %d: encode changes: %v", l.Index, err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO hub_changes (seq, mutation_id, status, changes) VALUES (?, ?, ?, ?)",
			int64(e.Seq), e.MutationID, string(e.Status), []byte(raw)); err != nil {
			panic(fmt.Sprintf("hub fsm: change log: %v", err))
		}
		id, err := retail.ParseMutationID(e.MutationID)
		if err != nil {
			panic(fmt.Sprintf("hub fsm: entry %d: %v", l.Index, err))
		}
		origins[id.Origin] = max(origins[id.Origin], id.Seq)
	}
	for origin, last := range origins {
		if _, err := tx.Exec(ctx, "INSERT INTO hub_origins (origin, last_seq) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
			origin, int64(last)); err != nil {
			panic(fmt.Sprintf("hub fsm: origins: %v", err))
		}
	}
	return effectsResult{}, entries[len(entries)-1].Seq, n + uint64(len(entries))
}
