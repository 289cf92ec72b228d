package hub

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/endcap/endcap/retail"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxBatchBytes bounds a POST /v1/mutations body.
const MaxBatchBytes = 64 << 20

// routes is the operator API. Every route but /metrics (with OpenMetrics)
// and /v1/snapshot wants the operator's bearer token; /v1/snapshot takes
// an edge's credentials too. Without them: 401 and nothing else.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/status", n.operator(n.handleStatus))
	mux.Handle("POST /v1/mutations", n.operator(n.handleMutations))
	mux.Handle("GET /v1/changes", n.operator(n.handleChanges))
	mux.Handle("GET /v1/snapshot", n.edgeOrOperator(n.handleSnapshot))
	mux.Handle("POST /v1/join", n.operator(n.handleJoin))
	mux.Handle("POST /v1/remove", n.operator(n.handleRemove))
	mux.Handle("POST /v1/leader-transfer", n.operator(n.handleTransfer))
	mux.Handle("POST /v1/snapshot", n.operator(n.handleTakeSnapshot))
	mux.Handle("GET /v1/checksum", n.operator(n.handleChecksum))
	mux.Handle("GET /v1/stores", n.operator(n.handleStores))
	metrics := promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{})
	if n.cfg.OpenMetrics {
		mux.Handle("GET /metrics", metrics)
	} else {
		mux.Handle("GET /metrics", n.operator(metrics.ServeHTTP))
	}
	return mux
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="endcap-hub"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

func (n *Node) isOperator(r *http.Request) bool {
	want := "Bearer " + n.cfg.Token
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1
}

func (n *Node) operator(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.isOperator(r) {
			unauthorized(w)
			return
		}
		h(w, r)
	})
}

func (n *Node) edgeOrOperator(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.isOperator(r) {
			h(w, r)
			return
		}
		id, secret, ok := r.BasicAuth()
		want, known := n.cfg.EdgeCredentials[id]
		if n.cfg.EdgeAuth != nil {
			known = ok && n.cfg.EdgeAuth(id, secret)
			want = secret
		}
		if !ok || !known || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
			unauthorized(w)
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// apiError is the body of every error response.
type apiError struct {
	Error  string `json:"error"`
	Leader string `json:"leader,omitempty"` // the leader's API address, when known
}

func (n *Node) fail(w http.ResponseWriter, code int, err error) {
	e := apiError{Error: err.Error()}
	if errors.Is(err, ErrNotLeader) {
		if m, ok := n.leader(context.Background()); ok {
			e.Leader = m.HTTPAddr
		}
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, e)
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := n.Status(r.Context())
	if err != nil {
		n.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// SubmitResponse is the body of a successful POST /v1/mutations: one result
// per mutation, in order.
type SubmitResponse struct {
	Results []MutationResult `json:"results"`
}

// handleMutations takes a JSON array of encoded mutations. Each is decoded
// and validated here; one that fails gets its error in its result and is
// not proposed, and the rest go on. On a follower the request is
// forwarded to the leader.
func (n *Node) handleMutations(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBatchBytes))
	if err != nil {
		n.fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("batch over %d bytes: %w", MaxBatchBytes, err))
		return
	}
	if n.raft.State() != raft.Leader {
		n.forward(w, r, body)
		return
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		n.fail(w, http.StatusBadRequest, fmt.Errorf("want a JSON array of mutations: %w", err))
		return
	}
	results := make([]MutationResult, len(raws))
	var good []retail.Mutation
	var where []int
	for i, raw := range raws {
		m, err := retail.Decode(raw)
		if err != nil {
			results[i].Err = err.Error()
			results[i].Status = retail.StatusRejected
			continue
		}
		results[i].ID = m.ID
		good = append(good, m)
		where = append(where, i)
	}
	if len(good) > 0 {
		got, err := n.Submit(r.Context(), good)
		if errors.Is(err, ErrNotLeader) {
			n.fail(w, http.StatusServiceUnavailable, err)
			return
		}
		if err != nil {
			n.fail(w, http.StatusServiceUnavailable, fmt.Errorf("outcome unknown, retry: %w", err))
			return
		}
		for j, i := range where {
			results[i] = got[j]
		}
	}
	writeJSON(w, http.StatusOK, SubmitResponse{Results: results})
}

