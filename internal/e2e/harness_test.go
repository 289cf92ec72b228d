package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/edge"
	"github.com/endcap/endcap/hub"
	"github.com/endcap/endcap/internal/proctest"
	"github.com/endcap/endcap/replication"
	"github.com/endcap/endcap/retail"
)

var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "endcap-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err = proctest.Build("../..", dir, "./cmd/hub", "./cmd/edge")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const token = "e2e-token"

// hubProc is a hub node process.
type hubProc struct {
	*proctest.Proc
	id     string
	raft   string
	http   string
	client *hub.Client
}

// cluster is three hub processes sharing a broker.
type cluster struct {
	t     testing.TB
	nodes []*hubProc
}

type clusterOpts struct {
	brokerURL string
	passwords string // path
	extra     []string
}

func startCluster(t testing.TB, o clusterOpts) *cluster {
	t.Helper()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "hub-password")
	os.WriteFile(pwFile, []byte("pw-hub\n"), 0o600)
	c := &cluster{t: t}
	for i := range 3 {
		id := fmt.Sprintf("h%d", i+1)
		hp := &hubProc{id: id, raft: proctest.FreeAddr(t), http: proctest.FreeAddr(t)}
		args := []string{"--id", id, "--data", filepath.Join(dir, id), "--raft", hp.raft, "--http", hp.http, "--token", token,
			"--region", region, "--mqtt", o.brokerURL, "--mqtt-password-file", pwFile, "--passwords", o.passwords, "--log-level", "info"}
		if i == 0 {
			args = append(args, "--bootstrap")
		}
		args = append(args, o.extra...)
		hp.Proc = proctest.Start(t, "hub "+id, bins["hub"], "ready: raft", args...)
		hp.LogOnFailure()
		hp.client = &hub.Client{Addr: hp.http, Token: token}
		if i == 0 {
			c.nodes = append(c.nodes, hp)
			c.leader()
			continue
		}
		waitFor(t, 90*time.Second, "join "+id, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := c.leader().client.Join(ctx, hub.Member{ID: id, RaftAddr: hp.raft, HTTPAddr: hp.http})
			return err == nil, fmt.Sprint(err)
		})
		c.nodes = append(c.nodes, hp)
	}
	c.leader()
	return c
}

// leader waits for a leader all live nodes agree on.
func (c *cluster) leader() *hubProc {
	c.t.Helper()
	var leader *hubProc
	waitFor(c.t, 60*time.Second, "a hub leader", func() (bool, string) {
		seen := ""
		for _, n := range c.live() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := n.client.Status(ctx)
			cancel()
			if err != nil {
				return false, err.Error()
			}
			if st.Leader.ID == "" || (seen != "" && st.Leader.ID != seen) {
				return false, n.id + " sees leader " + st.Leader.ID
			}
			seen = st.Leader.ID
		}
		for _, n := range c.live() {
			if n.id == seen {
				leader = n
				return true, ""
			}
		}
		return false, "leader " + seen + " is not live"
	})
	return leader
}

func (c *cluster) live() []*hubProc {
	var out []*hubProc
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) submit(raws []json.RawMessage) []hub.MutationResult {
	c.t.Helper()
	var res []hub.MutationResult
	waitFor(c.t, 60*time.Second, "submit to the hub", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		res, err = c.leader().client.Submit(ctx, raws)
		return err == nil, fmt.Sprint(err)
	})
	return res
}

