package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

// routes is the local API. It listens on the store's loopback or LAN; see
// docs/api.md.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("POST /v1/mutations", n.handleWrite)
	mux.HandleFunc("GET /v1/pending", n.handlePending)
	mux.HandleFunc("GET /v1/attention", n.handleAttention)
	mux.HandleFunc("POST /v1/attention/{id...}", n.handleDismiss)
	mux.HandleFunc("GET /v1/checksum", n.handleChecksum)
	if n.store != nil {
		n.storeRoutes(mux)
	}
	return mux
}

// Status is the body of GET /v1/status.
type Status struct {
	replication.ReplicaStatus
	Broker    string                `json:"broker"` // online, offline, or why not
	Sync      replication.EdgeStats `json:"sync"`
	SyncError string                `json:"sync_error,omitempty"`
	Connects  int64                 `json:"connects"`
}

func (n *Node) status(r *http.Request) (Status, error) {
	st, err := n.replica.Status(r.Context())
	if err != nil {
		return Status{}, err
	}
	out := Status{ReplicaStatus: st, Broker: "none configured"}
	if n.sync != nil {
		c := n.sync.Conn()
		out.Broker = "online"
		if !c.Connected() {
			out.Broker = "offline"
			if err := c.LastError(); err != nil {
				out.Broker = "offline: " + err.Error()
			}
		}
		out.Sync, out.SyncError, out.Connects = n.sync.Stats(), n.sync.LastError(), c.Connects()
	}
	return out, nil
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := n.status(r)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// WriteRequest is the body of POST /v1/mutations: one business operation
// to apply locally and upload.
type WriteRequest struct {
	Type  string          `json:"type"`
	Actor retail.Actor    `json:"actor"`
	Body  json.RawMessage `json:"body"`
}

func (n *Node) handleWrite(w http.ResponseWriter, r *http.Request) {
	var req WriteRequest
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, retail.MaxMutationSize), &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	body := retail.NewBody(req.Type)
	if body == nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("unknown mutation type %q", req.Type))
		return
	}
	if err := decodeStrict(bytes.NewReader(req.Body), body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s body: %w", req.Type, err))
		return
	}
	res, err := n.replica.Write(r.Context(), req.Actor, body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	res.Changes = nil
	code := http.StatusOK
	if res.Status == retail.StatusRejected {
		code = http.StatusConflict
	}
	writeJSON(w, code, res)
}

func (n *Node) handlePending(w http.ResponseWriter, r *http.Request) {
	ps, err := n.replica.Pending(r.Context(), 0, 1000, false)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if ps == nil {
		ps = []replication.PendingMutation{}
	}
	writeJSON(w, http.StatusOK, ps)
}

func (n *Node) handleAttention(w http.ResponseWriter, r *http.Request) {
	items, err := n.replica.AttentionList(r.Context(), r.URL.Query().Get("all") == "1")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if items == nil {
		items = []replication.Attention{}
	}
	writeJSON(w, http.StatusOK, items)
}

func (n *Node) handleDismiss(w http.ResponseWriter, r *http.Request) {
	var req struct {
		By string `json:"by"`
	}
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, 4096), &req); err != nil {
		writeError(w, http.StatusBadRequest, errors.New(`want {"by": "clerk id"}`))
		return
	}
	if n.store != nil {
		// With the store's operations on, a clerk deals with it under her
		// session; "by" may be left out.
		c, err := n.clerkFor(r, req.By)
		if err != nil {
			fail(w, err)
			return
		}
		req.By = c.ID
	}
	if req.By == "" {
		writeError(w, http.StatusBadRequest, errors.New(`want {"by": "clerk id"}`))
		return
	}
	err := n.replica.DismissAttention(r.Context(), r.PathValue("id"), req.By)
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ChecksumResponse is the body of GET /v1/checksum.
type ChecksumResponse struct {
	AppliedSeq     uint64 `json:"applied_seq"`
	RegionChecksum string `json:"region_checksum"`
}

func (n *Node) handleChecksum(w http.ResponseWriter, r *http.Request) {
	sum, seq, err := n.replica.RegionChecksum(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ChecksumResponse{AppliedSeq: seq, RegionChecksum: sum})
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
