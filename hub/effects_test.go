package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/endcap/endcap/retail"
	"github.com/endcap/endcap/retail/demodata"
	"github.com/hashicorp/raft"
)

// effectsRegion is a small region's mutations in three batches: set-up,
// then sales with an oversell (flagged), a sale of an unknown product
// (rejected), a mutation twice in one batch and one again in the next.
func effectsRegion(t *testing.T) [][]json.RawMessage {
	seq := uint64(0)
	next := func(b retail.Body) json.RawMessage { seq++; return encode(t, seq, b) }
	var setup []json.RawMessage
	setup = append(setup, next(&retail.UpsertStore{ID: "S1", Kind: retail.KindStore, Name: "Main St", Region: "west"}))
	for i := range 5 {
		sku := fmt.Sprintf("SKU-%d", i)
		setup = append(setup, next(&retail.UpsertProduct{SKU: sku, Name: sku, Category: "c", PriceCents: 1000, Active: true}),
			next(&retail.AdjustStock{Location: "S1", SKU: sku, Delta: 4, Reason: "received"}))
	}
	sale := func(n int, sku string, qty int64) json.RawMessage {
		o := retail.Order{ID: fmt.Sprintf("o%d", n), Channel: retail.ChannelStore, StoreID: "S1", Fulfilment: retail.CarryOut,
			Lines:   []retail.Line{{SKU: sku, Qty: qty, UnitPriceCents: 1000}, {SKU: "SKU-1", Qty: 1, UnitPriceCents: 1000}},
			Tenders: []retail.Tender{{Kind: retail.TenderCash, AmountCents: 1000 * (retail.Cents(qty) + 1)}}}
		return next(&retail.RecordSale{Order: o})
	}
	s1, s2 := sale(1, "SKU-0", 1), sale(2, "SKU-2", 9) // 9 of 4 in stock: flagged
	unknown := sale(3, "SKU-404", 1)                   // rejected
	return [][]json.RawMessage{setup, {s1, s2, unknown, s1}, {s2, sale(4, "SKU-3", 2)}}
}

// newFSM opens a state in a temp dir, closed when the test ends.
func newFSM(t *testing.T) *FSM {
	t.Helper()
	f, err := OpenFSM(context.Background(), FSMConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func decodeAll(t *testing.T, raws []json.RawMessage) []retail.Mutation {
	t.Helper()
	out := make([]retail.Mutation, len(raws))
	for i, raw := range raws {
		m, err := retail.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out
}

// The effects path gives every node the state and change log that
// running Apply on every node gave, byte for byte, and the same answers.
func TestEffectsEqualApplyingOnEveryNode(t *testing.T) {
	ctx := context.Background()
	apply, leader, follower := newFSM(t), newFSM(t), newFSM(t)
	statuses := map[retail.Status]int{}
	dups := 0
	for i, batch := range effectsRegion(t) {
		data, _ := json.Marshal(batch)
		index := uint64(i + 1)
		want := apply.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: append([]byte{entryMutations}, data...)}})[0].([]MutationResult)
		// The leader keeps its executed transaction and commits it when
		// the entry comes back; the follower writes the rows.
		ex, err := leader.execute(ctx, decodeAll(t, batch), true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ex.results, want) {
			t.Fatalf("batch %d: executed results\n%+v\nwant\n%+v", i, ex.results, want)
		}
		for _, r := range want {
			statuses[r.Status]++
			if r.Duplicate {
				dups++
			}
		}
		entry := &raft.Log{Index: index, Type: raft.LogCommand, Data: ex.entry}
		if ex.pending == nil {
			t.Fatalf("batch %d: nothing pending", i)
		}
		for _, f := range []*FSM{leader, follower} {
			if r := f.ApplyBatch([]*raft.Log{entry})[0]; r != (effectsResult{}) {
				t.Fatalf("batch %d: effects answered %+v", i, r)
			}
		}
		if leader.takePending() != nil {
			t.Fatalf("batch %d: the leader's pending execution was not used", i)
		}
	}
	if statuses[retail.StatusFlagged] == 0 || statuses[retail.StatusRejected] == 0 || dups != 2 {
		t.Fatalf("the region does not exercise every outcome: %v, %d duplicates", statuses, dups)
	}
	want, err := apply.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*FSM{"leader": leader, "follower": follower} {
		got, err := f.Checksum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: state %+v, want %+v", name, got, want)
		}
	}
}

