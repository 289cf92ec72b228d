package edge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// testKey is the region's coupon key in tests.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// walletSpy records what would go to shoppers' wallet topics.
type walletSpy struct{ sent map[string][][]byte }

func (w *walletSpy) PublishWallet(_ context.Context, customer string, payload []byte) error {
	if w.sent == nil {
		w.sent = map[string][][]byte{}
	}
	w.sent[customer] = append(w.sent[customer], payload)
	return nil
}

// testStore opens a replica on disk holding scenario.Seed plus extra
// (applied as the hub would have, and followed through the feed), and
// returns store S1's operations on it with the clock at scenario.T0. No
// broker runs: everything here works offline.
func testStore(t testing.TB, extra ...retail.Body) (*Store, *replication.Replica, *walletSpy) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	entries, err := scenario.Changes(dir, append(scenario.Seed(), extra...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := replication.OpenReplica(ctx, replication.ReplicaConfig{Path: filepath.Join(dir, "replica.db"), Region: "test", Edge: "S1",
		Clock: &retail.Clock{Now: func() time.Time { return scenario.T0 }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	feed := make([]replication.Change, len(entries))
	for i, e := range entries {
		feed[i] = replication.Change{Seq: e.Seq, MutationID: e.MutationID, Status: e.Status, Changes: e.Changes}
	}
	if _, err := r.ApplyFeed(ctx, feed, true); err != nil {
		t.Fatal(err)
	}
	w := &walletSpy{}
	s, err := NewStore(StoreConfig{StoreID: "S1", Replica: r, CouponKey: testKey, Wallet: w, Now: func() time.Time { return scenario.T0 }})
	if err != nil {
		t.Fatal(err)
	}
	return s, r, w
}
