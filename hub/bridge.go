package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
)

// backend is the node as the replication bridge sees it.
type backend struct{ n *Node }

var _ replication.HubBackend = backend{}

func (b backend) NodeID() string { return b.n.cfg.ID }

func (b backend) Leader() (bool, uint64) {
	return b.n.raft.State() == raft.Leader, b.n.raft.CurrentTerm()
}

func (b backend) Barrier(ctx context.Context) error {
	return b.n.raft.Barrier(30 * time.Second).Error()
}

// Submit decodes the mutations the way POST /v1/mutations does and
// submits them up to the first one this hub cannot read: an edge's
// mutations apply in order, so nothing after it may go first. That one
// is answered with Err; the rest get no answer and are sent again.
func (b backend) Submit(ctx context.Context, raws []json.RawMessage) ([]replication.AckResult, error) {
	good := make([]retail.Mutation, 0, len(raws))
	var bad *replication.AckResult
	for _, raw := range raws {
		m, err := retail.Decode(raw)
		if err != nil {
			var head struct {
				ID retail.MutationID `json:"id"`
			}
			json.Unmarshal(raw, &head)
			bad = &replication.AckResult{ID: head.ID.String(), Err: err.Error()}
			break
		}
		good = append(good, m)
	}
	var out []replication.AckResult
	if len(good) > 0 {
		results, err := b.n.Submit(ctx, good)
		if err != nil {
			return nil, err
		}
		for _, r := range results {
			out = append(out, replication.AckResult{ID: r.ID.String(), Status: r.Status, Code: r.Code, Reason: r.Reason,
				Exceptions: r.Exceptions, Seq: r.Seq, Duplicate: r.Duplicate, Err: r.Err})
		}
	}
	if bad != nil && bad.ID != "" && bad.ID != "/0" {
		out = append(out, *bad)
	}
	return out, nil
}

var _ replication.ResultReader = backend{}

// PreviousResults reads the results of applied mutations from this
// node's state, the way the FSM answers a duplicate (retail's
// previousResult): the applied_mutations row and the exceptions, in two
// queries for all of ids. An applied mutation's result never changes, so
// a node's own state is as good as a round through raft for it.
func (b backend) PreviousResults(ctx context.Context, ids []string) (map[string]replication.AckResult, error) {
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	db, done := b.n.fsm.DB()
	defer done()
	out := make(map[string]replication.AckResult, len(ids))
	rows, err := db.QueryContext(ctx, "SELECT id, status, code, reason FROM applied_mutations WHERE id IN (SELECT value FROM json_each(?))", string(list))
	if err != nil {
		return nil, fmt.Errorf("previous results: %w", err)
	}
	for rows.Next() {
		r := replication.AckResult{Duplicate: true}
		if err := rows.Scan(&r.ID, &r.Status, &r.Code, &r.Reason); err != nil {
			rows.Close()
			return nil, fmt.Errorf("previous results: %w", err)
		}
		out[r.ID] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("previous results: %w", err)
	}
	rows, err = db.QueryContext(ctx, "SELECT mutation_id, id, kind, entity, detail, amount_cents FROM exceptions WHERE mutation_id IN (SELECT value FROM json_each(?)) ORDER BY mutation_id, id", string(list))
	if err != nil {
		return nil, fmt.Errorf("previous results: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var e retail.Exception
		if err := rows.Scan(&id, &e.ID, &e.Kind, &e.Entity, &e.Detail, &e.AmountCents); err != nil {
			return nil, fmt.Errorf("previous results: %w", err)
		}
		if r, ok := out[id]; ok {
			r.Exceptions = append(r.Exceptions, e)
			out[id] = r
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("previous results: %w", err)
	}
	return out, nil
}

func (b backend) OriginSeq(ctx context.Context, origin string) (uint64, error) {
	return b.n.fsm.OriginSeq(ctx, origin)
}

func (b backend) Changes(ctx context.Context, from uint64, limit int) ([]replication.Change, error) {
	return b.n.fsm.ChangesRaw(ctx, from, limit)
}

func (b backend) HubSeq() uint64 { return b.n.fsm.HubSeq() }

func (b backend) WaitSeq(ctx context.Context, after uint64) { b.n.fsm.WaitSeq(ctx, after) }

// StoresResponse is the body of GET /v1/stores.
type StoresResponse struct {
	HubSeq uint64                    `json:"hub_seq"`
	Stores []replication.StoreStatus `json:"stores"`
	// Bridge is this node's bridge: connected to the broker, and its counters.
	Connected bool                    `json:"connected"`
	Bridge    replication.BridgeStats `json:"bridge"`
}

func (n *Node) handleStores(w http.ResponseWriter, r *http.Request) {
	resp := StoresResponse{HubSeq: n.fsm.HubSeq(), Stores: []replication.StoreStatus{}}
	if n.bridge != nil {
		resp.Stores = n.bridge.Stores()
		resp.Connected = n.bridge.Conn().Connected()
		resp.Bridge = n.bridge.Stats()
	}
	writeJSON(w, http.StatusOK, resp)
}
