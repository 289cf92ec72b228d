package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/retail"
)

// miniHub is the hub's state machine without raft: a real region database
// that applies mutations in arrival order and keeps the change log.
type miniHub struct {
	t   testing.TB
	db  *retail.DB
	log []Change
	seq uint64
}

func newMiniHub(t testing.TB) *miniHub {
	t.Helper()
	db, err := retail.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"), retail.Options{Durability: retail.DurabilityNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := &miniHub{t: t, db: db}
	for _, b := range scenario.Seed() {
		h.seq++
		raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "seed", Seq: h.seq}, HLC: retail.HLC{Wall: scenario.T0.UnixMilli()}, Actor: scenario.System, Body: b})
		if err != nil {
			t.Fatal(err)
		}
		if r := h.apply(raw); r.Status != retail.StatusAccepted {
			t.Fatalf("seed %s: %+v", b.Type(), r)
		}
	}
	return h
}

// apply applies one encoded mutation and logs its changes.
func (h *miniHub) apply(raw []byte) retail.Result {
	h.t.Helper()
	m, err := retail.Decode(raw)
	if err != nil {
		h.t.Fatal(err)
	}
	var res retail.Result
	err = h.db.Update(context.Background(), func(tx *retail.Tx) error {
		res, err = retail.Apply(context.Background(), tx, m)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if !res.Duplicate {
		h.log = append(h.log, Change{Seq: uint64(len(h.log) + 1), MutationID: m.ID.String(), Status: res.Status, Changes: res.Changes})
	}
	return res
}

// upload applies every unacked pending mutation of r.
func (h *miniHub) upload(r *Replica) []retail.Result {
	h.t.Helper()
	ps, err := r.Pending(context.Background(), 0, 1000, true)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []retail.Result
	var acks []AckResult
	for _, p := range ps {
		res := h.apply(p.Raw)
		out = append(out, res)
		acks = append(acks, AckResult{ID: p.ID, Status: res.Status, Seq: uint64(len(h.log))})
	}
	if err := r.MarkAcked(context.Background(), acks); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *miniHub) checksum() string {
	h.t.Helper()
	sum, err := retail.RegionChecksum(context.Background(), h.db)
	if err != nil {
		h.t.Fatal(err)
	}
	return sum
}

func openReplica(t testing.TB, edge string) *Replica {
	t.Helper()
	r, err := OpenReplica(context.Background(), ReplicaConfig{Path: filepath.Join(t.TempDir(), edge+".db"), Region: "test", Edge: edge})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// follow applies the hub's whole log to r (in chunks, the way a catch-up
// arrives) and re-applies its pending mutations at the end.
func follow(t testing.TB, r *Replica, h *miniHub) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(h.log); i += 7 {
		if _, err := r.ApplyFeed(ctx, h.log[i:min(i+7, len(h.log))], false); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Rebase(ctx); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, r *Replica, b retail.Body) retail.Result {
	t.Helper()
	res, err := r.Write(context.Background(), scenario.Clerk("S1"), b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func assertConverged(t testing.TB, h *miniHub, rs ...*Replica) {
	t.Helper()
	want := h.checksum()
	for _, r := range rs {
		st, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != 0 {
			t.Errorf("%s: %d mutations still pending", r.Edge(), st.Pending)
		}
		if st.AppliedSeq != uint64(len(h.log)) {
			t.Errorf("%s: applied %d of %d", r.Edge(), st.AppliedSeq, len(h.log))
		}
		got, _, err := r.RegionChecksum(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: region checksum %s, hub %s", r.Edge(), got, want)
		}
	}
}

func countRows(t testing.TB, r *Replica, query string, args ...any) int {
	t.Helper()
	db, done := r.DB()
	defer done()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Two stores offline at once: the same coupon, the same order line
// returned, the last unit reserved. The hub decides; the loser's request
// is rolled back and its facts flagged, all on its attention list; both
// replicas end equal to the hub with nothing pending.
func TestReplicaConflictsSettleAsTheHubDecides(t *testing.T) {
	ctx := context.Background()
	h := newMiniHub(t)
	h.apply(mustEncode(t, "web", 1, scenario.CardSale("ORD-WEB", "S3", "cust-2")))
	a, b := openReplica(t, "A"), openReplica(t, "B")
	follow(t, a, h)
	follow(t, b, h)

	// Offline at both stores.
	for _, w := range []struct {
		r     *Replica
		store string
	}{{a, "S1"}, {b, "S2"}} {
		for _, body := range []retail.Body{
			scenario.Sale("SALE-"+w.store, w.store, "cust-1", 1, "CPN-ONE"),
			scenario.ReturnLine("RET-"+w.store, "ORD-WEB", w.store, "cust-2"),
			scenario.ReserveLast("RES-"+w.store, w.store, "cust-3"),
		} {
			if res := write(t, w.r, body); res.Status != retail.StatusAccepted {
				t.Fatalf("%s at %s offline: %+v", body.Type(), w.store, res)
			}
		}
	}
	if n := countRows(t, b, "SELECT count(*) FROM orders WHERE id = 'RES-S2'"); n != 1 {
		t.Fatalf("B's reservation is not visible locally before sync")
	}

	// A reaches the hub first.
	for _, res := range h.upload(a) {
		if res.Status != retail.StatusAccepted {
			t.Fatalf("A at the hub: %+v", res)
		}
	}
	got := map[string]retail.Status{}
	for _, res := range h.upload(b) {
		got[res.ID.String()] = res.Status
	}
	want := map[string]retail.Status{"B/1": retail.StatusFlagged, "B/2": retail.StatusFlagged, "B/3": retail.StatusRejected}
	if !maps(got, want) {
		t.Fatalf("B at the hub: %v, want %v", got, want)
	}

	// The feed reaches both, in one message and in pieces.
	if _, err := a.ApplyFeed(ctx, h.log, true); err != nil {
		t.Fatal(err)
	}
	follow(t, b, h)
	assertConverged(t, h, a, b)

	if items, _ := a.AttentionList(ctx, false); len(items) != 0 {
		t.Errorf("A needs attention for %+v", items)
	}
	items, err := b.AttentionList(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]string{}
	for _, it := range items {
		for _, e := range it.Exceptions {
			kinds[it.ID] = append(kinds[it.ID], string(e.Kind))
		}
		if it.Status == string(retail.StatusRejected) {
			kinds[it.ID] = append(kinds[it.ID], it.Code)
		}
	}
	if len(items) != 3 || !slices.Contains(kinds["B/1"], string(retail.ExDuplicateRedemption)) ||
		!slices.Contains(kinds["B/2"], string(retail.ExOverReturnUnits)) || !slices.Equal(kinds["B/3"], []string{retail.CodeInsufficientStock}) {
		t.Errorf("B's attention list: %+v", kinds)
	}
	if n := countRows(t, b, "SELECT count(*) FROM orders WHERE id = 'RES-S2'"); n != 0 {
		t.Errorf("B's rejected reservation is still in its replica")
	}
	if n := countRows(t, b, "SELECT count(*) FROM orders WHERE id = 'SALE-S2'"); n != 1 {
		t.Errorf("B's flagged sale is gone from its replica")
	}
	if err := b.DismissAttention(ctx, "B/3", "clerk-S2"); err != nil {
		t.Fatal(err)
	}
	if items, _ := b.AttentionList(ctx, false); len(items) != 2 {
		t.Errorf("after dismissing one: %d open items", len(items))
	}
}

func maps(a, b map[string]retail.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func mustEncode(t testing.TB, origin string, seq uint64, b retail.Body) []byte {
	t.Helper()
	raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: origin, Seq: seq}, HLC: retail.HLC{Wall: scenario.T0.UnixMilli()}, Actor: scenario.System, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// An edge that lost its disk starts again from an empty replica: its new
// mutations must not reuse the ids of the ones the hub already has.
func TestReplicaNeverReusesAnIDAfterLosingItsDisk(t *testing.T) {
	h := newMiniHub(t)
	old := openReplica(t, "A")
	follow(t, old, h)
	for i := range 3 {
		write(t, old, scenario.Sale(fmt.Sprintf("OLD-%d", i), "S1", "cust-1", 1, ""))
	}
	h.upload(old)
	fresh := openReplica(t, "A") // the same edge id, a new file
	follow(t, fresh, h)
	res := write(t, fresh, scenario.Sale("NEW-1", "S1", "cust-1", 1, ""))
	if res.ID.Seq != 4 {
		t.Fatalf("the new sale got id %s; A/1..A/3 are taken", res.ID)
	}
	if r := h.upload(fresh); len(r) != 1 || r[0].Duplicate {
		t.Fatalf("the hub took the new sale as %+v", r)
	}
	follow(t, fresh, h)
	assertConverged(t, h, fresh)
}
