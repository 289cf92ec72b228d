package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/endcap/endcap/retail"
)

// stateCounts opens a stopped node's state file and counts what matters.
func stateCounts(t *testing.T, p *proc) (orders, lines, applied int64) {
	t.Helper()
	ctx := context.Background()
	db, err := retail.Open(ctx, filepath.Join(p.dir, "state", "state.db"), retail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&orders)
	db.QueryRowContext(ctx, "SELECT count(*) FROM order_lines").Scan(&lines)
	db.QueryRowContext(ctx, "SELECT count(*) FROM applied_mutations").Scan(&applied)
	return
}

// writer streams batches of sales through random live nodes, remembering
// which batches were acknowledged and which got an error (outcome unknown).
type writer struct {
	mu      sync.Mutex
	acked   map[string]bool // mutation ids acknowledged
	unacked [][]json.RawMessage
	sales   int
}

func (w *writer) run(t *testing.T, c *cluster, r *region, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		var batch []json.RawMessage
		for range 5 {
			batch = append(batch, r.sale(t, w.sales))
			w.sales++
		}
		live := c.live()
		if len(live) == 0 {
			t.Error("no hub is running")
			return
		}
		p := live[rng.IntN(len(live))]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.client.Submit(ctx, batch)
		cancel()
		w.mu.Lock()
		if err != nil {
			w.unacked = append(w.unacked, batch)
		} else {
			for _, r := range res {
				if r.Status == retail.StatusRejected || r.Err != "" {
					t.Errorf("a sale was rejected: %+v", r)
				}
				w.acked[r.ID.String()] = true
			}
		}
		w.mu.Unlock()
	}
}