// An effects entry that meets another state than it was executed on
// applies nothing and says so; executed again, it applies. A batch of
// duplicates only needs no entry.
func TestStaleEffectsApplyNothing(t *testing.T) {
	ctx := context.Background()
	f := newFSM(t)
	a, b := stores(t, 1, 2), stores(t, 3, 1)
	exA, err := f.execute(ctx, decodeAll(t, a), false)
	if err != nil {
		t.Fatal(err)
	}
	exB, err := f.execute(ctx, decodeAll(t, b), false) // on the same state: will be stale
	if err != nil {
		t.Fatal(err)
	}
	log := func(index uint64, data []byte) *raft.Log {
		return &raft.Log{Index: index, Type: raft.LogCommand, Data: data}
	}
	if r := f.ApplyBatch([]*raft.Log{log(1, exA.entry)})[0]; r != (effectsResult{}) {
		t.Fatalf("first entry: %+v", r)
	}
	before, _ := f.Checksum(ctx)
	if r := f.ApplyBatch([]*raft.Log{log(2, exB.entry)})[0]; r != (effectsResult{Stale: true}) {
		t.Fatalf("stale entry answered %+v", r)
	}
	after, _ := f.Checksum(ctx)
	if after.RegionChecksum != before.RegionChecksum || f.HubSeq() != 2 || f.AppliedIndex() != 2 {
		t.Fatalf("a stale entry changed the state: seq %d, index %d", f.HubSeq(), f.AppliedIndex())
	}
	exB, err = f.execute(ctx, decodeAll(t, b), false)
	if err != nil || exB.results[0].Seq != 3 {
		t.Fatalf("executed again: %+v, %v", exB.results, err)
	}
	if r := f.ApplyBatch([]*raft.Log{log(3, exB.entry)})[0]; r != (effectsResult{}) || f.HubSeq() != 3 {
		t.Fatalf("executed again: %+v, seq %d", r, f.HubSeq())
	}
	dup, err := f.execute(ctx, decodeAll(t, append(a, b...)), false)
	if err != nil || dup.entry != nil {
		t.Fatalf("duplicates only: entry %d bytes, %v", len(dup.entry), err)
	}
	for i, r := range dup.results {
		if !r.Duplicate || r.Status != retail.StatusAccepted || r.Seq != 0 {
			t.Errorf("duplicate %d answered %+v", i, r)
		}
	}
}

// The leader's executed transaction is used only when its entry is the
// next one applied: an entry committed before it (here a member record)
// rolls it back, and the effects entry is then applied by writing its
// rows. Dropping a pending execution the FSM took does nothing.
func TestPendingExecutionGivesWayToEarlierEntries(t *testing.T) {
	ctx := context.Background()
	f := newFSM(t)
	ex, err := f.execute(ctx, decodeAll(t, stores(t, 1, 3)), true)
	if err != nil || ex.pending == nil {
		t.Fatalf("execute: %v, pending %v", err, ex.pending)
	}
	member, _ := json.Marshal(Member{ID: "h2", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"})
	resp := f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: append([]byte{entryMember}, member...)},
		{Index: 2, Type: raft.LogCommand, Data: ex.entry},
	})
	if resp[1] != (effectsResult{}) || f.HubSeq() != 3 {
		t.Fatalf("effects after a member entry: %+v, seq %d", resp[1], f.HubSeq())
	}
	f.dropPending(ex.pending) // taken and rolled back by the FSM: nothing to do
	ms, err := f.Members(ctx)
	if err != nil || len(ms) != 1 {
		t.Fatalf("members %v, %v", ms, err)
	}
	db, done := f.DB()
	defer done()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM stores").Scan(&n); err != nil || n != 3 {
		t.Fatalf("stores: %d, %v", n, err)
	}
	// A pending execution whose entry never comes is dropped, and the
	// writer is free again.
	ex, err = f.execute(ctx, decodeAll(t, stores(t, 4, 1)), true)
	if err != nil {
		t.Fatal(err)
	}
	f.dropPending(ex.pending)
	ex2, err := f.execute(ctx, decodeAll(t, stores(t, 4, 1)), false)
	if err != nil || ex2.results[0].Seq != 4 {
		t.Fatalf("after a drop: %+v, %v", ex2.results, err)
	}
}

// An entry the FSM applies while the leader executes (a member record
// committed meanwhile) neither waits forever for the executed batch's
// writer nor loses the batch: the batch's entry still applies.
func TestApplyWhileExecuting(t *testing.T) {
	ctx := context.Background()
	f := newFSM(t)
	index := uint64(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			member, _ := json.Marshal(Member{ID: fmt.Sprintf("h%d", i), RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2"})
			applied := make(chan struct{})
			go func() {
				defer close(applied)
				f.ApplyBatch([]*raft.Log{{Index: 2*uint64(i) + 1, Type: raft.LogCommand, Data: append([]byte{entryMember}, member...)}})
			}()
			ex, err := f.execute(ctx, decodeAll(t, stores(t, i+1, 1)), true)
			<-applied
			if err != nil {
				t.Error(err)
				return
			}
			index = 2*uint64(i) + 2
			if r := f.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: ex.entry}})[0]; r != (effectsResult{}) {
				// Executed before the member entry's transaction: still the
				// same region, so never stale.
				t.Errorf("round %d: %+v", i, r)
				return
			}
			f.dropPending(ex.pending)
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock: the FSM waits for the executed batch's writer")
	}
	if f.HubSeq() != 40 || f.AppliedIndex() != index {
		t.Fatalf("seq %d, index %d", f.HubSeq(), f.AppliedIndex())
	}
}

