package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/endcap/endcap/edge"
	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/internal/mqtttest"
	"github.com/endcap/endcap/internal/scenario"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

const region = "test"

// creds is a password set with the hub and edges A..F.
func creds(t testing.TB) (*replication.Passwords, string) {
	t.Helper()
	p := &replication.Passwords{}
	for _, u := range []string{"hub", "A", "B", "C", "D", "E", "F"} {
		if err := p.Set(u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "passwords")
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	return p, path
}

func seedBodies(t testing.TB) []json.RawMessage {
	t.Helper()
	var raws []json.RawMessage
	for i, b := range scenario.Seed() {
		raw, err := retail.Encode(retail.Mutation{ID: retail.MutationID{Origin: "seed", Seq: uint64(i + 1)},
			HLC: retail.HLC{Wall: scenario.T0.UnixMilli()}, Actor: scenario.System, Body: b})
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	return raws
}

// waitFor polls cond every 20 ms until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		if state != "" {
			last = state
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInProcessSaleAtAVisibleAtB(t *testing.T) {
	ctx := context.Background()
	pw, _ := creds(t)
	broker := mqtttest.StartEmbedded(t, replication.BrokerConfig{Region: region, Passwords: pw})
	dir := t.TempDir()
	node, err := hub.Start(ctx, hub.Config{ID: "h1", DataDir: filepath.Join(dir, "h1"), RaftAddr: mqtttest.FreeAddr(t), HTTPAddr: "127.0.0.1:0",
		Bootstrap: true, Token: "tok", Region: region, Logger: mqtttest.TestLogger(t),
		MQTT:     replication.MQTTConfig{URL: broker.URL(), Username: "hub", Password: "pw-hub"},
		EdgeAuth: pw.Verify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	waitFor(t, 10*time.Second, "leader", func() (bool, string) {
		st, err := node.Status(ctx)
		return err == nil && st.State == "Leader", fmt.Sprint(st, err)
	})
	var seed []retail.Mutation
	for _, raw := range seedBodies(t) {
		m, err := retail.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		seed = append(seed, m)
	}
	if _, err := node.Submit(ctx, seed); err != nil {
		t.Fatal(err)
	}
	edges := map[string]*edge.Node{}
	for _, id := range []string{"A", "B"} {
		n, err := edge.Start(ctx, edge.Config{Region: region, ID: id, DataDir: filepath.Join(dir, id), Logger: mqtttest.TestLogger(t),
			MQTT: replication.MQTTConfig{URL: broker.URL(), Password: "pw-" + id}, HubURLs: []string{"http://" + node.HTTPAddr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		edges[id] = n
	}
	for id, e := range edges {
		waitFor(t, 20*time.Second, id+" caught up with the seed", func() (bool, string) {
			st, err := e.Replica().Status(ctx)
			return err == nil && st.AppliedSeq == node.FSM().HubSeq(), fmt.Sprintf("%+v %v", st, err)
		})
	}
	res, err := edges["A"].Replica().Write(ctx, scenario.Clerk("S1"), scenario.Sale("SALE-1", "S1", "cust-1", 2, ""))
	if err != nil || res.Status != retail.StatusAccepted {
		t.Fatalf("sale at A: %+v %v", res, err)
	}
	waitFor(t, 20*time.Second, "the sale at B", func() (bool, string) {
		db, done := edges["B"].Replica().DB()
		defer done()
		var n int
		db.QueryRowContext(ctx, "SELECT count(*) FROM orders WHERE id = 'SALE-1'").Scan(&n)
		st, _ := edges["B"].Replica().Status(ctx)
		return n == 1, fmt.Sprintf("%+v %+v", st, edges["B"].Sync().Stats())
	})
	assertAllConverged(t, hubChecksum(node), edges["A"].Replica(), edges["B"].Replica())
}

func hubChecksum(n *hub.Node) func() (hub.ChecksumResponse, error) {
	return func() (hub.ChecksumResponse, error) { return n.FSM().Checksum(context.Background()) }
}

// assertAllConverged waits until every replica has nothing pending, has
// applied the hub's sequence, and has the hub's region checksum.
func assertAllConverged(t testing.TB, hubSum func() (hub.ChecksumResponse, error), rs ...*replication.Replica) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 60*time.Second, "replicas converged with the hub", func() (bool, string) {
		h, err := hubSum()
		if err != nil {
			return false, err.Error()
		}
		for _, r := range rs {
			st, err := r.Status(ctx)
			if err != nil {
				return false, err.Error()
			}
			if st.Pending != 0 || st.AppliedSeq != h.HubSeq {
				return false, fmt.Sprintf("%s: pending %d, applied %d of %d", r.Edge(), st.Pending, st.AppliedSeq, h.HubSeq)
			}
			sum, seq, err := r.RegionChecksum(ctx)
			if err != nil {
				return false, err.Error()
			}
			if seq != h.HubSeq || sum != h.RegionChecksum {
				return false, fmt.Sprintf("%s: checksum %s at %d, hub %s at %d", r.Edge(), sum, seq, h.RegionChecksum, h.HubSeq)
			}
		}
		return true, ""
	})
}