func (w *writer) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// kill -9 the leader while a writer streams: a new leader takes over,
// every acknowledged write is there exactly once, and the writes whose
// outcome was unknown can be retried and apply once.
func TestLeaderKilledDuringWrites(t *testing.T) {
	c := startCluster(t, 3)
	r := newRegionWriter("edge-A")
	submit(t, c.nodes[0], r.base(t))
	w := &writer{acked: map[string]bool{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); w.run(t, c, r, stop) }()
	// On a failure the writer stops before the cluster's cleanup kills
	// the hubs (cleanups run last first).
	var once sync.Once
	stopWriter := func() { once.Do(func() { close(stop) }); <-done }
	t.Cleanup(stopWriter)

	waitFor(t, "writes before the kill", 60*time.Second, func() error {
		if n := w.ackedCount(); n < 200 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	old := c.waitLeader(nil)
	old.kill()
	before := w.ackedCount()
	newLeader := c.waitLeader(map[string]bool{old.id: true})
	if newLeader == old {
		t.Fatal("the killed node is still leader")
	}
	waitFor(t, "writes after the kill", 60*time.Second, func() error {
		if n := w.ackedCount(); n < before+200 {
			return fmt.Errorf("%d acknowledged since the kill", n-before)
		}
		return nil
	})
	stopWriter()

	// Retry what was not acknowledged: each applies once (or is found applied).
	for _, batch := range w.unacked {
		for _, res := range submit(t, newLeader, batch) {
			w.acked[res.ID.String()] = true
		}
	}
	if len(w.acked) != w.sales {
		t.Fatalf("%d of %d sales acknowledged after retries", len(w.acked), w.sales)
	}
	// The old leader comes back and catches up; all three converge.
	old.start(false)
	c.waitConverged()
	for _, p := range c.nodes {
		p.stop()
		orders, lines, _ := stateCounts(t, p)
		if orders != int64(w.sales) || lines != 3*orders {
			t.Errorf("%s: %d orders and %d lines, want %d and %d", p.id, orders, lines, w.sales, 3*w.sales)
		}
	}
	t.Logf("%d sales, %d batches retried after the leader was killed", w.sales, len(w.unacked))
}

// Submitting a mutation id twice (in two requests, or twice in one)
// returns the original result and applies it once.
func TestDuplicateSubmission(t *testing.T) {
	c := startCluster(t, 3)
	r := newRegionWriter("edge-A")
	submit(t, c.nodes[0], r.base(t))
	sale := r.sale(t, 1)
	first := submit(t, c.nodes[1], []json.RawMessage{sale})[0]
	sum1, err := c.nodes[0].client.Checksum(c.ctx())
	if err != nil {
		t.Fatal(err)
	}
	again := submit(t, c.nodes[2], []json.RawMessage{sale, sale})
	for _, a := range again {
		if !a.Duplicate || a.Status != first.Status || a.ID != first.ID || a.Seq != 0 {
			t.Fatalf("duplicate answered %+v; first %+v", a, first)
		}
	}
	c.waitConverged()
	sum2, _ := c.nodes[0].client.Checksum(c.ctx())
	if sum2.HubSeq != sum1.HubSeq {
		t.Fatalf("a duplicate took a hub sequence: %d then %d", sum1.HubSeq, sum2.HubSeq)
	}
	// The same mutation twice in a fresh batch, first time: applied once.
	twice := r.sale(t, 2)
	res := submit(t, c.nodes[0], []json.RawMessage{twice, twice})
	if res[0].Duplicate || !res[1].Duplicate || res[0].Seq == 0 {
		t.Fatalf("same mutation twice in one batch: %+v", res)
	}
	c.waitConverged()
	p := c.nodes[0]
	p.stop()
	if orders, _, _ := stateCounts(t, p); orders != 2 {
		t.Fatalf("%d orders, want 2", orders)
	}
}

// A node stopped while the cluster moves on catches up, through a snapshot
// install when the log it needs was compacted; a wiped node rejoins the
// same way; all converge to identical contents.
func TestStoppedAndWipedNodesCatchUp(t *testing.T) {
	c := startCluster(t, 3, "--snapshot-threshold", "40", "--trailing-logs", "10", "--wal-segment-size", "16384", "--log-level", "info")
	r := newRegionWriter("edge-A")
	submit(t, c.nodes[0], r.base(t))
	lagger, wiped := c.nodes[2], c.nodes[1]
	lagger.stop()
	// Enough separate raft entries for several snapshots and compactions.
	for i := range 150 {
		submit(t, c.nodes[0], []json.RawMessage{r.sale(t, i)})
	}
	// Snapshot now (and compact the log to the last 10 entries), so the
	// lagging node must be sent a snapshot.
	if err := c.waitLeader(map[string]bool{lagger.id: true}).client.TakeSnapshot(c.ctx()); err != nil {
		t.Fatal(err)
	}
	lagger.start(false)
	c.waitConverged()
	if !strings.Contains(lagger.output(), "restored state from snapshot") {
		t.Errorf("%s caught up without a snapshot install; the test did not test it:\n%s", lagger.id, lagger.output())
	}

	wiped.kill()
	if err := os.RemoveAll(wiped.dir); err != nil {
		t.Fatal(err)
	}
	for i := 150; i < 200; i++ {
		submit(t, c.nodes[0], []json.RawMessage{r.sale(t, i)})
	}
	if err := c.waitLeader(map[string]bool{wiped.id: true}).client.TakeSnapshot(c.ctx()); err != nil {
		t.Fatal(err)
	}
	wiped.start(false) // same id and addresses, no state: the leader sends a snapshot
	c.waitConverged()
	if !strings.Contains(wiped.output(), "restored state from snapshot") {
		t.Errorf("%s caught up without a snapshot install:\n%s", wiped.id, wiped.output())
	}
	for _, p := range c.nodes {
		p.stop()
		if orders, _, _ := stateCounts(t, p); orders != 200 {
			t.Errorf("%s has %d orders, want 200", p.id, orders)
		}
	}
}

// Grow to five nodes, remove one, hand leadership to a chosen node.
func TestMembership(t *testing.T) {
	c := startCluster(t, 3)
	r := newRegionWriter("edge-A")
	submit(t, c.nodes[0], r.base(t))
	for _, id := range []string{"h4", "h5"} {
		p := newProc(t, id)
		c.nodes = append(c.nodes, p)
		p.start(false)
		c.join(p)
	}
	c.waitLeader(nil)
	submit(t, c.nodes[4], []json.RawMessage{r.sale(t, 1)})
	c.waitConverged()
	st, err := c.nodes[3].client.Status(c.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 5 {
		t.Fatalf("%d peers, want 5: %+v", len(st.Peers), st.Peers)
	}

	// Remove a follower.
	leader := c.waitLeader(nil)
	var gone *proc
	for _, p := range c.nodes {
		if p != leader {
			gone = p
			break
		}
	}
	if _, err := c.nodes[4].client.Remove(c.ctx(), gone.id); err != nil {
		t.Fatal(err)
	}
	gone.stop()
	waitFor(t, "four peers", 30*time.Second, func() error {
		st, err := leader.client.Status(c.ctx())
		if err != nil {
			return err
		}
		if len(st.Peers) != 4 {
			return fmt.Errorf("%d peers", len(st.Peers))
		}
		return nil
	})

	// Hand leadership to h5.
	target := c.nodes[4]
	if target == leader {
		target = c.nodes[3]
	}
	waitFor(t, "leadership transfer", 60*time.Second, func() error {
		_, err := target.client.TransferLeadership(c.ctx(), target.id)
		if err != nil {
			return err
		}
		if l := c.waitLeader(nil); l != target {
			return fmt.Errorf("leader is %s", l.id)
		}
		return nil
	})
	submit(t, c.nodes[0], []json.RawMessage{r.sale(t, 2)})
	c.waitConverged()
}

// A damaged state file stops the node with a clear error and is left as
// it was; so does a damaged snapshot it would have to restore from.
func TestCorruptStateAndSnapshot(t *testing.T) {
	c := startCluster(t, 3, "--snapshot-threshold", "20", "--trailing-logs", "5")
	r := newRegionWriter("edge-A")
	submit(t, c.nodes[0], r.base(t))
	for i := range 60 {
		submit(t, c.nodes[0], []json.RawMessage{r.sale(t, i)})
	}
	c.waitConverged()
	p := c.nodes[2]
	if err := p.client.TakeSnapshot(c.ctx()); err != nil {
		t.Fatal(err)
	}
	p.stop()

	// Damage the state database in the middle.
	state := filepath.Join(p.dir, "state", "state.db")
	orig, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte{}, orig...)
	for i := len(bad) / 2; i < len(bad)/2+8192 && i < len(bad); i++ {
		bad[i] = 0xA5
	}
	os.WriteFile(state, bad, 0o644)
	err = p.tryStart(false)
	if err == nil || !strings.Contains(err.Error(), "state.db") || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("started on a damaged state file, or said nothing useful: %v", err)
	}
	if now, _ := os.ReadFile(state); string(now) != string(bad) {
		t.Fatal("the damaged state file was replaced silently")
	}

	// Lose the state and damage the newest snapshot it would restore from.
	os.Remove(state)
	snaps, _ := filepath.Glob(filepath.Join(p.dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk to damage")
	}
	for _, s := range snaps {
		b, _ := os.ReadFile(s)
		b[len(b)/2] ^= 0xFF
		os.WriteFile(s, b, 0o644)
	}
	err = p.tryStart(false)
	if err == nil || !strings.Contains(err.Error(), "corrupt snapshot") {
		t.Fatalf("started from a damaged snapshot, or said nothing useful: %v", err)
	}
	for _, s := range snaps {
		if _, statErr := os.Stat(s); statErr != nil {
			t.Errorf("the damaged snapshot %s was removed: the operator has nothing to look at", s)
		}
	}
}