// The demo region (every mutation type, rejections, flags, returns,
// coupons) committed through effects entries gives the leader and a
// follower the state that applying every mutation on each node gave.
func TestEffectsOnTheDemoRegion(t *testing.T) {
	ctx := context.Background()
	src, err := retail.Open(ctx, filepath.Join(t.TempDir(), "src.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var muts []retail.Mutation
	if _, err := demodata.Generate(ctx, src, demodata.Config{Customers: 60, Stores: 2, Products: 30, BatchSize: 100,
		OnMutation: func(m retail.Mutation) { muts = append(muts, m) }}, nil); err != nil {
		t.Fatal(err)
	}
	apply, leader, follower := newFSM(t), newFSM(t), newFSM(t)
	index := uint64(0)
	for from := 0; from < len(muts); from += 97 {
		batch := muts[from:min(from+97, len(muts))]
		raws := make([]json.RawMessage, len(batch))
		for i, m := range batch {
			if raws[i], err = retail.Encode(m); err != nil {
				t.Fatal(err)
			}
		}
		index++
		data, _ := json.Marshal(raws)
		apply.ApplyBatch([]*raft.Log{{Index: index, Type: raft.LogCommand, Data: append([]byte{entryMutations}, data...)}})
		ex, err := leader.execute(ctx, decodeAll(t, raws), index%2 == 0) // both ways of finishing the leader's batch
		if err != nil {
			t.Fatal(err)
		}
		entry := &raft.Log{Index: index, Type: raft.LogCommand, Data: ex.entry}
		for _, f := range []*FSM{leader, follower} {
			if r := f.ApplyBatch([]*raft.Log{entry})[0]; r != (effectsResult{}) {
				t.Fatalf("batch at %d: %+v", from, r)
			}
		}
	}
	want, err := apply.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*FSM{"leader": leader, "follower": follower} {
		if got, err := f.Checksum(ctx); err != nil || got != want {
			t.Errorf("%s: %+v (%v), want %+v", name, got, err, want)
		}
	}
	t.Logf("%d mutations, hub sequence %d", len(muts), apply.HubSeq())
}

// A snapshot installed while the leader's executed batch is pending
// rolls the batch back first: the new file is swapped in with no
// transaction open on the old one, and the batch's late drop does
// nothing.
func TestRestoreWithAPendingExecution(t *testing.T) {
	ctx := context.Background()
	src := newFSM(t)
	data, _ := json.Marshal(stores(t, 1, 5))
	src.ApplyBatch([]*raft.Log{{Index: 9, Type: raft.LogCommand, Data: append([]byte{entryMutations}, data...)}})
	var snap bytes.Buffer
	if _, err := src.WriteSnapshot(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	f := newFSM(t)
	ex, err := f.execute(ctx, decodeAll(t, stores(t, 100, 2)), true)
	if err != nil || ex.pending == nil {
		t.Fatalf("execute: %v", err)
	}
	if err := f.Restore(io.NopCloser(&snap)); err != nil {
		t.Fatal(err)
	}
	f.dropPending(ex.pending)
	want, _ := src.Checksum(ctx)
	got, err := f.Checksum(ctx)
	if err != nil || got != want || f.HubSeq() != 5 || f.AppliedIndex() != 9 {
		t.Fatalf("after restore: %+v (%v), want %+v", got, err, want)
	}
	// The writer is free: the next batch executes on the restored state.
	if ex, err = f.execute(ctx, decodeAll(t, stores(t, 100, 1)), false); err != nil || ex.results[0].Seq != 6 {
		t.Fatalf("after restore: %+v, %v", ex.results, err)
	}
}

// The FSM finishes the leader's kept transaction even when the context
// the batch was executed under has ended since.
func TestPendingExecutionOutlivesItsContext(t *testing.T) {
	f := newFSM(t)
	ctx, cancel := context.WithCancel(context.Background())
	ex, err := f.execute(ctx, decodeAll(t, stores(t, 1, 2)), true)
	if err != nil || ex.pending == nil {
		t.Fatalf("execute: %v", err)
	}
	cancel()
	if r := f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: ex.entry}})[0]; r != (effectsResult{}) || f.HubSeq() != 2 {
		t.Fatalf("applied %+v, seq %d", r, f.HubSeq())
	}
	if f.takePending() != nil {
		t.Fatal("the pending execution was not used")
	}
}