// forward sends a write to the leader and relays its answer.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	m, ok := n.leader(r.Context())
	if !ok || m.HTTPAddr == "" || r.Header.Get("X-Endcap-Forwarded") != "" {
		n.fail(w, http.StatusServiceUnavailable, ErrNotLeader)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+m.HTTPAddr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		n.fail(w, http.StatusInternalServerError, err)
		return
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Endcap-Forwarded", n.cfg.ID) // one hop only
	resp, err := n.client.Do(req)
	if err != nil {
		n.fail(w, http.StatusBadGateway, fmt.Errorf("forward to leader %s: %w (outcome unknown, retry)", m.ID, err))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("X-Endcap-Leader", m.ID)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// ChangesResponse is the body of GET /v1/changes.
type ChangesResponse struct {
	Changes []Change `json:"changes"`
	// HubSeq is the node's latest sequence; Consistency says it is this
	// node's own view ("local"), which may trail the leader's.
	HubSeq      uint64 `json:"hub_seq"`
	Consistency string `json:"consistency"`
}

func (n *Node) handleChanges(w http.ResponseWriter, r *http.Request) {
	from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from == 0 {
		n.fail(w, http.StatusBadRequest, errors.New("from must be a hub sequence number, 1 or more"))
		return
	}
	limit := 1000
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 10000 {
			n.fail(w, http.StatusBadRequest, errors.New("limit must be 1..10000"))
			return
		}
	}
	changes, err := n.fsm.Changes(r.Context(), from, limit)
	if errors.Is(err, ErrCompacted) {
		n.fail(w, http.StatusGone, err)
		return
	}
	if err != nil {
		n.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ChangesResponse{Changes: changes, HubSeq: n.fsm.HubSeq(), Consistency: "local"})
}

// handleSnapshot serves a consistent copy of the region database (the
// snapshot stream format). The copy is made first, so a failure is a 500;
// then the length is known and sent, so a client can show progress.
func (n *Node) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	ps, err := n.fsm.PrepareSnapshot(r.Context())
	if err != nil {
		n.fail(w, http.StatusInternalServerError, err)
		return
	}
	defer ps.Close()
	w.Header().Set("Content-Type", "application/vnd.endcap.snapshot")
	w.Header().Set("Content-Length", strconv.FormatInt(ps.StreamSize(), 10))
	w.Header().Set("X-Endcap-Hub-Seq", strconv.FormatUint(ps.Meta.HubSeq, 10))
	if err := ps.Stream(w); err != nil {
		n.log.Error("snapshot download cut short", "err", err)
		return // the client's length and checksum checks fail
	}
	n.log.Info("snapshot served", "hub_seq", ps.Meta.HubSeq, "bytes", ps.Meta.Size)
}

func (n *Node) handleTakeSnapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := n.Snapshot(); err != nil {
		n.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"applied_index": n.fsm.AppliedIndex(), "seconds": time.Since(start).Seconds()})
}

// leaderOnly runs op on the leader, forwarding when this node is not.
func (n *Node) leaderOnly(w http.ResponseWriter, r *http.Request, body []byte, op func() error) {
	if n.raft.State() != raft.Leader {
		n.forward(w, r, body)
		return
	}
	if err := op(); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotLeader) {
			code = http.StatusServiceUnavailable
		}
		n.fail(w, code, err)
		return
	}
	st, _ := n.Status(r.Context())
	writeJSON(w, http.StatusOK, st)
}

func (n *Node) handleJoin(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m Member
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" || m.RaftAddr == "" || m.HTTPAddr == "" {
		n.fail(w, http.StatusBadRequest, errors.New(`want {"id", "raft_addr", "http_addr"}`))
		return
	}
	n.leaderOnly(w, r, body, func() error { return n.Join(r.Context(), m) })
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.ID == "" {
		n.fail(w, http.StatusBadRequest, errors.New(`want {"id"}`))
		return
	}
	n.leaderOnly(w, r, body, func() error { return n.Remove(r.Context(), req.ID) })
}

func (n *Node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req struct {
		ID string `json:"id"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			n.fail(w, http.StatusBadRequest, errors.New(`want {"id"} or nothing`))
			return
		}
	}
	n.leaderOnly(w, r, body, func() error { return n.TransferLeadership(r.Context(), req.ID) })
}

// ChecksumResponse is the body of GET /v1/checksum: the canonical dump's
// SHA-256 of this node's state (retail.Checksum), at an applied index.
// Two nodes at the same applied index must have the same checksum.
type ChecksumResponse struct {
	AppliedIndex uint64 `json:"applied_index"`
	HubSeq       uint64 `json:"hub_seq"`
	Checksum     string `json:"checksum"`
	// RegionChecksum covers the region's rows only (retail.RegionChecksum),
	// what an edge replica at the same hub sequence must match.
	RegionChecksum string `json:"region_checksum"`
}

func (n *Node) handleChecksum(w http.ResponseWriter, r *http.Request) {
	resp, err := n.fsm.Checksum(r.Context())
	if err != nil {
		n.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