// checksum is the leader's checksum once all live hubs agree.
func (c *cluster) checksum() (hub.ChecksumResponse, error) {
	var clients []*hub.Client
	for _, n := range c.live() {
		clients = append(clients, n.client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sums, err := hub.CheckConverged(ctx, clients...)
	if err != nil {
		return hub.ChecksumResponse{}, err
	}
	return sums[0], nil
}

// edgeProc is an edge node process with its local API.
type edgeProc struct {
	*proctest.Proc
	t    testing.TB
	id   string
	dir  string
	http string
}

func startEdge(t testing.TB, id, brokerURL string, c *cluster, extra ...string) *edgeProc {
	t.Helper()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	os.WriteFile(pwFile, []byte("pw-"+id+"\n"), 0o600)
	var hubs []string
	for _, n := range c.nodes {
		hubs = append(hubs, "http://"+n.http)
	}
	e := &edgeProc{t: t, id: id, dir: dir, http: proctest.FreeAddr(t)}
	args := append([]string{"--id", id, "--data", dir, "--region", region, "--mqtt", brokerURL, "--password-file", pwFile,
		"--hub", strings.Join(hubs, ","), "--http", e.http, "--ack-timeout", "2s", "--log-level", "info"}, extra...)
	e.Proc = proctest.Start(t, "edge "+id, bins["edge"], "ready: http", args...)
	e.LogOnFailure()
	return e
}

func (e *edgeProc) do(method, path string, in, out any) (int, error) {
	var body bytes.Buffer
	if in != nil {
		json.NewEncoder(&body).Encode(in)
	}
	req, err := http.NewRequest(method, "http://"+e.http+path, &body)
	if err != nil {
		return 0, err
	}
	hc := http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// write applies a mutation at the edge through its API.
func (e *edgeProc) write(b retail.Body) retail.Result {
	e.t.Helper()
	raw, _ := json.Marshal(b)
	var res retail.Result
	if _, err := e.do("POST", "/v1/mutations", edge.WriteRequest{Type: b.Type(), Actor: retail.Actor{Kind: "clerk", ID: "clerk"}, Body: raw}, &res); err != nil {
		e.t.Fatalf("write at %s: %v", e.id, err)
	}
	return res
}

func (e *edgeProc) status() (edge.Status, error) {
	var st edge.Status
	_, err := e.do("GET", "/v1/status", nil, &st)
	return st, err
}

func (e *edgeProc) attention() []replication.Attention {
	e.t.Helper()
	var items []replication.Attention
	if _, err := e.do("GET", "/v1/attention", nil, &items); err != nil {
		e.t.Fatal(err)
	}
	return items
}

// converged waits until every live hub agrees, and every edge has applied
// the hub's sequence, has nothing pending and holds the hub's region rows.
func converged(t testing.TB, c *cluster, edges ...*edgeProc) hub.ChecksumResponse {
	t.Helper()
	var h hub.ChecksumResponse
	waitFor(t, 120*time.Second, "hubs and edges converged", func() (bool, string) {
		var err error
		if h, err = c.checksum(); err != nil {
			state := err.Error()
			for _, e := range edges {
				st, _ := e.status()
				state += fmt.Sprintf("; %s: pending %d applied %d %s %+v %s", e.id, st.Pending, st.AppliedSeq, st.Broker, st.Sync, st.SyncError)
			}
			for _, n := range c.live() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var sr hub.StoresResponse
				sr, _ = n.client.Stores(ctx)
				cancel()
				state += fmt.Sprintf("; hub %s: %+v", n.id, sr.Bridge)
			}
			return false, state
		}
		for _, e := range edges {
			st, err := e.status()
			if err != nil {
				return false, e.id + ": " + err.Error()
			}
			if st.Pending != 0 || st.AppliedSeq != h.HubSeq {
				return false, fmt.Sprintf("%s: pending %d, applied %d of %d (%s, %+v %s)", e.id, st.Pending, st.AppliedSeq, h.HubSeq, st.Broker, st.Sync, st.SyncError)
			}
			var sum edge.ChecksumResponse
			if _, err := e.do("GET", "/v1/checksum", nil, &sum); err != nil {
				return false, err.Error()
			}
			if sum.AppliedSeq != h.HubSeq || sum.RegionChecksum != h.RegionChecksum {
				return false, fmt.Sprintf("%s: checksum %s at %d, hub %s at %d", e.id, sum.RegionChecksum, sum.AppliedSeq, h.RegionChecksum, h.HubSeq)
			}
		}
		return true, ""
	})
	return h
}

// replicaCount runs a count query on an edge's replica file, read-only.
func (e *edgeProc) count(query string, args ...any) int {
	e.t.Helper()
	db, err := retail.Open(context.Background(), filepath.Join(e.dir, "replica.db"), retail.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
